"""Layer variants the parametrized cases of test_layers.py miss (mutation testing, issue #20).

Each case: per-example norms and the clipped summed gradient against the brute-force
reference (one GradientTape per example in eager mode, `reference.py`, not the code under
test). Tolerance as in test_layers.py: float32 passes give relative errors ~1e-6; rtol 1e-4,
atol 1e-6. C is the median reference norm, so both branches of min(1, C/||g||) are taken.

- Unknown sequence length: Keras traces `train_step` with the dataset's element spec, and a
  padded-batch pipeline gives (None, None, ...) inputs, so the layer code must take the
  length from the tensor, not from the static shape (graph mode, tf.function).
- LayerNormalization with only γ or only β, and γ ≠ 1, β ≠ 0 (the default initializers
  hide a division for the product or a subtraction for the sum).
- GroupNormalization over a channel axis that is not the last one, with only γ or only β,
  and with a mask (moments over the masked positions only).
- Depthwise and separable convolutions on non-square images (height and width swapped in
  the batch folding would go unnoticed on square ones).
- GRU and LSTM with random biases (zero biases hide an input bias read for the recurrent
  one, or a recurrent bias subtracted).
- A normalization over the batch axis mixes examples: `problems` must refuse it.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.dp.grad_sample import reference
from tfpriv.dp.grad_sample import clipped_sum, per_example_norms, problems

L = tf.keras.layers
BATCH = 6


def _random_affine():
    return {'gamma_initializer': tf.keras.initializers.RandomUniform(0.3, 2.0, seed=1),
            'beta_initializer': tf.keras.initializers.RandomUniform(-1.0, 1.0, seed=2)}


def _fast(model, l2_norm_clip):
    def run(x, y):
        norms = per_example_norms(model, reference.squared_error, x, y)
        return norms, clipped_sum(model, reference.squared_error, x, y, l2_norm_clip)[0]
    return run


def _check(model, x, y, spec=None):
    """Norms and clipped sum of the fast path (in a tf.function over `spec` if given)."""
    grads = reference.per_example_gradients(model, reference.squared_error, x, y)
    expected_norms = reference.norms(grads)
    l2_norm_clip = float(np.median(expected_norms))
    fast = _fast(model, l2_norm_clip)
    if spec is not None:
        fast = tf.function(fast, input_signature=[spec, tf.TensorSpec([None, 3], tf.float32)])
        assert fast.get_concrete_function().structured_input_signature[0][0].shape[1] is None
    norms, summed = fast(x, y)
    np.testing.assert_allclose(norms, expected_norms, rtol=1e-4, atol=1e-6)
    assert len(summed) == len(model.trainable_variables)
    for got, want, variable in zip(summed, reference.clipped_sum(grads, l2_norm_clip),
                                   model.trainable_variables):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=variable.name)


def _head(inputs, hidden):
    return tf.keras.Model(inputs, L.Dense(3)(hidden))


@pytest.mark.parametrize('case', ['dense', 'conv1d', 'embedding'])
def test_unknown_length_norms_and_clipped_sum_equal_brute_force(case):
    tf.keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    if case != 'embedding':
        inputs = tf.keras.Input((None, 3))
        layer = L.Dense(4, activation='tanh') if case == 'dense' else L.Conv1D(4, 2)
        hidden = layer(inputs)
        x = rng.normal(size=(BATCH, 5, 3)).astype(np.float32)
        spec = tf.TensorSpec([None, None, 3], tf.float32)
    else:
        inputs = tf.keras.Input((None,), dtype='int32')
        hidden = L.Embedding(9, 4)(inputs)
        x = rng.integers(0, 9, (BATCH, 5)).astype(np.int32)
        x[:, 1] = x[:, 0]  # a repeated id inside each example: the cross terms of the ghost norm
        spec = tf.TensorSpec([None, None], tf.int32)
    model = _head(inputs, L.GlobalAveragePooling1D()(hidden))
    _check(model, x, rng.normal(size=(BATCH, 3)).astype(np.float32), spec)


VARIANTS = {
    'layer_norm_scale_only': ((5, 4), lambda: L.LayerNormalization(center=False, **_random_affine())),
    'layer_norm_center_only': ((5, 4), lambda: L.LayerNormalization(scale=False, **_random_affine())),
    'depthwise_non_square': ((6, 4, 2), lambda: L.DepthwiseConv2D(3, depth_multiplier=2)),
    'separable_non_square': ((5, 7, 2), lambda: L.SeparableConv2D(3, 3)),
    'gru_random_biases': ((5, 3), lambda: L.GRU(4, bias_initializer=tf.keras.initializers.
                                                RandomUniform(-1.0, 1.0, seed=3))),
    'lstm_random_biases': ((5, 3), lambda: L.LSTM(3, bias_initializer=tf.keras.initializers.
                                                  RandomUniform(-1.0, 1.0, seed=4))),
    'group_norm_channel_axis_1': ((4, 3, 2), lambda: L.GroupNormalization(2, axis=1, **_random_affine())),
    'group_norm_scale_only': ((3, 3, 4), lambda: L.GroupNormalization(2, center=False,
                                                                      **_random_affine())),
    'group_norm_center_only': ((3, 3, 4), lambda: L.GroupNormalization(2, scale=False,
                                                                       **_random_affine())),
}


@pytest.mark.parametrize('case', sorted(VARIANTS))
def test_variants_equal_brute_force(case):
    tf.keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    shape, make = VARIANTS[case]
    inputs = tf.keras.Input(shape)
    model = _head(inputs, L.Flatten()(make()(inputs)))
    x = rng.normal(size=(BATCH, *shape)).astype(np.float32)
    _check(model, x, rng.normal(size=(BATCH, 3)).astype(np.float32))


class _MaskedGroupNorm(tf.keras.Model):
    """GroupNormalization given a mask (the positions where x > 0) by the model's own code."""

    def __init__(self):
        super().__init__()
        self.norm = L.GroupNormalization(2, **_random_affine())
        self.flatten, self.dense = L.Flatten(), L.Dense(3)

    def call(self, inputs, training=None):
        mask = tf.cast(inputs > 0, inputs.dtype)
        return self.dense(self.flatten(self.norm(inputs, mask=mask)))


