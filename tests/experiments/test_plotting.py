"""`tfpriv.experiments.plotting.plot_histories`: one panel per quantity, plus the zoom on a target."""

import matplotlib.image

from tfpriv.experiments.plotting import plot_histories

HISTORY = {'loss': [1.0, 0.5], 'val_loss': [1.1, 0.6], 'accuracy': [0.9, 0.95],
           'val_accuracy': [0.97, 0.985], 'ema_val_accuracy': [0.97, 0.99]}


def test_target_adds_a_zoomed_accuracy_panel(tmp_path):
    plain = plot_histories({'run': HISTORY}, str(tmp_path / 'plain.png'), 'title')
    zoom = plot_histories({'run': HISTORY}, str(tmp_path / 'zoom.png'), 'title', target=0.99)
    width = {name: matplotlib.image.imread(path).shape[1] for name, path in
             (('plain', plain), ('zoom', zoom))}
    assert width['zoom'] == width['plain'] * 3 // 2  # 5 inches per panel: 2 panels, then 3
