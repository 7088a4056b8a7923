"""`Dense`, on (B, K) inputs or on sequences (B, ..., K): Z = x W + b, one tap on Z.

dL_b/dW = A_b^T G_b with A_b the T = prod(middle dims) input rows of example b
(`forms.Linear`, ghost or explicit by Bu et al. 2022's rule); dL_b/db = sum_t G_bt.
"""

from __future__ import annotations

import tensorflow as tf

from tfpriv.dp.grad_sample import forms
from tfpriv.dp.grad_sample.registry import Recorder, register


@register(tf.keras.layers.Dense)
def dense(layer: tf.keras.layers.Dense, recorder: Recorder, inputs: tf.Tensor) -> tf.Tensor:
    """The Dense forward pass with a tap on the pre-activation output."""
    inputs = tf.cast(inputs, layer.compute_dtype)
    kernel = recorder.read(layer.kernel)
    if inputs.shape.rank == 2:
        z = tf.matmul(inputs, kernel)
    else:
        z = tf.tensordot(inputs, kernel, [[inputs.shape.rank - 1], [0]])
        z.set_shape(inputs.shape[:-1].concatenate(kernel.shape[-1:]))
    if layer.use_bias:
        z = tf.nn.bias_add(z, recorder.read(layer.bias))
    recorder.probe(z, lambda g: forms.affine(
        layer.kernel, layer.bias if layer.use_bias else None, forms.rows(inputs), forms.rows(g),
        forms.grouped_kernel(layer.kernel.shape)))
    return layer.activation(z) if layer.activation is not None else z
