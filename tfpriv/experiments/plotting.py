"""Figures of training runs: loss, accuracy and ε per epoch (or round)."""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

History = Mapping[str, Sequence[float]]


def plot_histories(histories: Mapping[str, History], path: str, title: str,
                   xlabel: str = 'epoch', target: Optional[float] = None) -> str:
    """One figure: panels for loss, accuracy and (when present) ε, one line style per run label.

    Each history maps `loss`, `val_loss`, `accuracy`, `val_accuracy` and
    optionally `epsilon` to per-epoch values. With a `target` accuracy a last
    panel zooms on the test accuracy near it, with the target drawn. Returns `path`.
    """
    has_epsilon = any('epsilon' in h for h in histories.values())
    panels: List[Dict[str, str]] = [
        {'loss': 'train loss', 'val_loss': 'test loss', 'ema_val_loss': 'test loss (model EMA)'},
        {'accuracy': 'train accuracy', 'val_accuracy': 'test accuracy',
         'ema_val_accuracy': 'test accuracy (model EMA)'},
    ] + ([{'epsilon': 'ε (RDP)', 'epsilon_pld': 'ε (PLD)'}] if has_epsilon else [])
    ylabels = ['loss', 'accuracy'] + (['ε'] if has_epsilon else [])
    if target is not None:
        panels.append({'val_accuracy': 'test accuracy', 'ema_val_accuracy': 'test accuracy (model EMA)'})
        ylabels.append(f'test accuracy near the {target:g} target')
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    if target is not None:
        axes[-1].axhline(target, color='black', linestyle='--', linewidth=1, label=f'target {target:g}')
        axes[-1].set_ylim(target - 0.02, min(1.0, target + 0.01))
    for ax, panel, ylabel in zip(axes, panels, ylabels):
        for label, history in histories.items():
            for key, name in panel.items():
                values = history.get(key)
                if values:
                    epochs = range(1, len(values) + 1)
                    ax.plot(epochs, values, marker='o', markersize=3, label=f'{label}: {name}')
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
