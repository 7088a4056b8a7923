"""Per-example losses (`tfpriv.dp.losses.ExampleLoss`) of loss structures the basic cases leave
out: outputs without a loss, losses matched to list outputs by name, Keras masks, and the
refusals word for word.

References: the losses written out in NumPy here (mean squared error, binary cross-entropy on
logits), and for masks Keras's own `LossesContainer` on one example at a time (with that
example's mask). Tolerance rtol 1e-5 (float32 sums of a few terms).
"""

import re

import numpy as np
import pytest
import tensorflow as tf
from keras.src.engine import compile_utils

from tfpriv.dp.losses import ExampleLoss

B = 5
RNG = np.random.default_rng(7)
LOGITS = RNG.normal(size=(B, 3)).astype(np.float32)
TARGETS = RNG.normal(size=(B, 3)).astype(np.float32)
LOGIT1 = RNG.normal(size=(B, 1)).astype(np.float32)
BITS = np.array([1., 0., 0., 1., 1.], np.float32)
ONES = np.ones([B], np.float32)  # NumPy: no TF op at import (tests/mutation/tf_at_collection.py)


def mse(y, p):
    return np.mean((y - p) ** 2, axis=-1)


def bce_logits(y, z):
    z = z[:, 0]
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


@pytest.mark.parametrize('order', [['score', 'label'], ['label', 'score']])
def test_dict_losses_follow_the_output_names_of_list_outputs(order):
    """A model with list outputs and a dict of losses (as `compile` takes them): each loss is
    matched to its output by `output_names`, whatever the order."""
    loss = {'score': 'mse', 'label': tf.keras.losses.BinaryCrossentropy(from_logits=True)}
    by_name = {'score': (TARGETS, LOGITS), 'label': (BITS, LOGIT1)}
    y_true = [by_name[name][0] for name in order]
    y_pred = [tf.constant(by_name[name][1]) for name in order]
    got = ExampleLoss(loss, {'score': 2.0, 'label': 0.5}, output_names=order)(
        (y_true, ONES), y_pred).numpy()
    np.testing.assert_allclose(got, 2.0 * mse(TARGETS, LOGITS) + 0.5 * bce_logits(BITS, LOGIT1),
                               rtol=1e-5)


@pytest.mark.parametrize('losses', [['mse', None], [None, 'mse']])
def test_an_output_without_a_loss_is_skipped_and_the_others_kept(losses):
    y_true = [TARGETS if loss else BITS for loss in losses]
    y_pred = [tf.constant(LOGITS if loss else LOGIT1) for loss in losses]
    got = ExampleLoss(losses)((y_true, ONES), y_pred).numpy()
    np.testing.assert_allclose(got, mse(TARGETS, LOGITS), rtol=1e-5)


def test_masked_time_steps_are_left_out_of_each_example_loss():
    """A sequence output carrying a Keras mask (B, T): l_b = sum_t m_bt mse_bt / T, which depends
    on example b alone (Keras's batch loss divides by the valid steps of the whole batch,
    `apply_valid_mask`, a factor that depends on the other examples; one example alone gives
    sum_t m_bt mse_bt / sum_t m_bt, checked too). Without the mask the losses differ."""
    seq = tf.constant(RNG.normal(size=(B, 4, 3)).astype(np.float32))
    targets = RNG.normal(size=(B, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1], [0, 1, 1, 1], [1, 0, 0, 0]], bool)
    loss = tf.keras.losses.MeanSquaredError()
    unmasked = ExampleLoss(loss)((targets, ONES), seq).numpy()
    seq._keras_mask = tf.constant(mask)
    got = ExampleLoss(loss)((targets, ONES), seq).numpy()
    per_step = mse(targets, seq.numpy())
    np.testing.assert_allclose(got, np.sum(per_step * mask, axis=1) / 4, rtol=1e-5)
    for b in range(B):
        one = tf.constant(seq.numpy()[b:b + 1])
        one._keras_mask = tf.constant(mask[b:b + 1])
        alone = float(compile_utils.LossesContainer(loss)(tf.constant(targets[b:b + 1]), one))
        assert got[b] == pytest.approx(alone * mask[b].sum() / 4, rel=1e-5)
    partial = mask.sum(axis=1) < 4
    assert np.all(np.abs(got[partial] - unmasked[partial]) > 1e-3)


REFUSAL = ('is not a Keras loss: give a tf.keras.losses.Loss, a name Keras knows (e.g. '
           "'binary_crossentropy', 'mse'), a function (y_true, y_pred) -> per-example losses, "
           'or a dict/list of these per output')


@pytest.mark.parametrize('loss, name', [
    ([None, 'binary_crossentropyy'], "'binary_crossentropyy'"),
    (tf.keras.layers.Dense(1), 'Dense'),
])
def test_a_leaf_that_is_not_a_loss_is_refused_by_name(loss, name):
    with pytest.raises(ValueError, match=f'^loss {re.escape(name)} {re.escape(REFUSAL)}$'):
        ExampleLoss(loss)


def test_refusals_of_batch_losses_and_of_nothing_to_train_word_for_word():
    with pytest.raises(ValueError, match=re.escape(
            'returns one number per batch; DP-SGD clips each example, so the loss must return '
            'one value per example (a function (y_true, y_pred) -> shape (B,) or a '
            'tf.keras.losses.Loss whose call does not reduce over the batch)') + '$'):
        ExampleLoss(lambda y, p: tf.reduce_mean(tf.square(y - p)))((TARGETS, ONES),
                                                                   tf.constant(LOGITS))
    with pytest.raises(ValueError, match='^no output has both a label and a loss: nothing to '
                                         'train$'):
        ExampleLoss([None, None])(([TARGETS, BITS], ONES), [tf.constant(LOGITS),
                                                            tf.constant(LOGIT1)])
