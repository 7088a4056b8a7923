"""`clipped_sum`: the sum of clipped per-example gradients from one forward and one backward pass.

Stages (over `TappedPass`):

1. `tapped_pass`: one forward pass in training mode with every registered
   layer intercepted (`registry.intercept`), per-example losses l_b, and one
   backward pass of sum_b l_b to the tapped tensors only (no variable gradients).
2. `squared_norms`: ||dl_b/dθ||^2 summed over variables from the forms
   (`forms`); a variable tapped more than once (a layer called twice) has its
   per-example gradients summed first, then squared.
3. `clip_weights`: w_b = min(1, C / ||dl_b/dθ||).
4. `weighted_sums`: sum_b w_b dl_b/dθ per variable from the same recorded
   tensors (book-keeping, Bu et al. 2023, arXiv:2210.00038).

Norms and gradient come from the same training-mode forward pass (the same
Dropout masks and noise), so ||sum of one example's update|| <= C holds for
stochastic layers too. Soundness checks at trace time: any trainable variable
read outside the taps (weight tying, a custom layer's own weights) raises
`FastClippingError`, as does a tap whose batch axis differs from the losses'.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Tuple

import tensorflow as tf

from tfpriv.dp import clipping
from tfpriv.dp.grad_sample.forms import Explicit, Form
from tfpriv.dp.grad_sample.registry import Recorder, Tap, intercept
from tfpriv.errors import FastClippingError

ExampleLoss = Callable[[Any, Any], tf.Tensor]


@dataclasses.dataclass
class TappedPass:
    """One forward pass with taps and the backward signals dL/dZ of every tap."""

    y_pred: Any
    losses: tf.Tensor
    taps: List[Tap]
    signals: List[tf.Tensor]

    def forms(self) -> List[Form]:
        return [form for tap, g in zip(self.taps, self.signals) for form in tap.forms(g)]


def _check_coverage(tape: tf.GradientTape, losses: tf.Tensor, taps: List[Tap]) -> None:
    uncovered = sorted({v.name for v in tape.watched_variables()})
    if uncovered:
        raise FastClippingError(
            f'trainable variables {uncovered} are read outside the layers the fast clipping path '
            "taps (weight tying or a layer's own code), so their gradients would not be clipped; "
            "use clipping='vectorized'")
    if losses.shape.rank != 1:
        raise FastClippingError(f'example_loss must return one loss per example (B,), got shape '
                                f'{losses.shape}')
    for tap in taps:
        if None not in (tap.z.shape[0], losses.shape[0]) and tap.z.shape[0] != losses.shape[0]:
            raise FastClippingError(f'the output of {tap.layer!r} has {tap.z.shape[0]} rows '
                                    f'for {losses.shape[0]} examples: axis 0 must be the examples')


def tapped_pass(model: tf.keras.Model, example_loss: ExampleLoss, x: Any, y: Any) -> TappedPass:
    """Stage 1: forward in training mode with taps, then dL/dZ for every tap in one backward pass."""
    with tf.GradientTape() as tape:
        recorder = Recorder(tape)
        with intercept(clipping.all_layers(model), recorder):
            y_pred = model(x, training=True)
        losses = example_loss(y, y_pred)
        total = tf.reduce_sum(losses)
    _check_coverage(tape, losses, recorder.taps)
    signals = tape.gradient(total, [tap.z for tap in recorder.taps],
                            unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return TappedPass(y_pred, losses, recorder.taps, signals)


def _batch_asserts(state: TappedPass) -> List[Any]:
    examples = tf.shape(state.losses)[0]
    return [tf.debugging.assert_equal(tf.shape(tap.z)[0], examples, message=(
        'a tapped layer output has a different number of rows than there are examples'))
        for tap in state.taps]


def squared_norms(forms: List[Form], examples: tf.Tensor) -> tf.Tensor:
    """Stage 2: ||dl_b/dθ||^2 over all tapped variables, (B,)."""
    groups: Dict[Any, List[Form]] = {}
    for form in forms:
        groups.setdefault(form.variable.ref(), []).append(form)
    total = tf.zeros([examples])
    for group in groups.values():
        if len(group) == 1:
            total += group[0].sq_norms()
        else:
            summed = tf.add_n([form.per_example for form in group])
            total += Explicit(group[0].variable, summed).sq_norms()
    return total


def clip_weights(sq_norms: tf.Tensor, l2_norm_clip: float) -> tf.Tensor:
    """Stage 3: w_b = C / max(C, ||g_b||)."""
    norms = tf.sqrt(tf.maximum(sq_norms, 0.0))
    return l2_norm_clip / tf.maximum(norms, l2_norm_clip)


def weighted_sums(forms: List[Form], weights: tf.Tensor,
                  variables: List[tf.Variable]) -> List[tf.Tensor]:
    """Stage 4: sum_b w_b dl_b/dθ for every variable (zeros for one no tap reached)."""
    sums: Dict[Any, List[tf.Tensor]] = {}
    for form in forms:
        sums.setdefault(form.variable.ref(), []).append(form.weighted_sum(weights))
    return [tf.add_n(sums[v.ref()]) if v.ref() in sums else tf.zeros_like(v) for v in variables]


def per_example_norms(model: tf.keras.Model, example_loss: ExampleLoss, x: Any, y: Any) -> tf.Tensor:
    """||dl_b/dθ|| for every example b over all trainable variables, (B,)."""
    state = tapped_pass(model, example_loss, x, y)
    with tf.control_dependencies(_batch_asserts(state)):
        return tf.sqrt(tf.maximum(squared_norms(state.forms(), tf.shape(state.losses)[0]), 0.0))


def clipped_sum(model: tf.keras.Model, example_loss: ExampleLoss, x: Any, y: Any,
                l2_norm_clip: float) -> Tuple[List[tf.Tensor], Any]:
    """(sum_b clip_C(dl_b/dθ) aligned with `model.trainable_variables`, y_pred).

    `example_loss(y, y_pred)` returns the (B,) per-example losses; x and y may be
    nested structures with the examples on axis 0 of every leaf.
    """
    state = tapped_pass(model, example_loss, x, y)
    forms = state.forms()
    with tf.control_dependencies(_batch_asserts(state)):
        sq_norms = squared_norms(forms, tf.shape(state.losses)[0])
    weights = clip_weights(sq_norms, l2_norm_clip)
    return weighted_sums(forms, weights, model.trainable_variables), state.y_pred