def test_group_norm_with_a_mask_equals_brute_force():
    tf.keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    model = _MaskedGroupNorm()
    x = rng.normal(size=(BATCH, 3, 3, 4)).astype(np.float32)
    model(x)
    _check(model, x, rng.normal(size=(BATCH, 3)).astype(np.float32))


@pytest.mark.parametrize('axis', [0, [2, 0], -3], ids=['axis_0', 'axes_2_0', 'axis_minus_rank'])
def test_layer_norm_over_the_batch_axis_is_refused(axis):
    inputs = tf.keras.Input((4, 3), batch_size=BATCH)  # a fixed batch, so that the layer builds
    model = _head(inputs, L.Flatten()(L.LayerNormalization(axis=axis, name='over_batch')(inputs)))
    assert problems(model) == ["'over_batch' (LayerNormalization) normalizes over the batch axis"]


def test_group_norm_over_channel_axis_1_is_accepted():
    inputs = tf.keras.Input((4, 3, 2))  # rank 4: axis 1 is neither 0 nor −rank
    assert problems(_head(inputs, L.Flatten()(L.GroupNormalization(2, axis=1)(inputs)))) == []


@pytest.mark.parametrize('flag', ['stateful', 'time_major'])
def test_stateful_or_time_major_recurrent_layer_is_refused(flag):
    """A stateful RNN starts each batch from the previous batch's states (other examples)."""
    inputs = tf.keras.Input((5, 3), batch_size=BATCH)
    if flag == 'time_major':
        recurrent = L.LSTM(3, time_major=True, name='rnn')
    else:
        recurrent = L.LSTM(3, stateful=True, name='rnn')
    model = _head(inputs, recurrent(inputs))
    assert problems(model) == ["'rnn' (LSTM) is stateful or time_major"]
