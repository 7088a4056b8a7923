"""Per-example clipping really bounds every example's contribution (the DP guarantee).

With σ = 0, batch size 1 and plain SGD at learning rate 1, one training step
moves the weights by exactly the clipped gradient of one example, so the L2
norm of the weight change must not exceed `l2_norm_clip`.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_privacy as tfp
from tensorflow_privacy.privacy.fast_gradient_clipping import layer_registry

from tfpriv.dp.grad_sample import problems as fast_clipping_problems
from tfpriv.dp.keras import make_private
from tfpriv.model import build_model

CLIP = 0.05
NUM_STEPS = 12


def _step_norms(dp_model, optimizer, loss, x, y, steps=NUM_STEPS):
    dp_model.compile(optimizer=optimizer, loss=loss)
    norms = []
    for i in range(steps):
        before = [w.numpy().copy() for w in dp_model.trainable_variables]
        dp_model.train_on_batch(x[i:i + 1], y[i:i + 1])
        after = [w.numpy() for w in dp_model.trainable_variables]
        norms.append(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after, before))))
    return np.array(norms)


@pytest.mark.parametrize('model_name,dropout,clipping,expected_path', [
    ('mlp', 0.0, 'auto', 'fast'),
    ('mlp', 0.5, 'auto', 'fast'),
    ('cnn', 0.5, 'auto', 'fast'),
    ('cnn', 0.0, 'auto', 'fast'),
    ('mlp', 0.5, 'microbatch', 'microbatch'),
])
def test_update_of_one_example_is_within_clip(mnist_small, model_name, dropout, clipping,
                                              expected_path):
    tf.keras.utils.set_random_seed(1)
    model = build_model(model_name, (28, 28, 1), 10, dropout=dropout)
    private = make_private(model, num_examples=1000, batch_size=1, l2_norm_clip=CLIP,
                           noise_multiplier=0.0, learning_rate=1.0, clipping=clipping)
    assert private.clipping == expected_path
    norms = _step_norms(private.model, private.optimizer, private.loss, *mnist_small)
    assert norms.max() <= CLIP * (1 + 1e-4), norms
    assert norms.max() >= CLIP * 0.5  # the bound is active, not vacuous


def test_tf_privacy_fast_path_with_dropout_exceeds_clip(mnist_small):
    """The trap tfpriv's own fast path avoids: TF Privacy's fast path with Dropout overshoots C."""
    tf.keras.utils.set_random_seed(1)
    model = build_model('mlp', (28, 28, 1), 10, dropout=0.5)
    dp_model = tfp.DPModel(CLIP, 0.0, use_xla=False,
                           layer_registry=layer_registry.make_default_layer_registry(),
                           inputs=model.inputs, outputs=model.outputs)
    norms = _step_norms(dp_model, tf.keras.optimizers.SGD(1.0),
                        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        *mnist_small)
    assert norms.max() > CLIP * 1.01, norms


@pytest.mark.parametrize('model_name', ['mlp', 'cnn'])
def test_fast_path_equals_per_example_gradients(mnist_small, model_name):
    """Fast (registry) clipping applies the same update as explicit per-example clipping."""
    x, y = mnist_small[0][:16], mnist_small[1][:16]
    updates = {}
    for path in ('fast', 'vectorized'):
        tf.keras.utils.set_random_seed(3)
        model = build_model(model_name, (28, 28, 1), 10, dropout=0.0)
        private = make_private(model, num_examples=1000, batch_size=16, l2_norm_clip=0.1,
                               noise_multiplier=0.0, learning_rate=1.0, clipping=path)
        private.model.compile(optimizer=private.optimizer, loss=private.loss)
        before = [w.numpy().copy() for w in private.model.trainable_variables]
        private.model.train_on_batch(x, y)
        updates[path] = [w.numpy() - b for w, b in zip(private.model.trainable_variables, before)]
    for fast, slow in zip(updates['fast'], updates['vectorized']):
        np.testing.assert_allclose(fast, slow, atol=2e-6)


class _RandomMask(tf.keras.layers.Layer):
    """A custom layer the allow-list does not know: random in training, identity otherwise."""

    def call(self, inputs, training=None):
        if training:
            return inputs * tf.cast(tf.random.uniform(tf.shape(inputs)) < 0.5, inputs.dtype) * 2.0
        return inputs


def _head(h):
    return tf.keras.layers.Dense(10)(tf.keras.layers.Dense(16, activation='relu')(h))


def _zoo(kind):
    L = tf.keras.layers
    inputs = tf.keras.Input((28, 28, 1))
    if kind == 'nested_dropout':
        inner = tf.keras.Sequential([L.Dense(16, activation='relu', input_shape=(784,)),
                                     L.Dropout(0.5)])
        return tf.keras.Model(inputs, L.Dense(10)(inner(L.Flatten()(inputs))))
    if kind == 'augmentation':
        h = L.RandomTranslation(0.2, 0.2)(L.RandomFlip('horizontal')(inputs))
        return tf.keras.Model(inputs, _head(L.Flatten()(h)))
    if kind == 'lambda_dropout':
        h = L.Lambda(lambda t: tf.nn.dropout(t, 0.5))(L.Dense(16)(L.Flatten()(inputs)))
        return tf.keras.Model(inputs, L.Dense(10)(h))
    if kind == 'tf_op_dropout':
        return tf.keras.Model(inputs, L.Dense(10)(tf.nn.dropout(L.Dense(16)(L.Flatten()(inputs)), 0.5)))
    if kind == 'gaussian_noise':
        return tf.keras.Model(inputs, _head(L.GaussianNoise(1.0)(L.Flatten()(inputs))))
    if kind == 'time_distributed_dropout':
        h = L.TimeDistributed(L.Dropout(0.5))(L.Reshape((28, 28))(inputs))
        return tf.keras.Model(inputs, _head(L.Flatten()(h)))
    return tf.keras.Model(inputs, _head(_RandomMask()(L.Flatten()(inputs))))


# model kind -> the path 'auto' takes: stochastic Keras layers are fine on the fast path
# (norms and gradient from one forward pass); Lambda, TF ops, custom leaf layers and
# TimeDistributed are not trusted to keep examples apart.
ZOO = {'nested_dropout': 'fast', 'augmentation': 'fast', 'gaussian_noise': 'fast',
       'lambda_dropout': 'vectorized', 'tf_op_dropout': 'vectorized',
       'time_distributed_dropout': 'vectorized', 'custom_layer': 'vectorized'}


@pytest.mark.slow
@pytest.mark.parametrize('kind', sorted(ZOO))
def test_zoo_stays_within_the_clip_on_every_path(mnist_small, kind):
    """Issue #14 item 2 / #15: stochastic layers anywhere; every path keeps each example ≤ C.

    σ = 0, batch 1, lr 1: each step moves the weights by exactly one example's clipped
    gradient (divided by q n = 1), so its norm must be ≤ C up to float32 rounding (1e-4
    relative). 'fast' is refused exactly for the untrusted models.
    """
    tf.keras.utils.set_random_seed(2)
    model = _zoo(kind)
    paths = ['auto', 'microbatch']
    if ZOO[kind] == 'fast':
        paths.append('fast')
    else:
        with pytest.raises(ValueError, match="clipping='fast'"):
            make_private(model, num_examples=1000, batch_size=1, l2_norm_clip=CLIP,
                         noise_multiplier=0.0, clipping='fast')
    for clipping in paths:
        private = make_private(model, num_examples=1000, batch_size=1, l2_norm_clip=CLIP,
                               noise_multiplier=0.0, learning_rate=1.0, clipping=clipping)
        assert private.clipping == (ZOO[kind] if clipping == 'auto' else clipping)
        norms = _step_norms(private.model, private.optimizer, private.loss, *mnist_small, steps=6)
        assert norms.max() <= CLIP * (1 + 1e-4), (kind, clipping, norms)
        assert norms.max() >= CLIP * 0.5  # the bound is active, not vacuous


def test_deterministic_wrappers_and_nesting_are_walked():
    """A nested model stays eligible; TimeDistributed(Dense) folds time into the batch axis."""
    L = tf.keras.layers
    inner = tf.keras.Sequential([L.Dense(16, activation='relu', input_shape=(784,))])
    inputs = tf.keras.Input((28, 28, 1))
    nested = tf.keras.Model(inputs, L.Dense(10)(inner(L.Flatten()(inputs))))
    assert fast_clipping_problems(nested) == []
    wrapped = tf.keras.Model(inputs, L.Dense(10)(L.Flatten()(
        L.TimeDistributed(L.Dense(4))(L.Reshape((28, 28))(inputs)))))
    problems = fast_clipping_problems(wrapped)
    assert len(problems) == 1 and 'time steps into the batch axis' in problems[0]
