"""SimpleRNN, LSTM and GRU (reset_after) by an own recurrence with two taps.

Every cell computes its gates from an input projection X_t = x_t W + b_in and a
recurrent projection R_t = h_{t-1} U + b_rec. X = x W + b_in is computed for all
steps at once and tapped; a zero probe Q (B, T, k) is added to R_t inside the
loop, so dL/dQ_t = dL/dR_t. Then, per example b (sums over the steps t):

    dl_b/dW = sum_t x_bt^T (dL/dX_bt),     dl_b/db_in  = sum_t dL/dX_bt,
    dl_b/dU = sum_t h_b,t-1^T (dL/dR_bt),  dl_b/db_rec = sum_t dL/dR_bt,

i.e. `forms.Linear` over the T steps, as for a Dense on a sequence (Li et al.
2022 treat sequences this way; the recurrence only makes h_{t-1} an input).
Masked steps keep the state, so their dL/dR and dL/dX are 0. Bidirectional
calls its two RNNs through `__call__`, so it needs no entry of its own.
Not supported (see `_problem`): cell dropout, GRU reset_after=False, stateful,
time_major; an `initial_state` argument is refused at trace time.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import tensorflow as tf

from tfpriv.dp.grad_sample import forms
from tfpriv.dp.grad_sample.registry import Recorder, register
from tfpriv.errors import FastClippingError

_L = tf.keras.layers
States = List[tf.Tensor]


def _problem(layer: _L.Layer) -> Optional[str]:
    cell = layer.cell
    if cell.dropout or cell.recurrent_dropout:
        return f'{layer.name!r} ({type(layer).__name__}) uses dropout/recurrent_dropout inside the cell'
    if layer.stateful or layer.time_major:
        return f'{layer.name!r} ({type(layer).__name__}) is stateful or time_major'
    if isinstance(layer, _L.GRU) and not cell.reset_after:
        return f'{layer.name!r} (GRU) has reset_after=False; the fast path needs reset_after=True'
    return None


def _simple(cell, x: tf.Tensor, r: tf.Tensor, states: States) -> Tuple[tf.Tensor, States]:
    h = cell.activation(x + r)
    return h, [h]


def _lstm(cell, x: tf.Tensor, r: tf.Tensor, states: States) -> Tuple[tf.Tensor, States]:
    i, f, g, o = tf.split(x + r, 4, axis=-1)
    c = cell.recurrent_activation(f) * states[1] + cell.recurrent_activation(i) * cell.activation(g)
    h = cell.recurrent_activation(o) * cell.activation(c)
    return h, [h, c]


def _gru(cell, x: tf.Tensor, r: tf.Tensor, states: States) -> Tuple[tf.Tensor, States]:
    x_z, x_r, x_h = tf.split(x, 3, axis=-1)
    r_z, r_r, r_h = tf.split(r, 3, axis=-1)
    z = cell.recurrent_activation(x_z + r_z)
    candidate = cell.activation(x_h + cell.recurrent_activation(x_r + r_r) * r_h)
    h = z * states[0] + (1 - z) * candidate
    return h, [h]


CELLS = {_L.SimpleRNN: _simple, _L.LSTM: _lstm, _L.GRU: _gru}


def _cell_fn(layer: _L.Layer):
    return next(fn for layer_type, fn in CELLS.items() if isinstance(layer, layer_type))


def _biases(layer: _L.Layer, recorder: Recorder) -> Tuple[Optional[tf.Tensor], Optional[tf.Tensor]]:
    """(b_in, b_rec): GRU(reset_after) keeps both in one (2, 3u) variable."""
    if not layer.cell.use_bias:
        return None, None
    bias = recorder.read(layer.cell.bias)
    return (bias[0], bias[1]) if bias.shape.rank == 2 else (bias, None)


def _bias_forms(layer: _L.Layer, g: tf.Tensor, row: int) -> List[forms.Form]:
    """The per-example gradient of the bias from projection `row`'s signal (B, T, k)."""
    split = layer.cell.use_bias and layer.cell.bias.shape.rank == 2
    if not layer.cell.use_bias or (row == 1 and not split):  # b_in only, in X
        return []
    summed = tf.reduce_sum(g, axis=1)
    if split:  # GRU: rows (b_in, b_rec); the other row is zero here
        pair = [summed, tf.zeros_like(summed)]
        summed = tf.stack(pair if row == 0 else pair[::-1], axis=1)
    return [forms.Explicit(layer.cell.bias, summed)]


