"""Convolutions: Conv1D/Conv2D (strides, valid/same/causal padding, dilation, groups),
DepthwiseConv2D and SeparableConv2D, channels_last.

A convolution is a `Dense` on its input patches (im2col): Z_b = P_b W + bias with
P_b (T x k c_in) the receptive fields of example b's T output positions, so
dL_b/dW = P_b^T G_b (Goodfellow 2015; Opacus's unfold; Bu et al. 2022). With g
groups, output block j sees only input channels of group j: g independent
products (`forms.Linear` with a group axis). A depthwise convolution treats
every channel alone, so folding the batch into the channels, (B, H, W, C) ->
(1, H, W, B C), turns TensorFlow's own depthwise filter gradient into all B
per-example gradients at once (`_depthwise_per_example`; no patches). A
separable convolution is a depthwise convolution U = DW(x) followed by a 1x1
convolution Z = U W_p + b: two taps, on U and Z.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import tensorflow as tf

from tfpriv.dp.grad_sample import forms
from tfpriv.dp.grad_sample.registry import Recorder, register

_L = tf.keras.layers


def _problem(layer: tf.keras.layers.Layer) -> Optional[str]:
    if layer.data_format != 'channels_last':
        return (f'{layer.name!r} ({type(layer).__name__}) is channels_first; the fast path needs '
                'channels_last')
    return None


def _unit_stride_geometry(size, kernel: int, dilation: int, padding: str):
    """(output positions, padding before, padding after) along one axis at stride 1, as TF pads
    ('same': span - 1 in all, the smaller half before). `size`: an int, or a scalar tensor."""
    span = (kernel - 1) * dilation + 1
    if padding == 'valid':
        return size - span + 1, 0, 0
    return size, (span - 1) // 2, span - 1 - (span - 1) // 2


def _unit_stride_views(x: tf.Tensor, kernel_size: Sequence[int], dilation: Sequence[int],
                       padding: str) -> List[tf.Tensor]:
    """The k shifted views (B, H_out, W_out, C) of the (padded) 2-D input, one per kernel
    offset in (rows, cols) order: view i holds every output position's input at offset i."""
    sizes = [x.shape[a] if x.shape[a] is not None else tf.shape(x)[a] for a in (1, 2)]
    rows, cols = (_unit_stride_geometry(n, k, d, padding.lower())
                  for n, k, d in zip(sizes, kernel_size, dilation))
    if padding.lower() != 'valid':
        x = tf.pad(x, [[0, 0], rows[1:], cols[1:], [0, 0]])
    return [x[:, i * dilation[0]:i * dilation[0] + rows[0], j * dilation[1]:j * dilation[1] + cols[0]]
            for i in range(kernel_size[0]) for j in range(kernel_size[1])]


def _as_2d(x: tf.Tensor, kernel_size: Sequence[int], strides: Sequence[int],
           dilation: Sequence[int]):
    """A 1-D convolution's input and geometry as a 2-D convolution's over a height-1 image."""
    if x.shape.rank == 3:
        return x[:, None], (1, *kernel_size), (1, *strides), (1, *dilation)
    return x, kernel_size, strides, dilation


def patches(x: tf.Tensor, kernel_size: Sequence[int], strides: Sequence[int],
            dilation: Sequence[int], padding: str) -> tf.Tensor:
    """(B, [H,] W, C) -> (B, T, k C): each output position's receptive field, (rows, cols, C) order.

    With unit strides it is built from the k shifted views of the (padded) input,
    concatenated on the channel axis: the same tensor as `tf.image.extract_patches`,
    built faster on CPU. Strided views are slower than `extract_patches` (TF's
    strided slice), so strided convolutions use it.
    """
    x, kernel_size, strides, dilation = _as_2d(x, kernel_size, strides, dilation)
    if any(stride != 1 for stride in strides):
        fields = tf.image.extract_patches(x, sizes=[1, *kernel_size, 1], strides=[1, *strides, 1],
                                          rates=[1, *dilation, 1], padding=padding.upper())
        return tf.reshape(fields, [tf.shape(x)[0], forms.static_positions(fields),
                                   fields.shape[-1]])
    fields = tf.concat(_unit_stride_views(x, kernel_size, dilation, padding), axis=-1)
    return tf.reshape(fields, [tf.shape(x)[0], forms.static_positions(fields),
                               fields.shape[-1]])


