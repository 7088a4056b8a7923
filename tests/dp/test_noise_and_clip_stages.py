"""The noise and clipping stages of DP-SGD, called directly (issue #20, mutation testing).

`DPSGDModel._privatize` and the three clipped-sum paths (`_fast_sum`, `_vectorized_sum`,
`_loop_sum`), and the fast engine's `clip_weights`, are checked on a linear model whose
per-example gradients are written out in NumPy here (the reference is not the code under
test): for f(x) = W x + b and the loss (f(x) - y)^2 summed over outputs (Keras 'mse'
times the output count, see `_reference`), dl/dW = 2 r x^T and dl/db = 2 r, r = f(x) - y.
Each test takes well under a second once TensorFlow is loaded, so a mutant of these stages
is checked in seconds (tests/mutation/targets.tsv).

Noise tolerance (two-sided, 5 standard errors, p ~ 6e-7 per check): the sample variance of
n = 200,000 i.i.d. N(0, s^2) values has se s^2 sqrt(2 / (n - 1)) (0.32 %), so the variance
is checked to +-1.6 % and the mean to 5 s / sqrt(n).
"""

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.dp import make_private
from tfpriv.dp.grad_sample.engine import clip_weights

Z = 5.0
N = 200_000
IN, OUT = 3, 2


def _private(clipping: str, noise_multiplier: float, l2_norm_clip: float, batch_size: int = 4,
             virtual_batch_size=None):
    tf.keras.utils.set_random_seed(3)
    model = tf.keras.Sequential([tf.keras.Input((IN,)), tf.keras.layers.Dense(OUT)])
    kwargs = {} if virtual_batch_size is None else {'virtual_batch_size': virtual_batch_size}
    private = make_private(model, num_examples=100, batch_size=batch_size,
                           l2_norm_clip=l2_norm_clip, noise_multiplier=noise_multiplier,
                           clipping=clipping, loss='mse', **kwargs)
    private.model.compile(optimizer=private.optimizer, loss=private.loss)
    return private.model, model


def _data():
    """5 examples: residual norms from ~0.1 to ~30, so some are clipped and some are not."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, IN)).astype(np.float32)
    y = (rng.normal(size=(5, OUT)) * np.array([[0.01], [0.1], [1.0], [5.0], [10.0]])).astype(
        np.float32)
    return x, y


def _reference(inner, x, y, clip, weights=None):
    """NumPy: sum_b clip_C(grad_b) of Keras 'mse' (mean over the OUT outputs) times weight_b."""
    kernel, bias = (v.numpy().astype(np.float64) for v in inner.trainable_variables)
    weights = np.ones(len(x)) if weights is None else weights
    residual = x.astype(np.float64) @ kernel + bias - y
    grad_kernel = 2.0 / OUT * np.einsum('bi,bo->bio', x, residual) * weights[:, None, None]
    grad_bias = 2.0 / OUT * residual * weights[:, None]
    norms = np.sqrt((grad_kernel ** 2).sum(axis=(1, 2)) + (grad_bias ** 2).sum(axis=1))
    scale = clip / np.maximum(norms, clip)
    return norms, [np.tensordot(scale, grad_kernel, 1), np.tensordot(scale, grad_bias, 1)]


@pytest.mark.parametrize('noise_multiplier, clip, batch', [(1.5, 2.0, 8), (0.7, 0.5, 20)])
def test_privatize_adds_n_0_sigma_c_then_divides_by_the_expected_batch(noise_multiplier, clip,
                                                                       batch):
    """(sum + N(0, (σC)^2)) / B on a constant sum of 3: mean 3 / B, variance (σC / B)^2 (σ below
    and above 1, C below and above 1, so σC, σ/C, σ and C differ)."""
    dp_model, _ = _private('vectorized', noise_multiplier, clip, batch)
    tf.random.set_seed(11)
    out = dp_model._privatize(tf.fill([N], 3.0)).numpy().astype(np.float64)
    var = (noise_multiplier * clip / batch) ** 2
    assert abs(out.var(ddof=1) - var) <= Z * var * np.sqrt(2 / (N - 1)), (out.var(), var)
    assert abs(out.mean() - 3.0 / batch) <= Z * np.sqrt(var / N)


def test_privatize_without_noise_is_the_exact_mean_over_the_expected_batch():
    dp_model, _ = _private('vectorized', 0.0, 1.0, 8)
    summed = tf.constant([8.0, -4.0, 0.5])
    np.testing.assert_array_equal(dp_model._privatize(summed).numpy(), [1.0, -0.5, 0.0625])


@pytest.mark.parametrize('clipping, virtual', [('fast', None), ('vectorized', None),
                                               ('vectorized', 2), ('microbatch', None)])
def test_every_path_sums_the_clipped_per_example_gradients(clipping, virtual):
    """The three paths (and virtual chunks of 2, 2, 1) against the NumPy clipped sum, C = 1;
    at least one example is clipped (norm > 2C) and one kept (norm < C/2)."""
    dp_model, inner = _private(clipping, 1.0, 1.0, virtual_batch_size=virtual)
    x, y = _data()
    weight = np.array([1.0, 0.5, 2.0, 1.0, 0.25], np.float32)
    norms, want = _reference(inner, x, y, 1.0, weight.astype(np.float64))
    assert norms.max() > 2.0 and norms.min() < 0.5
    got, _ = dp_model._clipped_sum(tf.constant(x), (tf.constant(y), tf.constant(weight)))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-4, atol=1e-6)


def test_one_clipped_gradient_has_norm_exactly_c_and_a_small_one_is_kept():
    """`_clipped_gradient` of one example: example 4 (gradient norm 4.8) is scaled to C = 0.5
    along the same direction; example 0 (norm 0.19) is unchanged."""
    dp_model, inner = _private('microbatch', 1.0, 0.5)
    x, y = _data()
    for b, clipped in ((0, False), (4, True)):
        norms, want = _reference(inner, x[b:b + 1], y[b:b + 1], 0.5)
        assert (norms[0] > 2 * 0.5) if clipped else (norms[0] < 0.5)
        got = dp_model._clipped_gradient(tf.constant(x[b:b + 1]),
                                         (tf.constant(y[b:b + 1]), tf.ones([1])))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-4, atol=1e-7)


def test_clip_weights_are_c_over_max_c_norm():
    """w_b = C / max(C, sqrt(max(s_b, 0))) for squared norms s_b, by hand: C = 0.5 and C = 2."""
    squared = tf.constant([0.0, 0.01, 0.25, 1.0, 16.0, -1e-7])
    np.testing.assert_allclose(clip_weights(squared, 0.5).numpy(),
                               [1.0, 1.0, 1.0, 0.5, 0.125, 1.0], rtol=1e-6)
    np.testing.assert_allclose(clip_weights(squared, 2.0).numpy(),
                               [1.0, 1.0, 1.0, 1.0, 0.5, 1.0], rtol=1e-6)


def test_chunk_size_fits_the_gradient_memory_budget():
    """Default chunk: GRADIENT_MEMORY_BYTES // (4 bytes x 8 weights) = 2 MiB of examples;
    an explicit virtual_batch_size is taken as given."""
    from tfpriv.dp.sgd import GRADIENT_MEMORY_BYTES
    dp_model, _ = _private('vectorized', 1.0, 1.0)
    assert dp_model.chunk_size() == GRADIENT_MEMORY_BYTES // (4 * (IN * OUT + OUT)) == 2 ** 21
    assert _private('vectorized', 1.0, 1.0, virtual_batch_size=3)[0].chunk_size() == 3


def test_per_example_norms_of_the_fast_engine_are_the_numpy_norms():
    """`grad_sample.per_example_norms` on the linear model: ||dl_b/dθ|| of each example, the
    NumPy norms of `_reference` (loss: Keras 'mse' of each example, unweighted)."""
    from tfpriv.dp.grad_sample import per_example_norms
    _, inner = _private('fast', 1.0, 1.0)
    x, y = _data()
    want, _ = _reference(inner, x, y, 1.0)
    got = per_example_norms(inner, lambda y_true, y_pred: tf.reduce_mean(
        tf.square(y_pred - y_true), axis=1), tf.constant(x), tf.constant(y))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4)


def test_chunk_size_floor_and_the_weight_count(monkeypatch):
    """A budget below one example's gradient still gives chunks of 1; a model with one weight
    gets budget // 4 examples."""
    from tfpriv.dp import sgd
    dp_model, _ = _private('vectorized', 1.0, 1.0)
    monkeypatch.setattr(sgd, 'GRADIENT_MEMORY_BYTES', 4 * (IN * OUT + OUT) - 1)
    assert dp_model.chunk_size() == 1
    monkeypatch.undo()
    tf.keras.utils.set_random_seed(3)
    one = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1, use_bias=False)])
    private = make_private(one, num_examples=100, batch_size=4, l2_norm_clip=1.0,
                           noise_multiplier=1.0, clipping='vectorized', loss='mse')
    assert private.model.chunk_size() == sgd.GRADIENT_MEMORY_BYTES // 4


