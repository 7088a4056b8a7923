"""`WeightAverage` (EMA of the weights) against an independent NumPy computation of the average."""

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.dp.callbacks import WeightAverage


class _Recorder(tf.keras.callbacks.Callback):
    """The trainable weights before training and after every step."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_begin(self, logs=None):
        self.steps = [[w.numpy().copy() for w in self.model.trainable_weights]]

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([w.numpy().copy() for w in self.model.trainable_weights])


def _fit(decay, epochs=2):
    tf.keras.utils.set_random_seed(3)
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.5), loss='mse')
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype(np.float32), rng.normal(size=(40, 3)).astype(np.float32)
    recorder, average = _Recorder(), WeightAverage(decay)
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[recorder, average])
    return model, recorder.steps, average


@pytest.mark.parametrize('decay', [0.5, 0.9])
def test_model_ends_with_the_exponential_average(decay):
    model, steps, average = _fit(decay)
    expected = [np.array(w, np.float64) for w in steps[0]]
    for t, weights in enumerate(steps[1:], start=1):
        d = min(decay, (1 + t) / (10 + t))
        expected = [d * a + (1 - d) * w for a, w in zip(expected, weights)]
    assert len(steps) == 11  # 5 steps per epoch, 2 epochs
    for got, want, last in zip(model.get_weights(), expected, steps[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert np.abs(want - last).max() > 1e-3  # the average is not the last iterate
    for raw, last in zip(average.raw_weights, steps[-1]):
        np.testing.assert_array_equal(raw, last)


def test_defaults_and_the_state_kept_out_of_training():
    """decay 0.999 by default (De et al. 2022); nothing averaged before training; the
    averages and the step counter are non-trainable (no tape or optimizer touches them)."""
    fresh = WeightAverage()
    assert fresh.decay == 0.999 and fresh.averages == [] and fresh.raw_weights == []
    _, _, average = _fit(0.9, epochs=1)
    assert average.averages and not any(v.trainable for v in average.averages)
    assert not average._step.trainable and float(average._step.numpy()) == 5.0  # pylint: disable=protected-access


def test_bad_decay():
    for decay in (0.0, 1.5):
        with pytest.raises(ValueError, match='decay must be'):
            WeightAverage(decay)
