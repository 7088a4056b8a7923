"""Per-example losses of any compiled Keras loss (issue #15): checked against Keras itself.

Reference: Keras's own loss objects with their default reduction, called on ONE
example at a time (so the value is that example's loss as Keras defines it), and
Keras's `LossesContainer` (what `compile` uses) on the whole batch. Tolerance:
float32 sums of a few terms, rtol 1e-5. A per-example loss that averaged over
the batch, dropped a loss weight or an output, or ignored a sample weight fails.
"""

import numpy as np
import pytest
import tensorflow as tf
from keras.src.engine import compile_utils

from tfpriv.dp.losses import ExampleLoss

B = 5
RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(B, 3)).astype(np.float32)
LOGIT1 = RNG.normal(size=(B, 1)).astype(np.float32)
BITS = np.array([0., 1., 1., 0., 1.], np.float32)
TARGETS = RNG.normal(size=(B, 3)).astype(np.float32)
SEQ = RNG.normal(size=(B, 4, 3)).astype(np.float32)
SEQ_TARGETS = RNG.normal(size=(B, 4, 3)).astype(np.float32)
LABELS = np.array([0, 2, 1, 1, 0])
# NumPy, not tf.nn: running a TF op at import starts TensorFlow's runtime while mutmut's fork
# server collects the tests (tests/mutation/tf_at_collection.py)
PROBS = (np.exp(LOGITS) / np.exp(LOGITS).sum(axis=-1, keepdims=True)).astype(np.float32)
SIGMOID1 = (1.0 / (1.0 + np.exp(-LOGIT1))).astype(np.float32)

CASES = {
    'sparse-logits': (tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), LABELS,
                      LOGITS),
    'sparse-string-probs': ('sparse_categorical_crossentropy', LABELS[:, None],
                            PROBS),
    'categorical-onehot': ('categorical_crossentropy', np.eye(3)[LABELS],
                           PROBS),
    'binary-N': ('binary_crossentropy', BITS, SIGMOID1),
    'binary-N1-logits': (tf.keras.losses.BinaryCrossentropy(from_logits=True), BITS[:, None],
                         LOGIT1),
    'mse': ('mse', TARGETS, LOGITS),
    'mae-sequence': (tf.keras.losses.MeanAbsoluteError(), SEQ_TARGETS, SEQ),
    'huber-sum': (tf.keras.losses.Huber(reduction='sum'), TARGETS, LOGITS),
    'function': (lambda y, p: tf.reduce_sum(tf.square(y - p), axis=-1), TARGETS, LOGITS),
}


def _ones():
    return tf.ones([B])


def _keras_single(loss, y, y_pred, b):
    """Keras's loss of example b alone (container: same matching as compile)."""
    container = compile_utils.LossesContainer(loss)
    return float(container(tf.nest.map_structure(lambda t: tf.constant(t[b:b + 1]), y),
                           tf.nest.map_structure(lambda t: tf.constant(t[b:b + 1]), y_pred)))


@pytest.mark.parametrize('name', list(CASES))
def test_per_example_loss_is_the_keras_loss_of_each_example(name):
    loss, y, y_pred = CASES[name]
    per_example = ExampleLoss(loss)((y, _ones()), tf.constant(y_pred)).numpy()
    assert per_example.shape == (B,)
    expected = [_keras_single(loss, y, y_pred, b) for b in range(B)]
    np.testing.assert_allclose(per_example, expected, rtol=1e-5)
    batch = float(compile_utils.LossesContainer(loss)(tf.constant(y), tf.constant(y_pred)))
    combine = np.sum if name == 'huber-sum' else np.mean  # Keras's own reduction of the batch
    np.testing.assert_allclose(combine(per_example), batch, rtol=1e-5)


def test_outputs_are_summed_with_their_loss_weights_and_sample_weights_scale_each_example():
    loss = {'score': 'mse', 'label': tf.keras.losses.BinaryCrossentropy(from_logits=True)}
    weights = {'score': 2.0, 'label': 0.5}
    y = {'score': TARGETS, 'label': BITS}
    y_pred = {'score': tf.constant(LOGITS), 'label': tf.constant(LOGIT1)}
    example_weight = tf.constant([1., 0., 3., 0.5, 2.])
    per_example = ExampleLoss(loss, weights)((y, example_weight), y_pred).numpy()
    single = {key: np.array([_keras_single(loss[key], y[key], y_pred[key].numpy(), b)
                             for b in range(B)]) for key in loss}
    expected = (2.0 * single['score'] + 0.5 * single['label']) * example_weight.numpy()
    np.testing.assert_allclose(per_example, expected, rtol=1e-5)
    # List outputs with a list of losses: same numbers.
    listed = ExampleLoss([loss['score'], loss['label']], [2.0, 0.5])(
        ([TARGETS, BITS], example_weight), [y_pred['score'], y_pred['label']]).numpy()
    np.testing.assert_allclose(listed, expected, rtol=1e-5)


def test_unknown_and_batch_reducing_losses_are_refused_by_name():
    with pytest.raises(ValueError, match="loss 'binary_crossentropyy' is not a Keras loss"):
        ExampleLoss('binary_crossentropyy')
    with pytest.raises(ValueError, match='one number per batch'):
        ExampleLoss(lambda y, p: tf.reduce_mean(tf.square(y - p)))(
            (TARGETS, _ones()), tf.constant(LOGITS))
