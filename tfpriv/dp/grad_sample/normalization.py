"""LayerNormalization and GroupNormalization: Z = x̂ γ + β, one tap on the output Z.

x̂ is each example's input normalized over its own features (no batch
statistics), so dL_b/dγ = sum over the other positions of x̂_b G_b and
dL_b/dβ = sum of G_b, both reduced to the parameter's shape (`forms.Explicit`:
γ and β are small).

GroupNormalization's statistics (μ_bg, s_bg = 1 / sqrt(σ²_bg + ε)) are constant over
the positions of a group, so it computes Z = x (s γ) + (β - μ s γ) as Keras does
(`tf.nn.batch_normalization`: two passes over x, x̂ never built) and sums over positions
before normalizing: dL_b/dγ_c = s_bg (sum_p G_bpc x_bpc - μ_bg sum_p G_bpc).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import tensorflow as tf

from tfpriv.dp.grad_sample import forms
from tfpriv.dp.grad_sample.registry import Recorder, register

_L = tf.keras.layers


def _scale_shift(layer: _L.Layer, recorder: Recorder, normalized: tf.Tensor,
                 axes: Sequence[int]) -> tf.Tensor:
    """Z = x̂ γ + β with γ, β broadcast along `axes`; the tap gives their per-example gradients."""
    shape = [normalized.shape[i] if i in axes else 1 for i in range(normalized.shape.rank)]
    z = normalized
    if layer.scale:
        z = z * tf.reshape(recorder.read(layer.gamma), shape)
    if layer.center:
        z = z + tf.reshape(recorder.read(layer.beta), shape)
    if not (layer.scale or layer.center):
        return z
    others = [i for i in range(1, normalized.shape.rank) if i not in axes]

    def per_example(g: tf.Tensor) -> List[forms.Form]:
        found = []
        for variable, factor in ((layer.gamma, normalized), (layer.beta, None)):
            if variable is not None:
                product = g if factor is None else g * factor
                found.append(forms.Explicit(variable, tf.reshape(
                    tf.reduce_sum(product, axis=others), [-1, *variable.shape])))
        return found

    return recorder.probe(z, per_example)


def _axes(layer: _L.Layer, rank: int) -> List[int]:
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return sorted(a % rank for a in axes)


def _problem(layer: _L.Layer) -> Optional[str]:
    built = getattr(layer, 'input_spec', None)
    rank = built.ndim if built is not None and built.ndim else None
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    if 0 in axes or (rank is not None and any(a % rank == 0 for a in axes)):
        return f'{layer.name!r} ({type(layer).__name__}) normalizes over the batch axis'
    return None


@register(_L.LayerNormalization, problem=_problem)
def layer_norm(layer: _L.LayerNormalization, recorder: Recorder, inputs: tf.Tensor) -> tf.Tensor:
    """x̂ = (x - mean) / sqrt(var + ε) over `axis`, per example (Ba et al. 2016)."""
    x = tf.cast(inputs, layer.compute_dtype)
    axes = _axes(layer, x.shape.rank)
    mean, variance = tf.nn.moments(x, axes, keepdims=True)
    normalized = (x - mean) * tf.math.rsqrt(variance + layer.epsilon)
    return _scale_shift(layer, recorder, normalized, axes)


def _group_forms(layer: _L.GroupNormalization, x: tf.Tensor, mean: tf.Tensor, inv: tf.Tensor,
                 split) -> Callable[[tf.Tensor], List[forms.Form]]:
    """dL/dZ -> forms of γ and β; x, mean and inv in the grouped layout (..., G, C/G)."""
    axis = layer.axis % (x.shape.rank - 1)
    positions = [i for i in range(1, x.shape.rank) if i not in (axis, axis + 1)]
    per_group = [-1, layer.groups, 1]

    def per_example(g: tf.Tensor) -> List[forms.Form]:
        grouped = tf.reshape(g, split)
        by_channel = tf.reduce_sum(grouped, axis=positions)  # (B, G, C/G): dL_b/dβ
        found = []
        if layer.scale:
            moment = tf.reduce_sum(grouped * x, axis=positions)
            gamma = tf.reshape(inv, per_group) * (moment - tf.reshape(mean, per_group) * by_channel)
            found.append(forms.Explicit(layer.gamma, tf.reshape(gamma, [-1, *layer.gamma.shape])))
        if layer.center:
            found.append(forms.Explicit(layer.beta, tf.reshape(by_channel, [-1, *layer.beta.shape])))
        return found

    return per_example


@register(_L.GroupNormalization, problem=_problem)
def group_norm(layer: _L.GroupNormalization, recorder: Recorder, inputs: tf.Tensor,
               mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """x̂ over each group of channels and all positions of one example (Wu & He 2018), mask-weighted."""
    axis = layer.axis % inputs.shape.rank
    mask = tf.ones_like(inputs) if mask is None else tf.broadcast_to(mask, tf.shape(inputs))
    shape = [tf.shape(inputs)[i] for i in range(inputs.shape.rank)]
    split = shape[:axis] + [layer.groups, inputs.shape[axis] // layer.groups] + shape[axis + 1:]
    x = tf.reshape(inputs, split)
    reduce = [i for i in range(1, x.shape.rank) if i != axis]
    mean, variance = tf.nn.weighted_moments(x, reduce, tf.cast(tf.reshape(mask, split), x.dtype),
                                            keepdims=True)
    broadcast = [1] * x.shape.rank
    broadcast[axis:axis + 2] = [layer.groups, inputs.shape[axis] // layer.groups]
    gamma, beta = ([tf.reshape(recorder.read(v), broadcast) if v is not None else None
                    for v in (layer.gamma, layer.beta)])
    z = tf.nn.batch_normalization(x, mean, variance, beta, gamma, layer.epsilon)
    z = tf.reshape(z, tf.shape(inputs))  # static shape inferred from tf.shape(inputs)
    if not (layer.scale or layer.center):
        return z
    inv = tf.math.rsqrt(variance + layer.epsilon)
    return recorder.probe(z, _group_forms(layer, x, mean, inv, split))