def offset_views(x: tf.Tensor, kernel_size: Sequence[int], dilation: Sequence[int],
                 padding: str) -> tf.Tensor:
    """(B, [H,] W, C) -> (B, k, T, C) at unit strides: `patches` with the kernel offsets on
    their own axis. Stacking the views copies whole rows; concatenating single-channel
    views on the channel axis copies one float at a time."""
    x, kernel_size, _, dilation = _as_2d(x, kernel_size, [1] * len(kernel_size), dilation)
    views = tf.stack(_unit_stride_views(x, kernel_size, dilation, padding), axis=1)
    return tf.reshape(views, [tf.shape(x)[0], views.shape[1], forms.static_positions(views[:, 0]),
                              x.shape[-1]])


def grouped(a: tf.Tensor, groups: int) -> tf.Tensor:
    """(B, T, k, g c) -> (B, g, T, k c): the channel axis split into its groups."""
    batch, positions = tf.shape(a)[0], a.shape[1] if a.shape[1] is not None else -1
    per_group = a.shape[3] // groups
    if groups == 1:
        return tf.reshape(a, [batch, 1, positions, a.shape[2] * per_group])
    split = tf.reshape(a, [batch, positions, a.shape[2], groups, per_group])
    swapped = tf.transpose(split, [0, 3, 1, 2, 4])
    return tf.reshape(swapped, [batch, groups, positions, a.shape[2] * per_group])


