"""The layer registry and the interception of layer calls during one DP training step.

Opacus-style: each supported layer type has a *sampler*, a function that runs
the layer's forward computation itself and records taps. A tap is a tensor Z of
the forward pass (a pre-activation output, or an intermediate linear output)
together with a function from G = dL/dZ to the per-example gradient forms of
the layer's variables (`tfpriv.dp.grad_sample.forms`). While `intercept` is
active, every trainable registered layer in the model (found recursively through
`clipping.all_layers`: nested, Sequential and subclassed models alike) has its
`call` replaced by its sampler through an instance attribute (set with
`object.__setattr__`, so Keras does not track it; removed in `finally`). Calls on
another graph than the step's (Keras's shape inference while a Sequential model
without `Input` builds itself) run the layer's own `call` untapped. Keras's
`Layer.__call__` looks `self.call` up at each call, in eager mode and when a
`tf.function` traces, so the taps are part of the traced graph.

Samplers read variables with `Recorder.read`, outside the gradient tape, so the
tape watches a trainable variable only when something else reads it; the engine
refuses that (its gradient would not be clipped).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import tensorflow as tf

from tfpriv.dp.grad_sample.forms import Form
from tfpriv.errors import FastClippingError

FormsFn = Callable[[tf.Tensor], List[Form]]
Problem = Callable[[tf.keras.layers.Layer], Optional[str]]


@dataclasses.dataclass
class Tap:
    """A recorded tensor Z and the function from dL/dZ to its per-example gradient forms."""

    z: tf.Tensor
    forms: FormsFn
    layer: str


class Recorder:
    """Collects the taps of one forward pass, all watched by `tape`."""

    def __init__(self, tape: tf.GradientTape):
        self.tape = tape
        self.taps: List[Tap] = []
        self.layer = ''
        self.graph = _current_graph()

    def read(self, variable: tf.Variable) -> tf.Tensor:
        """The variable's value, read without the tape watching the variable."""
        with self.tape.stop_recording():
            return tf.identity(variable)

    def probe(self, z: tf.Tensor, forms: FormsFn) -> tf.Tensor:
        """Records `z` (whose gradient gives the per-example gradients) and returns it."""
        self.tape.watch(z)
        self.taps.append(Tap(z, forms, self.layer))
        return z


Sampler = Callable[..., tf.Tensor]  # (layer, recorder, inputs, **call kwargs) -> outputs


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered layer type: its sampler and a check of the configurations it supports."""

    sampler: Sampler
    problem: Optional[Problem] = None


REGISTRY: Dict[type, Entry] = {}


def register(*layer_types: type, problem: Optional[Problem] = None) -> Callable[[Sampler], Sampler]:
    """Decorator: `sampler` computes the forward pass of `layer_types` with taps."""
    def decorate(sampler: Sampler) -> Sampler:
        for layer_type in layer_types:
            REGISTRY[layer_type] = Entry(sampler, problem)
        return sampler
    return decorate


def entry_for(layer: tf.keras.layers.Layer) -> Optional[Entry]:
    """The entry of the nearest registered base class, unless `layer` overrides its `call`."""
    if 'call' in vars(layer):
        return None
    for base in type(layer).__mro__:
        if base in REGISTRY:
            return REGISTRY[base] if type(layer).call is base.call else None
    return None


def _current_graph() -> Optional[tf.Graph]:
    return None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()


def _keras_scratch(graph: Optional[tf.Graph]) -> bool:
    """Whether `graph` is one of Keras's shape-inference graphs: `<layer>_scratch_graph`
    (keras/src/engine/base_layer.py) or `keras_scratch_graph` (keras/src/backend.py)."""
    return graph is not None and graph.name.endswith('_scratch_graph')


def _routed(sampler: Sampler, layer: tf.keras.layers.Layer, recorder: Recorder, *args,
            **kwargs) -> tf.Tensor:
    graph = _current_graph()
    if graph is not recorder.graph:
        if not _keras_scratch(graph):
            raise FastClippingError(
                f'layer {layer.name!r} is called inside a nested graph (a loop or function body '
                "of the model's own code), where the fast path cannot tap it; use "
                "clipping='vectorized' or 'microbatch'")
        # Keras inferring shapes (a Sequential without `Input` building itself): a plain call,
        # off the tape; nothing of it reaches the training step.
        with recorder.tape.stop_recording():
            return type(layer).call(layer, *args, **kwargs)
    recorder.layer = layer.name
    return sampler(layer, recorder, *args, **kwargs)


def _intercepted(layers: Sequence[tf.keras.layers.Layer]) -> List[tf.keras.layers.Layer]:
    return [layer for layer in layers if layer.trainable and entry_for(layer) is not None]


@contextlib.contextmanager
def intercept(layers: Sequence[tf.keras.layers.Layer], recorder: Recorder) -> Iterator[Recorder]:
    """Routes the calls of every trainable registered layer among `layers` through its sampler."""
    patched = _intercepted(layers)
    try:
        for layer in patched:
            sampler = tf.autograph.experimental.do_not_convert(
                functools.partial(_routed, entry_for(layer).sampler, layer, recorder))
            object.__setattr__(layer, 'call', sampler)
        yield recorder
    finally:
        for layer in patched:
            if 'call' in vars(layer):
                object.__delattr__(layer, 'call')
