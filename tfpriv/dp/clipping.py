"""Model validators and the trust list of the fast clipping path (`tfpriv.dp.grad_sample`).

- `VALIDATORS` (Opacus's `ModuleValidator` style): functions from one layer to
  a problem that makes the model untrainable with DP-SGD at all; `validate`
  runs them over every layer (`all_layers`: the model and, recursively, nested
  models, wrappers, RNN cells and sublayers of custom layers). BatchNormalization
  is refused: it mixes the examples of a batch. So is an `activity_regularizer`:
  a loss term computed from the batch's activations, outside the per-example
  losses, so no path would clip it.
- `PER_EXAMPLE_LAYERS`: weightless (or frozen) Keras layers known to compute
  each example's output from that example alone, in training mode too. Dropout,
  noise and augmentation layers are on it: the fast path takes norms and
  gradient from the same training-mode forward pass, so their randomness no
  longer breaks the clip bound. `Lambda`, auto-wrapped TF ops (`TFOpLambda`)
  and custom leaf layers are not: they could mix examples (e.g. a mean over
  axis 0). `BATCH_FOLDING` wrappers reshape time steps into the batch axis.
Why the fast path cannot be used for a model: `tfpriv.dp.grad_sample.problems`.
"""

from __future__ import annotations

from typing import Callable, List, Optional

import tensorflow as tf
from keras.src.layers.normalization.batch_normalization import BatchNormalizationBase

_L = tf.keras.layers
PER_EXAMPLE_LAYERS = frozenset((
    _L.InputLayer, _L.Flatten, _L.Reshape, _L.Permute, _L.RepeatVector, _L.Activation, _L.ReLU,
    _L.LeakyReLU, _L.ELU, _L.Softmax, _L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D,
    _L.AveragePooling1D, _L.AveragePooling2D, _L.AveragePooling3D, _L.GlobalAveragePooling1D,
    _L.GlobalAveragePooling2D, _L.GlobalAveragePooling3D, _L.GlobalMaxPooling1D,
    _L.GlobalMaxPooling2D, _L.GlobalMaxPooling3D, _L.Add, _L.Subtract, _L.Multiply, _L.Average,
    _L.Maximum, _L.Minimum, _L.Concatenate, _L.Dot, _L.UnitNormalization, _L.ZeroPadding1D,
    _L.ZeroPadding2D, _L.ZeroPadding3D, _L.Cropping1D, _L.Cropping2D, _L.Cropping3D,
    _L.UpSampling1D, _L.UpSampling2D, _L.UpSampling3D, _L.Rescaling, _L.Identity, _L.Masking,
    # frozen (trainable=False) unregistered weighted layers compute per example as well
    _L.Conv3D, _L.Conv2DTranspose, _L.PReLU,
    # stochastic in training mode, independently per example
    _L.Dropout, _L.SpatialDropout1D, _L.SpatialDropout2D, _L.SpatialDropout3D, _L.GaussianNoise,
    _L.GaussianDropout, _L.AlphaDropout, _L.RandomFlip, _L.RandomTranslation, _L.RandomRotation,
    _L.RandomZoom, _L.RandomCrop, _L.RandomContrast, _L.RandomBrightness, _L.RandomHeight,
    _L.RandomWidth))
BATCH_FOLDING = frozenset((_L.TimeDistributed,))


def sublayers(layer: tf.keras.layers.Layer) -> List[tf.keras.layers.Layer]:
    """Every layer inside `layer`, recursively (Keras's own tracking: nested models, wrappers,
    RNN cells, custom layers' sublayers; `tf.Module.submodules` fails on some RNN caches)."""
    return list(layer._flatten_layers(include_self=False, recursive=True))  # pylint: disable=protected-access


def all_layers(model: tf.keras.layers.Layer) -> List[tf.keras.layers.Layer]:
    """`model` and every layer inside it (`sublayers`)."""
    return [model] + sublayers(model)


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


def _activity_regularizer(layer: tf.keras.layers.Layer) -> Optional[str]:
    """A penalty on a layer's outputs is data-dependent and outside the per-example losses."""
    if getattr(layer, 'activity_regularizer', None) is None:
        return None
    return (f"layer {layer.name!r} ({type(layer).__name__}) has an activity_regularizer: Keras "
            "adds it to the batch's loss from the activations of every example together, outside "
            "the per-example losses that DP-SGD clips, so its gradient would reach the weights "
            'unclipped and un-noised. Remove it, or penalize the weights instead '
            '(kernel_regularizer does not depend on the data and is kept)')


# Opacus-style validators: layer -> a problem (str) or None. Add new ones here.
VALIDATORS: List[Callable[[tf.keras.layers.Layer], Optional[str]]] = [
    _batchnorm, _activity_regularizer]


def validate(model: tf.keras.Model) -> List[str]:
    """Every problem any validator finds in any layer of `model` (empty when trainable)."""
    return [problem for layer in all_layers(model) for problem in map(
        lambda check, layer=layer: check(layer), VALIDATORS) if problem]

