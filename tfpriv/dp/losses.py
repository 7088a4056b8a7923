"""Per-example losses of whatever loss a Keras user compiles, for per-example clipping.

DP-SGD clips each example's gradient, so it needs the loss of each example,
l_b, not the batch mean. Keras computes its scalar loss as

    L = sum_o w_o * reduce_o( loss_o(y_o, ŷ_o, sample_weight) )

over the model outputs o (loss and `loss_weights` w_o matched to the outputs by
`LossesContainer`), where `loss_o` with reduction NONE gives one value per
element of the batch and its non-batch axes, and `reduce_o` is the loss's
reduction: SUM_OVER_BATCH_SIZE (the default) divides the total by the number of
elements, SUM adds them. `ExampleLoss` runs the same machinery (the container's
output matching, `match_dtype_and_rank`, masks, the loss's own `call` via a copy
with reduction NONE, `compute_weighted_loss` for the sample weights) and reduces
over the non-batch axes only:

    l_b = sum_o w_o * mean_or_sum_{non-batch axes}( loss_o(y_o, ŷ_o, sample_weight)[b] )

so with SUM_OVER_BATCH_SIZE losses L = mean_b l_b exactly, and with SUM
losses L = sum_b l_b, when no Keras mask is set. With a mask (e.g. padded time
steps), each example's masked steps count as 0 and its mean is over all its T
steps, while Keras's batch loss divides by the valid steps of the whole batch: the
two differ by a data-dependent factor, and l_b is the one clipping needs, as it
depends on example b alone. A `sample_weight` multiplies each example's loss *before*
its gradient is clipped, so the clipping bound C holds whatever the weights.
"""

from __future__ import annotations

import copy
from typing import Any, List, Optional

import tensorflow as tf
from keras.src.engine import compile_utils
from keras.src.utils import losses_utils

Reduction = tf.keras.losses.Reduction


def _describe(loss: Any) -> str:
    return repr(loss) if isinstance(loss, str) else type(loss).__name__


def check_loss(loss: Any) -> Any:
    """`loss` (any structure `compile` takes) if Keras knows every leaf, else ValueError."""
    for leaf in tf.nest.flatten(loss):
        if leaf is None:
            continue
        try:
            known = tf.keras.losses.get(leaf)
        except (ValueError, TypeError):
            known = None
        function = callable(known) and not isinstance(known, tf.keras.layers.Layer)
        if not (isinstance(known, tf.keras.losses.Loss) or function):
            raise ValueError(
                f'loss {_describe(leaf)} is not a Keras loss: give a tf.keras.losses.Loss, a '
                "name Keras knows (e.g. 'binary_crossentropy', 'mse'), a function "
                '(y_true, y_pred) -> per-example losses, or a dict/list of these per output')
    return loss


def _unreduced(loss: tf.keras.losses.Loss) -> tf.keras.losses.Loss:
    """A copy of `loss` with reduction NONE (the loss's own `call`, masks and sample weights)."""
    per_element = copy.copy(loss)
    per_element.reduction = Reduction.NONE
    return per_element


class ExampleLoss(compile_utils.LossesContainer):
    """The per-example loss l_b of a compiled loss structure (see the module docstring).

    Called as `example_loss(targets, y_pred)` with `targets = (y_true, sample_weight)`
    (labels and weights travel together through the clipping paths); a third
    positional argument (TF Privacy passes its own weights) is ignored.
    """

    def __init__(self, loss: Any, loss_weights: Any = None,
                 output_names: Optional[List[str]] = None):
        super().__init__(check_loss(loss), loss_weights, output_names=output_names)
        self._per_element: List[Optional[tf.keras.losses.Loss]] = []

    def build(self, y_pred) -> None:
        """Keras's matching of losses and weights to the outputs, plus NONE-reduction copies."""
        super().build(y_pred)
        self._per_element = [None if loss is None else _unreduced(loss) for loss in self._losses]

    def __call__(self, targets, y_pred, *unused) -> tf.Tensor:  # pylint: disable=arguments-differ
        """Per-example losses (B,) of a batch: `targets = (y_true, sample_weight)`."""
        y_true, sample_weight = tf.nest.map_structure(tf.convert_to_tensor, targets)
        y_true = self._conform_to_outputs(y_pred, y_true)
        sample_weight = self._conform_to_outputs(y_pred, sample_weight)
        if not self._built:
            self.build(y_pred)
        terms = []
        for y_t, y_p, weight, loss, per_element, loss_weight in zip(
                tf.nest.flatten(y_true), tf.nest.flatten(y_pred), tf.nest.flatten(sample_weight),
                self._losses, self._per_element, self._loss_weights):
            if y_t is None or loss is None:
                continue
            term = _example_term(loss, per_element, y_t, y_p, weight)
            terms.append(term if loss_weight is None else term * loss_weight)
        if not terms:
            raise ValueError('no output has both a label and a loss: nothing to train')
        return tf.add_n(losses_utils.cast_losses_to_common_dtype(terms))


def _example_term(loss: tf.keras.losses.Loss, per_element: tf.keras.losses.Loss, y_true, y_pred,
                  sample_weight) -> tf.Tensor:
    """One output's l_b: Keras's per-element loss reduced over the non-batch axes as Keras would."""
    y_true, y_pred, sample_weight = compile_utils.match_dtype_and_rank(y_true, y_pred,
                                                                      sample_weight)
    sample_weight = losses_utils.apply_mask(y_pred, sample_weight, losses_utils.get_mask(y_pred))
    values = per_element(y_true, y_pred)
    if values.shape.rank == 0:
        raise ValueError(
            f'loss {loss.name!r} returns one number per batch; DP-SGD clips each example, so the '
            'loss must return one value per example (a function (y_true, y_pred) -> shape (B,) '
            'or a tf.keras.losses.Loss whose call does not reduce over the batch)')
    values = losses_utils.compute_weighted_loss(values, sample_weight, reduction=Reduction.NONE)
    axes = list(range(1, values.shape.rank))
    if loss.reduction in (Reduction.SUM, Reduction.NONE):
        return tf.reduce_sum(values, axis=axes)
    return tf.reduce_mean(values, axis=axes)
