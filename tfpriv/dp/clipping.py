"""Per-layer gradient-norm registry, model validators and the fast-clipping eligibility check.

Two registries, in the style of Opacus (`GradSampleModule`'s per-layer
functions; `ModuleValidator`'s list of validators):

- `make_layer_registry()`: the per-layer *norm functions* of the fast
  ("ghost") clipping path. TF Privacy 0.9 covers Dense and Embedding; tfpriv
  adds Conv2D (`conv2d_layer_computation`).
- `VALIDATORS`: functions from one layer to the problems that make the model
  untrainable with DP-SGD at all (`validate` runs them over every layer,
  nested models and wrappers included). BatchNormalization is refused.

Fast-path eligibility (`fast_clipping_eligible`) trusts only what it can
prove: every layer, found recursively (`tf.Module.submodules` reaches nested
models, `TimeDistributed`/`Bidirectional` wrappers and sublayers of custom
layers), must be of a type on `DETERMINISTIC_LAYERS` (an allow-list: exact
types, so a subclass with its own `call` is not trusted), and every trainable
layer the fast pass visits must have a registry function. Dropout, noise and
augmentation layers, `Lambda`, auto-wrapped TF ops and unknown custom layers
are "not known deterministic": TF Privacy computes the norms in a forward pass
without `training=True` and the gradient in another with it, so any layer
whose output depends on `training` or on randomness breaks the clip bound
(observed: single-example updates of 1.3-1.8 C). Such models take the
vectorized path, whose applied gradient *is* the sum of the clipped ones.

Conv2D norms. For a kernel W (k_h, k_w, c_in, c_out), Z_b = P_b W + bias with
P_b (T x k_h k_w c_in) the input patches of example b (im2col); so
dL_b/dW = P_b^T G_b and dL_b/dbias = sum_t G_b[t] with G_b = dL/dZ_b: one
backward pass to Z plus a batched product gives every example's exact norm
(Goodfellow 2015, arXiv:1510.01799; Lee & Kifer 2021; Bu et al. 2022).
Supported: channels_last, dilation 1, groups 1.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence

import tensorflow as tf
from keras.src.engine.functional import Functional
from keras.src.layers.normalization.batch_normalization import BatchNormalizationBase
from tensorflow_privacy.privacy.fast_gradient_clipping import gradient_clipping_utils
from tensorflow_privacy.privacy.fast_gradient_clipping import layer_registry as tfp_registry

_L = tf.keras.layers
# Layers whose output is a fixed function of their input and weights, with or without `training`.
DETERMINISTIC_LAYERS = frozenset((
    Functional, tf.keras.Sequential, _L.InputLayer, _L.Dense, _L.Conv1D, _L.Conv2D, _L.Conv3D,
    _L.DepthwiseConv2D,
    _L.SeparableConv2D, _L.Conv2DTranspose, _L.Embedding, _L.Flatten, _L.Reshape, _L.Permute,
    _L.RepeatVector, _L.Activation, _L.ReLU, _L.LeakyReLU, _L.PReLU, _L.ELU, _L.Softmax,
    _L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D, _L.AveragePooling1D, _L.AveragePooling2D,
    _L.AveragePooling3D, _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D,
    _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.Add, _L.Subtract, _L.Multiply, _L.Average,
    _L.Maximum, _L.Minimum, _L.Concatenate, _L.Dot, _L.LayerNormalization, _L.GroupNormalization,
    _L.UnitNormalization, _L.ZeroPadding1D, _L.ZeroPadding2D, _L.Cropping1D, _L.Cropping2D,
    _L.UpSampling1D, _L.UpSampling2D, _L.Rescaling, _L.Identity, _L.TimeDistributed,
    _L.Bidirectional))


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


def all_layers(model: tf.keras.layers.Layer) -> List[tf.keras.layers.Layer]:
    """`model` and every layer inside it: nested models, wrappers, custom layers' sublayers."""
    return [model] + [m for m in model.submodules if isinstance(m, tf.keras.layers.Layer)]


def _batchnorm(layer: tf.keras.layers.Layer) -> Optional[str]:
    """Opacus-style refusal of batch normalization (any subclass, e.g. SyncBatchNormalization)."""
    if not isinstance(layer, BatchNormalizationBase):
        return None
    return (f"layer {layer.name!r} ({type(layer).__name__}) cannot be trained with DP-SGD: it "
            'normalizes each example with statistics of the whole batch, so one example changes '
            "the others' gradients and per-example clipping no longer bounds its influence, and "
            'its moving mean/variance are updated from the raw batches with no noise, so they '
            'leak the training data. Use GroupNormalization or LayerNormalization instead, e.g. '
            'model = tfpriv.dp.replace_batchnorm(model)')


# Opacus-style validators: layer -> a problem (str) or None. Add new ones here.
VALIDATORS: List[Callable[[tf.keras.layers.Layer], Optional[str]]] = [_batchnorm]


def validate(model: tf.keras.Model) -> List[str]:
    """Every problem any validator finds in any layer of `model` (empty when trainable)."""
    return [problem for layer in all_layers(model) for problem in map(
        lambda check, layer=layer: check(layer), VALIDATORS) if problem]


def _forward_units(model: tf.keras.Model) -> Iterator[tf.keras.layers.Layer]:
    """The layers TF Privacy's fast forward pass calls one by one (it recurses into graphs)."""
    for layer in model.layers:
        if gradient_clipping_utils.has_internal_compute_graph(layer):
            yield from _forward_units(layer)
        else:
            yield layer


def fast_clipping_problems(model: tf.keras.Model) -> List[str]:
    """Why the fast path would not bound every example's gradient by C (empty when eligible)."""
    if not gradient_clipping_utils.has_internal_compute_graph(model):
        return [f'{model.name!r} is not a Functional or Sequential model']
    problems = [f'{layer.name!r} ({type(layer).__name__}) is not known to be deterministic'
                for layer in all_layers(model) if type(layer) not in DETERMINISTIC_LAYERS]
    registry = make_layer_registry()
    for layer in _forward_units(model):
        if not layer.trainable_variables:
            continue
        if not registry.is_elem(layer) or (isinstance(layer, _L.Conv2D) and not _supported(layer)):
            problems.append(f'{layer.name!r} ({type(layer).__name__}) has no fast norm function')
    return problems


def fast_clipping_eligible(model: tf.keras.Model) -> bool:
    """True when every layer is known deterministic and every trainable one is in the registry."""
    return not fast_clipping_problems(model)