def _step_fn(layer: _L.Layer, recorder: Recorder, cell_fn, carried: bool):
    """The cell step; its output is h_t, or [h_t, h_{t-1}] when `carried` (see `_previous`)."""
    recurrent, (_, b_rec) = recorder.read(layer.cell.recurrent_kernel), _biases(layer, recorder)

    def step(inputs, states):
        x_t, probe_t = inputs
        r_t = tf.matmul(states[0], recurrent) + probe_t + (0.0 if b_rec is None else b_rec)
        h, new_states = cell_fn(layer.cell, x_t, r_t, states)
        return (tf.concat([h, states[0]], axis=-1) if carried else h), new_states

    return step


def _previous(outputs: tf.Tensor, units: int, carried: bool, backwards: bool) -> tf.Tensor:
    """h_{t-1} of every step in input order: carried in the outputs when masked steps output
    zeros (`zero_output_for_mask`), else the outputs shifted by one step (h_0 = 0; a masked
    step's output repeats the previous one, which is the state it keeps)."""
    if carried:
        previous = outputs[..., units:]
    else:
        previous = tf.concat([tf.zeros_like(outputs[:, :1]), outputs[:, :-1]], axis=1)
    return tf.reverse(previous, [1]) if backwards else previous


def _taps(layer: _L.Layer, recorder: Recorder, inputs: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """The tapped input projection X and the zero probe Q; Q's forms need h_{t-1} (set later)."""
    b_in, _ = _biases(layer, recorder)
    x = tf.tensordot(inputs, recorder.read(layer.cell.kernel), [[2], [0]])
    x = x if b_in is None else x + b_in
    recorder.probe(x, lambda g: [forms.Linear(layer.cell.kernel, forms.rows(inputs), forms.rows(g),
                                              forms.grouped_kernel(layer.cell.kernel.shape))]
                   + _bias_forms(layer, g, 0))
    width = layer.cell.recurrent_kernel.shape[-1]
    return x, tf.zeros([tf.shape(inputs)[0], tf.shape(inputs)[1], width])


@register(_L.SimpleRNN, _L.LSTM, _L.GRU, problem=_problem)
def recurrent(layer: _L.Layer, recorder: Recorder, inputs: tf.Tensor, mask=None, training=None,
              initial_state=None) -> tf.Tensor:
    """The layer's recurrence (`keras.backend.rnn`), masks and go_backwards included."""
    del training  # no cell dropout on this path (`_problem`)
    if initial_state is not None:
        raise FastClippingError(f'{layer.name!r}: initial_state is not supported by fast clipping')
    inputs = tf.cast(inputs, layer.compute_dtype)
    x, probe = _taps(layer, recorder, inputs)
    units = layer.cell.units
    zeros = [tf.zeros([tf.shape(inputs)[0], units]) for _ in tf.nest.flatten(layer.cell.state_size)]
    previous = {}
    recorder.probe(probe, lambda g: [forms.Linear(
        layer.cell.recurrent_kernel, forms.rows(previous['h']), forms.rows(g),
        forms.grouped_kernel(layer.cell.recurrent_kernel.shape))] + _bias_forms(layer, g, 1))
    carried = mask is not None and layer.zero_output_for_mask
    last, outputs, states = tf.keras.backend.rnn(
        _step_fn(layer, recorder, _cell_fn(layer), carried), (x, probe), zeros,
        go_backwards=layer.go_backwards, mask=mask, zero_output_for_mask=layer.zero_output_for_mask)
    previous['h'] = _previous(outputs, units, carried, layer.go_backwards)
    output = outputs if layer.return_sequences else last
    output = output[..., :units] if carried else output
    return [output] + list(states) if layer.return_state else output