def _kernel_forms(layer: _L.Conv2D, x: tf.Tensor, g: tf.Tensor, padding: str) -> List[forms.Form]:
    """Conv kernel and bias forms from the patches of x (grouped by `layer.groups`)."""
    if _by_offsets(layer, x, g):
        outputs = tf.reshape(g, [tf.shape(g)[0], 1, forms.static_positions(g), g.shape[-1]])
        views = offset_views(x, layer.kernel_size, layer.dilation_rate, padding)
        return forms.affine(layer.kernel, _bias(layer), views, outputs,
                            lambda grads: tf.reshape(grads, [-1, *layer.kernel.shape]),
                            offsets=views.shape[1])
    fields = patches(x, layer.kernel_size, layer.strides, layer.dilation_rate, padding)
    outputs = tf.reshape(g, [tf.shape(g)[0], forms.static_positions(g), 1, g.shape[-1]])
    fields = tf.reshape(fields, [tf.shape(x)[0], fields.shape[1] or -1,
                                 fields.shape[-1] // x.shape[-1], x.shape[-1]])
    return forms.affine(layer.kernel, _bias(layer), grouped(fields, layer.groups),
                        grouped(outputs, layer.groups), forms.grouped_kernel(layer.kernel.shape))


def _by_offsets(layer: _L.Conv2D, x: tf.Tensor, g: tf.Tensor) -> bool:
    """Single-channel input, unit strides, one group, known T and explicit products: the
    kernel gradient per offset (`offset_views`, `forms.Linear.offsets`) instead of patches."""
    positions = forms.static_positions(g)
    offsets = layer.kernel.shape.num_elements() // (x.shape[-1] * g.shape[-1])
    return (x.shape[-1] == 1 and layer.groups == 1 and all(s == 1 for s in layer.strides)
            and positions > 0 and not forms.linear_ghost(positions, offsets, g.shape[-1]))


def _finish(layer: _L.Layer, recorder: Recorder, z: tf.Tensor, forms_fn) -> tf.Tensor:
    """Adds the bias, records the tap on Z and applies the activation."""
    if layer.use_bias:
        z = tf.nn.bias_add(z, recorder.read(layer.bias))
    recorder.probe(z, forms_fn)
    return layer.activation(z) if layer.activation is not None else z


def _bias(layer: _L.Layer) -> Optional[tf.Variable]:
    return layer.bias if layer.use_bias else None


@register(_L.Conv1D, _L.Conv2D, problem=_problem)
def conv(layer: _L.Conv2D, recorder: Recorder, inputs: tf.Tensor) -> tf.Tensor:
    """Keras's own convolution op on the read kernel (causal padding applied first)."""
    # pylint: disable=protected-access  (Keras's own causal padding and grouped-conv op)
    x = tf.pad(inputs, layer._compute_causal_padding(inputs)) if layer._is_causal else inputs
    kernel = recorder.read(layer.kernel)
    if layer.groups > 1:
        z = layer._jit_compiled_convolution_op(x, kernel)
    else:
        z = layer.convolution_op(x, kernel)
    padding = 'valid' if layer._is_causal else layer.padding
    return _finish(layer, recorder, z, lambda g: _kernel_forms(layer, x, g, padding))


def _depthwise(layer: _L.Layer, recorder: Recorder, x: tf.Tensor) -> tf.Tensor:
    return tf.nn.depthwise_conv2d(x, recorder.read(layer.depthwise_kernel),
                                  strides=(1, *layer.strides, 1), padding=layer.padding.upper(),
                                  dilations=layer.dilation_rate)


def _fold(t: tf.Tensor) -> tf.Tensor:
    """(B, H, W, C) -> (1, H, W, B C): example b's channel c becomes channel b C + c."""
    shape = tf.shape(t)
    return tf.reshape(tf.transpose(t, [1, 2, 0, 3]), [1, shape[1], shape[2], -1])


def _depthwise_per_example(layer: _L.Layer, x: tf.Tensor, g: tf.Tensor) -> tf.Tensor:
    """dl_b/dK (B, k_h, k_w, C, m) for every b: the depthwise filter gradient of the folded batch."""
    k_h, k_w, channels, multiplier = layer.depthwise_kernel.shape
    batch = tf.shape(x)[0]
    folded_kernel = tf.zeros([k_h, k_w, batch * channels, multiplier])
    with tf.GradientTape() as tape:  # only the local filter gradient of one depthwise op
        tape.watch(folded_kernel)
        z = tf.nn.depthwise_conv2d(_fold(x), folded_kernel, strides=(1, *layer.strides, 1),
                                   padding=layer.padding.upper(), dilations=layer.dilation_rate)
    grads = tape.gradient(z, folded_kernel, output_gradients=_fold(g))
    return tf.transpose(tf.reshape(grads, [k_h, k_w, batch, channels, multiplier]), [2, 0, 1, 3, 4])


def _depthwise_forms(layer: _L.Layer, x: tf.Tensor, g: tf.Tensor,
                     bias: Optional[tf.Variable]) -> List[forms.Form]:
    found = [forms.Explicit(layer.depthwise_kernel, _depthwise_per_example(layer, x, g))]
    if bias is not None:
        found.append(forms.Explicit(bias, tf.reduce_sum(g, axis=[1, 2])))
    return found


@register(_L.DepthwiseConv2D, problem=_problem)
def depthwise_conv(layer: _L.DepthwiseConv2D, recorder: Recorder, inputs: tf.Tensor) -> tf.Tensor:
    """Depthwise convolution; per-example kernel gradients by batch folding."""
    return _finish(layer, recorder, _depthwise(layer, recorder, inputs),
                   lambda g: _depthwise_forms(layer, inputs, g, _bias(layer)))


@register(_L.SeparableConv2D, problem=_problem)
def separable_conv(layer: _L.SeparableConv2D, recorder: Recorder, inputs: tf.Tensor) -> tf.Tensor:
    """Depthwise U (tap) then the pointwise 1x1 convolution Z = U W_p + b (tap)."""
    u = recorder.probe(_depthwise(layer, recorder, inputs),
                       lambda g: _depthwise_forms(layer, inputs, g, None))
    z = tf.nn.conv2d(u, recorder.read(layer.pointwise_kernel), strides=1, padding='VALID')
    return _finish(layer, recorder, z, lambda g: forms.affine(
        layer.pointwise_kernel, _bias(layer), forms.rows(u), forms.rows(g),
        forms.grouped_kernel(layer.pointwise_kernel.shape)))
