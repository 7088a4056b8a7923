"""`problems(model)`: why the fast clipping path would not bound every example's gradient.

What is trusted (as Opacus trusts `nn.Module.forward`): the code of a
container's own `call` (a Functional, Sequential or subclassed model, or a
custom layer made of sublayers) treats the examples of a batch independently
and keeps them on axis 0 of every registered layer's input. What is checked:

- every layer passes the `tfpriv.dp.clipping` validators (no BatchNorm, no
  activity_regularizer; a layer they refuse is reported once, by them);
- every layer with trainable variables has a registry entry (its exact class,
  or a subclass that does not override `call`) and a supported configuration;
  the sublayers of a registered layer (an LSTM's cell) are its sampler's business;
- containers own no trainable variables outside their sublayers;
- every other leaf layer is on `clipping.PER_EXAMPLE_LAYERS` (not `Lambda`,
  `TFOpLambda`, or unknown custom layers), and no wrapper folds time into batch;
- float32 computation (an integer `Input` of token ids is fine).

At trace time `engine` also refuses trainable variables read outside the taps.
"""

from __future__ import annotations

from typing import List, Optional

import tensorflow as tf

from tfpriv.dp import clipping
from tfpriv.dp.grad_sample.registry import entry_for


def _own_trainable(layer: tf.keras.layers.Layer) -> List[tf.Variable]:
    """The trainable variables the layer created itself, not its sublayers' (none if unbuilt)."""
    return list(layer._trainable_weights) if layer.trainable else []  # pylint: disable=protected-access


def _is_container(layer: tf.keras.layers.Layer) -> bool:
    return bool(clipping.sublayers(layer))


def _unsupported(layer: tf.keras.layers.Layer, name: str) -> Optional[str]:
    if type(layer) in clipping.BATCH_FOLDING:
        return f'{name} reshapes time steps into the batch axis'
    own = _own_trainable(layer)
    if _is_container(layer):
        return (f'{name} has its own trainable variables {[v.name for v in own]} outside any '
                'registered layer') if own else None
    if own:
        return f'{name} has trainable variables but no per-example gradient function'
    if type(layer) not in clipping.PER_EXAMPLE_LAYERS:
        return (f'{name} is not known to treat examples independently (Lambda, auto-wrapped '
                'TF ops and custom layers without sublayers are not trusted)')
    return None


def _layer_problem(layer: tf.keras.layers.Layer) -> Optional[str]:
    name = f'{layer.name!r} ({type(layer).__name__})'
    if not isinstance(layer, tf.keras.layers.InputLayer) and layer.compute_dtype not in (None, 'float32'):
        return f'{name} computes in {layer.compute_dtype}; the fast path supports float32 only'
    entry = entry_for(layer)
    if entry is not None:
        return entry.problem(layer) if entry.problem is not None else None
    return _unsupported(layer, name)


def problems(model: tf.keras.Model) -> List[str]:
    """Every reason `model` cannot take the fast clipping path (empty when eligible)."""
    layers = clipping.all_layers(model)
    inside = {id(m) for layer in layers if entry_for(layer) is not None
              for m in clipping.sublayers(layer)}
    found = []
    for layer in (layer for layer in layers if id(layer) not in inside):
        refused = [problem for problem in map(lambda check, layer=layer: check(layer),
                                              clipping.VALIDATORS) if problem]
        found += refused or [problem for problem in [_layer_problem(layer)] if problem]
    return found
