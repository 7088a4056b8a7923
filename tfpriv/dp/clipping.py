"""Fast per-example gradient norms for `Conv2D`, so CNNs get TF Privacy's fast clipping path.

TF Privacy 0.9's layer registry covers Dense and Embedding but not Conv2D, so a
CNN falls back to per-example gradients with `tf.vectorized_map`. For a conv
layer with kernel W (k_h, k_w, c_in, c_out), output pre-activations
Z_b = P_b W + bias, where P_b (T x k_h k_w c_in) holds the T input patches of
example b (im2col). The per-example gradients are

    dL_b/dW = P_b^T G_b,   dL_b/dbias = sum_t G_b[t],   G_b = dL/dZ_b  (T x c_out),

so one backward pass to Z (which fast clipping already does) plus a batched
matrix product gives every example's exact gradient norm, without
materializing per-example gradients of the whole network (the "ghost clipping"
idea of Goodfellow 2015, arXiv:1510.01799; Lee & Kifer 2021; Bu et al. 2022 for
convolutions). We form P_b^T G_b directly: for the small kernels here
(k_h k_w c_in x c_out ≤ 256 x 32) that is cheaper than the T x T Gram form.

Supported: channels_last, dilation 1, groups 1, no microbatching. Other conv
layers are left out of the registry, so make_private falls back to the
vectorized path for them.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import tensorflow as tf
from tensorflow_privacy.privacy.fast_gradient_clipping import layer_registry as tfp_registry


def _supported(layer: tf.keras.layers.Conv2D) -> bool:
    return (layer.data_format == 'channels_last' and tuple(layer.dilation_rate) == (1, 1)
            and layer.groups == 1)


def conv2d_layer_computation(layer: tf.keras.layers.Conv2D, input_args: Sequence[Any],
                             input_kwargs: Mapping[str, Any], tape: tf.GradientTape,
                             num_microbatches: Optional[tf.Tensor] = None):
    """Registry function for `tf.keras.layers.Conv2D` (see TF Privacy's `dense_layer_computation`).

    Returns `(base_vars, outputs, sqr_norm_fn)`: the pre-activation output the
    tape watches, the layer's output, and a function from dL/d(base_vars) to the
    per-example squared gradient norms of the kernel and bias.
    """
    if input_kwargs or len(input_args) != 1:
        raise ValueError('Conv2D fast clipping supports calls with one positional input only')
    if num_microbatches is not None:
        raise ValueError('Conv2D fast clipping supports num_microbatches=None only')
    if not _supported(layer):
        raise ValueError(f'Conv2D fast clipping needs channels_last, dilation 1, groups 1: {layer.name}')
    inputs = input_args[0]
    activation = layer.activation
    layer.activation = None
    base_vars = layer(inputs)
    layer.activation = activation
    tape.watch(base_vars)
    outputs = activation(base_vars) if activation else base_vars
    k_h, k_w = layer.kernel_size
    s_h, s_w = layer.strides

    def sqr_norm_fn(grads: tf.Tensor) -> tf.Tensor:
        patches = tf.image.extract_patches(inputs, sizes=[1, k_h, k_w, 1], strides=[1, s_h, s_w, 1],
                                           rates=[1, 1, 1, 1], padding=layer.padding.upper())
        kernel_grads = tf.einsum('bhwp,bhwo->bpo', patches, grads)
        norms = tf.reduce_sum(tf.square(kernel_grads), axis=[1, 2])
        if layer.use_bias:
            norms += tf.reduce_sum(tf.square(tf.reduce_sum(grads, axis=[1, 2])), axis=1)
        return norms

    return base_vars, outputs, sqr_norm_fn


def make_layer_registry() -> tfp_registry.LayerRegistry:
    """TF Privacy's default registry (Dense, Embedding) plus Conv2D."""
    registry = tfp_registry.make_default_layer_registry()
    registry.insert(tf.keras.layers.Conv2D, conv2d_layer_computation)
    return registry


def registry_covers(model: tf.keras.Model) -> bool:
    """True when every trainable layer has a registry function that supports it."""
    registry = make_layer_registry()
    for layer in model.layers:
        if not layer.trainable_variables:
            continue
        if not registry.is_elem(layer):
            return False
        if isinstance(layer, tf.keras.layers.Conv2D) and not _supported(layer):
            return False
    return True
