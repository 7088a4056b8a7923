"""Augmentation multiplicity: the clipped quantity is the mean of the K views' gradients, and one
example's contribution to the summed clipped gradient has norm <= C (checked against a NumPy
brute force on the plain Keras model, not the code under test)."""

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.dp.augmult import AugmultModel, random_shifts
from tfpriv.dp.keras import make_private

K, N = 3, 5


def _rolls(images, views):
    """Deterministic views: view k is the image rolled by k pixels down (a test-only augment)."""
    return tf.stack([tf.roll(images, shift=k, axis=1) for k in range(views)], axis=1)


def _model():
    tf.keras.utils.set_random_seed(1)
    inputs = tf.keras.Input((6, 6, 1))
    x = tf.keras.layers.Conv2D(2, 3, activation='tanh')(inputs)
    outputs = tf.keras.layers.Dense(3)(tf.keras.layers.Flatten()(x))
    return tf.keras.Model(inputs, outputs)


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, N)


def _summed_clipped_gradient(clip, x, y):
    """(sum of clipped per-example gradients) read off one noiseless SGD step with lr 1: the
    update is -sum / B (tfpriv.dp.sgd), so sum = -(w_after - w_before) B."""
    base = _model()
    private = make_private(base, num_examples=N, batch_size=N, l2_norm_clip=clip,
                           noise_multiplier=0.0, clipping='vectorized')
    model = AugmultModel.wrap(private.model, K, augment=_rolls)
    model.compile(optimizer=tf.keras.optimizers.SGD(1.0), loss=private.loss)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.train_step((tf.constant(x), tf.constant(y)))
    return base, [N * (b - w.numpy()) for b, w in zip(before, model.trainable_weights)], before


def _brute_force(base, weights, clip, x, y):
    """Per example: the mean over its K rolled views of the plain model's gradients, clipped."""
    base.set_weights(weights)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    total = [np.zeros_like(w) for w in weights]
    for i in range(len(x)):
        grads = []
        for k in range(K):
            with tf.GradientTape() as tape:
                value = loss(y[i:i + 1], base(np.roll(x[i:i + 1], k, axis=1)))
            grads.append([g.numpy() for g in tape.gradient(value, base.trainable_weights)])
        mean = [np.mean(parts, axis=0) for parts in zip(*grads)]
        norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in mean))
        total = [t + g * min(1.0, clip / norm) for t, g in zip(total, mean)]
    return total


@pytest.mark.parametrize('clip', [0.05, 100.0])  # every example clipped / none clipped
def test_update_is_the_sum_of_clipped_view_averages(clip):
    x, y = _data()
    base, summed, before = _summed_clipped_gradient(clip, x, y)
    for got, want in zip(summed, _brute_force(base, before, clip, x, y)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_one_example_contributes_norm_at_most_c():
    """Sensitivity: removing example 0 changes the summed clipped gradient by a vector of norm
    <= C, and by exactly C when its gradient is clipped (C = 0.05 is far below every norm
    here); tolerance 1e-4 relative, float32 round-off."""
    x, y = _data()
    clip = 0.05
    _, with_all, _ = _summed_clipped_gradient(clip, x, y)
    base, without, before = _summed_clipped_gradient(clip, x[1:], y[1:])
    diff = np.sqrt(sum(float(np.sum((a - b).astype(np.float64) ** 2))
                       for a, b in zip(with_all, without)))
    assert clip * (1 - 1e-4) <= diff <= clip * (1 + 1e-4)
    alone = _brute_force(base, before, clip, x[:1], y[:1])
    assert np.sqrt(sum(float(np.sum(g ** 2)) for g in alone)) == pytest.approx(clip, rel=1e-4)


def test_random_shifts_are_translations_within_range():
    rng = np.random.default_rng(2)
    images = np.zeros((4, 10, 10, 1), np.float32)
    images[:, 3:7, 3:7, 0] = rng.random((4, 4, 4))
    views = random_shifts(2)(tf.constant(images), 5).numpy()
    assert views.shape == (4, 5, 10, 10, 1)
    for b in range(4):
        for view in views[b]:
            matches = [(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)
                       if np.array_equal(view, np.roll(images[b], (dy, dx), axis=(0, 1)))]
            assert matches, 'a view is not a shift of its image by at most 2 pixels'


def test_fast_and_microbatch_paths_are_refused():
    base = _model()
    for clipping in ('fast', 'microbatch'):
        private = make_private(base, num_examples=N, batch_size=N, l2_norm_clip=1.0,
                               noise_multiplier=1.0, clipping=clipping)
        with pytest.raises(ValueError, match="augmentation multiplicity needs clipping='vectorized'"):
            AugmultModel.wrap(private.model, 2)
