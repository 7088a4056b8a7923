"""`Embedding`: Z = E[ids], one tap on Z; per-example gradient rows by `forms.Rows`.

The ghost norm needs only which positions of an example share an id (Li et al.
2022, arXiv:2110.05679, App.); short sequences over a large vocabulary never
materialise a (B, V, d) tensor.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from tfpriv.dp.grad_sample import forms
from tfpriv.dp.grad_sample.registry import Recorder, register


def _problem(layer: tf.keras.layers.Embedding) -> Optional[str]:
    if layer.sparse:
        return f'{layer.name!r} (Embedding) has sparse=True; the fast path supports dense ids only'
    return None


@register(tf.keras.layers.Embedding, problem=_problem)
def embedding(layer: tf.keras.layers.Embedding, recorder: Recorder, inputs: tf.Tensor) -> tf.Tensor:
    """The Embedding lookup with a tap on the looked-up vectors."""
    ids = inputs if inputs.dtype in (tf.int32, tf.int64) else tf.cast(inputs, tf.int32)
    z = tf.gather(recorder.read(layer.embeddings), ids)
    batch, dim = tf.shape(ids)[0], layer.output_dim
    positions = ids.shape[1:].num_elements() if ids.shape[1:].is_fully_defined() else -1
    recorder.probe(z, lambda g: [forms.Rows(
        layer.embeddings, tf.reshape(tf.cast(ids, tf.int32), [batch, positions]),
        tf.reshape(g, [batch, positions, dim]))])
    return z