def test_vectorized_step_reports_the_loss_of_the_weights_it_started_from():
    """train_on_batch on the vectorized path returns Keras's mse of the pre-step weights
    (the y_pred the step computes), by NumPy."""
    dp_model, inner = _private('vectorized', 0.0, 1.0)
    x, y = _data()
    kernel, bias = (v.numpy().astype(np.float64) for v in inner.trainable_variables)
    want = np.mean((x @ kernel + bias - y) ** 2)
    assert dp_model.train_on_batch(x, y) == pytest.approx(want, rel=1e-5)


class _TrainingScale(tf.keras.layers.Layer):
    """x * 2 in training mode, x at inference: shows which mode produced an output."""

    def call(self, inputs, training=None):  # pylint: disable=arguments-differ
        return inputs * 2.0 if training else inputs


@pytest.mark.parametrize('clipping', ['vectorized', 'microbatch'])
def test_reported_loss_comes_from_the_training_mode_forward_pass(clipping):
    """The y_pred that Keras's loss and metrics report is the training-mode output, as in
    non-DP `fit` (dropout on): the NumPy mse of 2 (W x + b) - y, which differs from the
    inference-mode mse of (W x + b) - y by far more than the 1e-5 tolerance."""
    tf.keras.utils.set_random_seed(3)
    inner = tf.keras.Sequential([tf.keras.Input((IN,)), tf.keras.layers.Dense(OUT),
                                 _TrainingScale()])
    private = make_private(inner, num_examples=100, batch_size=4, l2_norm_clip=1.0,
                           noise_multiplier=0.0, clipping=clipping, loss='mse')
    private.model.compile(optimizer=private.optimizer, loss=private.loss)
    x, y = _data()
    kernel, bias = (v.numpy().astype(np.float64) for v in inner.trainable_variables)
    train, infer = (np.mean((k * (x @ kernel + bias) - y) ** 2) for k in (2.0, 1.0))
    assert abs(train - infer) > 1e-2 * train
    assert private.model.train_on_batch(x, y) == pytest.approx(train, rel=1e-5)
