"""conv.py and rnn.py cases the other grad_sample tests miss (mutation round 7b, issue #20).

- `conv._unit_stride_geometry` against TensorFlow's own 'SAME'/'VALID' padding: the
  receptive fields of `tf.image.extract_patches` with the layer's padding equal those of the
  input padded by (before, after) and taken 'VALID', and their count is the output positions.
  `patches` hides a too large padding after (its views never reach it) and ignores the
  padding of 'valid'; both would matter to any other caller. Exact equality: the op only
  copies values.
- LSTM(return_state=True) with the final states read by the head, and a masked
  Bidirectional sequence read whole by Flatten (its masked steps output zeros), against the brute-force
  reference (`test_mutation_survivors._check`: norms and clipped sum, rtol 1e-4).
- The refusals of `rnn.py` word for word (a stateful or dropout RNN, a GRU with
  reset_after=False, an `initial_state` argument at trace time).
"""

import itertools
import re

import numpy as np
import pytest
import tensorflow as tf

from tests.dp.grad_sample import reference
from tests.dp.grad_sample.test_mutation_survivors import _check
from tfpriv.dp.grad_sample import per_example_norms, problems
from tfpriv.dp.grad_sample.conv import _unit_stride_geometry
from tfpriv.errors import FastClippingError

L = tf.keras.layers
BATCH = 6


def _fields(x, kernel, dilation, padding):
    fields = tf.image.extract_patches(x, sizes=[1, 1, kernel, 1], strides=[1, 1, 1, 1],
                                      rates=[1, 1, dilation, 1], padding=padding)
    return fields.numpy()


@pytest.mark.parametrize('size,kernel,dilation,padding', list(itertools.product(
    [7, 8], [1, 2, 3, 4], [1, 2], ['valid', 'same'])))
def test_unit_stride_geometry_is_tf_padding(size, kernel, dilation, padding):
    x = tf.constant(np.random.default_rng(size).normal(size=(2, 1, size, 3)), tf.float32)
    for length in (size, tf.constant(size)):  # an int, or a length known only at run time
        positions, before, after = (int(v) for v in _unit_stride_geometry(
            length, kernel, dilation, padding))
        padded = tf.pad(x, [[0, 0], [0, 0], [before, after], [0, 0]])
        want = _fields(x, kernel, dilation, padding.upper())
        np.testing.assert_array_equal(_fields(padded, kernel, dilation, 'VALID'), want)
        assert positions == want.shape[2]


def _recurrent(layer):
    inputs = tf.keras.Input((5, 3))
    return tf.keras.Model(inputs, L.Dense(3)(layer(inputs)))


@pytest.mark.parametrize('layer,message', [
    (lambda: L.LSTM(3, dropout=0.1, name='rnn'),
     "'rnn' (LSTM) uses dropout/recurrent_dropout inside the cell"),
    (lambda: L.SimpleRNN(3, recurrent_dropout=0.1, name='rnn'),
     "'rnn' (SimpleRNN) uses dropout/recurrent_dropout inside the cell"),
    (lambda: L.GRU(3, reset_after=False, name='rnn'),
     "'rnn' (GRU) has reset_after=False; the fast path needs reset_after=True"),
], ids=['lstm_dropout', 'simple_recurrent_dropout', 'gru_reset_before'])
def test_recurrent_refusals_word_for_word(layer, message):
    assert problems(_recurrent(layer())) == [message]


def test_initial_state_is_refused_at_trace_time():
    inputs = tf.keras.Input((5, 3))
    state = L.Dense(4)(L.Flatten()(inputs))
    model = tf.keras.Model(inputs, L.Dense(3)(L.GRU(4, name='rnn')(inputs, initial_state=state)))
    rng = np.random.default_rng(3)
    x, y = (rng.normal(size=(BATCH, *shape)).astype(np.float32) for shape in [(5, 3), (3,)])
    with pytest.raises(FastClippingError,
                       match=re.escape("'rnn': initial_state is not supported by fast clipping")):
        per_example_norms(model, reference.squared_error, x, y)


def test_return_state_equals_brute_force():
    """LSTM(return_state=True): the head reads the output and both final states (h, c)."""
    tf.keras.utils.set_random_seed(13)
    rng = np.random.default_rng(13)
    inputs = tf.keras.Input((5, 3))
    output, h, c = L.LSTM(4, return_state=True)(inputs)
    model = tf.keras.Model(inputs, L.Dense(3)(L.Concatenate()([output, h, c])))
    x, y = (rng.normal(size=(BATCH, *shape)).astype(np.float32) for shape in [(5, 3), (3,)])
    _check(model, x, y)


def test_masked_sequence_read_by_a_layer_without_masks_equals_brute_force():
    """Bidirectional(LSTM) on a masked sequence, read whole by Flatten: the masked steps'
    outputs (zeros, `zero_output_for_mask`) reach the head, unlike a GRU that skips them."""
    tf.keras.utils.set_random_seed(17)
    rng = np.random.default_rng(17)
    inputs = tf.keras.Input((6,), dtype='int32')
    sequence = L.Bidirectional(L.LSTM(3, return_sequences=True))(
        L.Embedding(7, 3, mask_zero=True)(inputs))
    model = tf.keras.Model(inputs, L.Dense(3)(L.Flatten()(sequence)))
    x = rng.integers(1, 7, (BATCH, 6)).astype(np.int32)
    x[:, 4:] = 0  # padded ends
    x[1, 2] = 0  # a hole
    _check(model, x, rng.normal(size=(BATCH, 3)).astype(np.float32))
