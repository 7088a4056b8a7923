"""Every registry entry: per-example norms and the clipped summed gradient equal brute force.

Reference: one GradientTape per example (`reference.py`), in float64 for the sums.
Tolerance: float32 forward/backward passes and sums of at most ~10^3 products
give relative errors ~1e-6; we allow rtol 1e-4 (atol 1e-6 for entries near 0).
A wrong term (a missing position, a wrong group or stride, a wrong tap) changes
norms by far more. C is the median reference norm, so half the examples are
clipped and half are not: both branches of min(1, C/||g||) are checked.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.dp.grad_sample import reference
from tfpriv.dp.grad_sample import clipped_sum, conv, forms, per_example_norms

L = tf.keras.layers
BATCH = 6

CASES = {
    'dense_2d': ((6,), lambda: L.Dense(5, activation='relu')),
    'dense_sequence_ghost': ((3, 16), lambda: L.Dense(16)),
    'dense_sequence_explicit': ((12, 3), lambda: L.Dense(2, activation='tanh')),
    'dense_rank4': ((4, 3, 5), lambda: L.Dense(4, use_bias=False)),
    'embedding_explicit': ((7,), lambda: L.Embedding(5, 3)),
    'embedding_ghost': ((4,), lambda: L.Embedding(50, 8)),
    'conv1d_valid': ((9, 3), lambda: L.Conv1D(4, 3, activation='relu')),
    'conv1d_same_stride': ((9, 3), lambda: L.Conv1D(4, 3, strides=2, padding='same')),
    'conv1d_causal_dilated': ((9, 2), lambda: L.Conv1D(3, 2, padding='causal', dilation_rate=2)),
    'conv1d_groups': ((8, 4), lambda: L.Conv1D(6, 3, groups=2)),
    'conv2d_valid': ((6, 5, 2), lambda: L.Conv2D(3, 3, activation='relu')),
    'conv2d_one_channel': ((6, 5, 1), lambda: L.Conv2D(3, 3, activation='relu')),
    'conv2d_one_channel_same_dilated': ((7, 7, 1), lambda: L.Conv2D(
        2, (3, 2), dilation_rate=2, padding='same', use_bias=False)),
    'conv1d_one_channel_causal': ((9, 1), lambda: L.Conv1D(3, 2, padding='causal')),
    'conv2d_same_strides': ((7, 6, 2), lambda: L.Conv2D(3, (3, 2), strides=(2, 1), padding='same')),
    'conv2d_dilated': ((7, 7, 2), lambda: L.Conv2D(3, 3, dilation_rate=2, padding='same')),
    'conv2d_groups_no_bias': ((5, 5, 4), lambda: L.Conv2D(6, 3, groups=2, use_bias=False)),
    'conv2d_ghost': ((4, 4, 16), lambda: L.Conv2D(16, 3, strides=2, padding='same')),
    'conv2d_groups_ghost': ((4, 4, 32), lambda: L.Conv2D(32, 3, strides=2, padding='same',
                                                         groups=2)),
    'depthwise_same_strided': ((6, 6, 3), lambda: L.DepthwiseConv2D(
        3, strides=2, padding='same', depth_multiplier=2)),
    'depthwise_dilated': ((7, 7, 2), lambda: L.DepthwiseConv2D(3, dilation_rate=2)),
    'separable_valid': ((6, 6, 3), lambda: L.SeparableConv2D(4, 3)),
    'separable_strided': ((7, 7, 2), lambda: L.SeparableConv2D(
        3, 3, strides=2, padding='same', depth_multiplier=2, activation='relu')),
    'layer_norm_last_axis': ((5, 6), lambda: L.LayerNormalization()),
    'layer_norm_two_axes': ((4, 5, 3), lambda: L.LayerNormalization(axis=[1, 2])),
    'group_norm': ((4, 4, 4), lambda: L.GroupNormalization(groups=2)),
    'instance_norm': ((3, 4, 4), lambda: L.GroupNormalization(groups=4)),
    'simple_rnn': ((5, 3), lambda: L.SimpleRNN(4)),
    'lstm_sequences': ((5, 3), lambda: L.LSTM(4, return_sequences=True)),
    'gru_backwards': ((5, 3), lambda: L.GRU(4, go_backwards=True)),
    'gru_no_bias_sequences': ((5, 3), lambda: L.GRU(3, use_bias=False, return_sequences=True)),
    'bidirectional_lstm': ((5, 3), lambda: L.Bidirectional(L.LSTM(3, return_sequences=True))),
    'bidirectional_gru_concat_states': ((6, 2), lambda: L.Bidirectional(L.GRU(3))),
    'masked_lstm': ((6,), lambda: tf.keras.Sequential([L.Embedding(7, 3, mask_zero=True),
                                                       L.LSTM(4)])),
    # Bidirectional sets zero_output_for_mask: after a hole, h_{t-1} is the carried state
    'masked_lstm_sequences': ((6,), lambda: tf.keras.Sequential([
        L.Embedding(7, 3, mask_zero=True), L.Bidirectional(L.LSTM(4, return_sequences=True)),
        L.GRU(3)])),
}


def _model(case):
    shape, make = CASES[case]
    integer = case.startswith(('embedding', 'masked_lstm'))
    inputs = tf.keras.Input(shape, dtype='int32' if integer else 'float32')
    hidden = L.Flatten()(make()(inputs))
    return tf.keras.Model(inputs, L.Dense(3)(hidden))


def _data(case, rng):
    shape, _ = CASES[case]
    if case.startswith(('embedding', 'masked_lstm')):
        vocabulary = {'embedding_explicit': 5, 'embedding_ghost': 50}.get(case, 7)
        x = rng.integers(1, vocabulary, (BATCH, *shape)).astype(np.int32)
        x[:, 1] = x[:, 0]  # repeated ids inside an example: the cross terms of the ghost norm
        if case.startswith('masked_lstm'):
            x[:, 4:] = 0  # padded ends: masked steps keep the state
            x[0, 2:] = 0
            x[1, 2] = 0  # a hole: step 3 continues from step 1's state
    else:
        x = rng.normal(size=(BATCH, *shape)).astype(np.float32)
    return x, rng.normal(size=(BATCH, 3)).astype(np.float32)


@pytest.mark.parametrize('case', sorted(CASES))
def test_norms_and_clipped_sum_equal_brute_force(case):
    tf.keras.utils.set_random_seed(7)
    model = _model(case)
    x, y = _data(case, np.random.default_rng(7))
    grads = reference.per_example_gradients(model, reference.squared_error, x, y)
    expected_norms = reference.norms(grads)
    l2_norm_clip = float(np.median(expected_norms))
    np.testing.assert_allclose(per_example_norms(model, reference.squared_error, x, y),
                               expected_norms, rtol=1e-4, atol=1e-6)
    summed, _ = clipped_sum(model, reference.squared_error, x, y, l2_norm_clip)
    for got, want, variable in zip(summed, reference.clipped_sum(grads, l2_norm_clip),
                                   model.trainable_variables):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=variable.name)


def test_group_norm_of_inputs_far_from_zero_mean_equals_brute_force():
    """GroupNormalization's γ gradient is s (sum G x - μ sum G), a difference of two sums that
    cancel when |μ| >> σ; with μ = 100 σ float32 keeps it within the tolerance above
    (measured: 3.9e-6 relative at μ = 100 σ, 5.1e-5 at μ = 1000 σ)."""
    tf.keras.utils.set_random_seed(7)
    inputs = tf.keras.Input((8, 8, 8))
    normalized = L.GroupNormalization(2, gamma_initializer='random_normal')(inputs)
    model = tf.keras.Model(inputs, L.Dense(3)(L.Flatten()(normalized)))
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(BATCH, 8, 8, 8)) + 100).astype(np.float32)
    y = rng.normal(size=(BATCH, 3)).astype(np.float32)
    expected = reference.norms(reference.per_example_gradients(model, reference.squared_error, x, y))
    np.testing.assert_allclose(per_example_norms(model, reference.squared_error, x, y), expected,
                               rtol=1e-4)


@pytest.mark.parametrize('case, by_offsets', [
    ('conv2d_one_channel', True), ('conv2d_one_channel_same_dilated', True),
    ('conv1d_one_channel_causal', True), ('conv2d_valid', False), ('conv1d_same_stride', False)])
def test_single_channel_convolutions_take_the_offsets_layout(case, by_offsets):
    """The cases above whose per-example kernel gradients come from `conv.offset_views`."""
    model = _model(case)
    layer = model.layers[1]
    x = tf.zeros([2, *CASES[case][0]])
    if isinstance(layer, L.Conv1D) and layer.padding == 'causal':
        x = tf.pad(x, layer._compute_causal_padding(x))  # pylint: disable=protected-access
    g = layer.convolution_op(x, layer.kernel)
    assert conv._by_offsets(layer, x, g) is by_offsets  # pylint: disable=protected-access


def test_a_single_channel_convolution_called_twice_equals_brute_force():
    """A shared layer's per-example gradients are summed over its calls before the norm, so
    the offsets layout's per-example kernel gradients (not only their norms and weighted
    sum) must have the kernel's shape for every example."""
    tf.keras.utils.set_random_seed(7)
    inputs = tf.keras.Input((6, 5, 1))
    shared = L.Conv2D(1, 3, padding='same', activation='tanh')
    model = tf.keras.Model(inputs, L.Dense(3)(L.Flatten()(shared(shared(inputs)))))
    rng = np.random.default_rng(7)
    x = rng.normal(size=(BATCH, 6, 5, 1)).astype(np.float32)
    y = rng.normal(size=(BATCH, 3)).astype(np.float32)
    expected = reference.norms(reference.per_example_gradients(model, reference.squared_error, x, y))
    np.testing.assert_allclose(per_example_norms(model, reference.squared_error, x, y), expected,
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('positions,inputs,outputs,ghost', [
    (1, 784, 128, True),      # a Dense on flat inputs: ||a||^2 ||g||^2
    (28, 64, 256, False),     # an LSTM's recurrent kernel over 28 steps
    (121, 288, 64, False),    # the keras.io convnet's second convolution
    (4, 144, 16, True),       # 'conv2d_ghost' and, per group, 'conv2d_groups_ghost' above
    (12, 320, 64, True),      # the Conv1D text model's first convolution
    (64, 256, 256, True),     # 2^16 floats per example: B of them spill out of the cache
    (196, 800, 64, False),    # cnn_large's second convolution: ghost's Gram matrices far costlier
    (2, 1024, 1024, True),    # explicit would keep 2^20 floats per example
    (None, 8, 8, False)])     # T unknown until run time
def test_ghost_or_explicit_follows_the_book_keeping_cost(positions, inputs, outputs, ghost):
    assert forms.linear_ghost(positions, inputs, outputs) is ghost
