"""`replace_batchnorm`: the opt-in fix for models `make_private` refuses for BatchNormalization.

Like Opacus's `ModuleValidator.fix`, which swaps `BatchNorm` for
`GroupNorm(min(32, C), C)`: each example is then normalized with its own
statistics only (Wu & He, "Group Normalization", ECCV 2018), so per-example
clipping bounds its influence again and no un-noised running statistics exist.
The returned model is a new one: every other layer keeps its weights; the
GroupNormalization layers start at γ = 1, β = 0 (retrain or fine-tune).
"""

from __future__ import annotations

import math
from typing import Optional

import tensorflow as tf
from keras.src.layers.normalization.batch_normalization import BatchNormalizationBase

from tfpriv import checks


def _group_norm(layer: BatchNormalizationBase, groups: Optional[int]) -> tf.keras.layers.Layer:
    axis = layer.axis[0] if isinstance(layer.axis, (list, tuple)) else layer.axis
    channels = int(layer.input_spec.axes[axis] if layer.input_spec and layer.input_spec.axes
                   else layer.gamma.shape[0])
    chosen = math.gcd(32, channels) if groups is None else groups
    if channels % chosen:
        raise ValueError(f'groups must divide the {channels} channels of {layer.name!r}, got {chosen}')
    return tf.keras.layers.GroupNormalization(groups=chosen, axis=axis, epsilon=layer.epsilon,
                                              center=layer.center, scale=layer.scale,
                                              name=layer.name)


def replace_batchnorm(model: tf.keras.Model, groups: Optional[int] = None) -> tf.keras.Model:
    """A copy of `model` (Functional or Sequential, nested ones too) with GroupNormalization for BatchNorm.

    Args:
      model: the model to fix (left unchanged).
      groups: groups of every GroupNormalization; default gcd(32, channels), as Opacus.
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f'model must be a tf.keras.Model, got {type(model).__name__}')
    if groups is not None:
        checks.integer('groups', groups, minimum=1)

    def clone(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if isinstance(layer, BatchNormalizationBase):
            return _group_norm(layer, groups)
        if isinstance(layer, tf.keras.Model):
            return replace_batchnorm(layer, groups)
        return type(layer).from_config(layer.get_config())

    fixed = tf.keras.models.clone_model(model, clone_function=clone)
    for old in model.layers:
        if not isinstance(old, (BatchNormalizationBase, tf.keras.Model)) and old.weights:
            fixed.get_layer(old.name).set_weights(old.get_weights())
    return fixed
