"""`problems(model)`: which models the fast path accepts, and the reason for each refusal."""

import re

import pytest
import tensorflow as tf

from tfpriv.dp.grad_sample import problems

L = tf.keras.layers


def _functional(*layers, shape=(8, 8, 3)):
    inputs = tf.keras.Input(shape)
    hidden = inputs
    for layer in layers:
        hidden = layer(hidden)
    return tf.keras.Model(inputs, L.Dense(2)(L.Flatten()(hidden)))


class _Own(tf.keras.Model):
    """A container with a registered sublayer and a variable of its own."""

    def __init__(self):
        super().__init__()
        self.dense = L.Dense(3)

    def build(self, input_shape):
        self.scale = self.add_weight('scale', (1,))

    def call(self, inputs):
        return self.dense(inputs) * self.scale


class _Leaf(tf.keras.layers.Layer):
    def call(self, inputs):
        return inputs - tf.reduce_mean(inputs, axis=0)


class _MyDense(L.Dense):
    def call(self, inputs):
        return super().call(inputs) * 2.0


class _Subclassed(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.conv, self.drop, self.head = L.SeparableConv2D(4, 3), L.Dropout(0.5), L.Dense(2)

    def call(self, inputs, training=None):
        return self.head(tf.reduce_mean(self.drop(self.conv(inputs), training=training), [1, 2]))


# Models are built inside the tests, not at collection: building one initializes TensorFlow's
# runtime, and a process forked after that (mutmut's fork server, see docs/testing.md) can
# hang in its thread pools.
@pytest.mark.parametrize('make_model', [
    lambda: _functional(L.RandomFlip(), L.Conv2D(4, 3, activation='relu'), L.Dropout(0.5),
                        L.DepthwiseConv2D(3), L.GroupNormalization(2), L.SeparableConv2D(4, 3),
                        L.GaussianNoise(0.1), L.LayerNormalization()),
    lambda: tf.keras.Sequential([L.Conv2D(4, 3), L.Flatten(), L.Dense(2)]),
    _Subclassed,
    lambda: _functional(tf.keras.Sequential([L.Conv2D(4, 3), L.Dropout(0.2)])),
    lambda: _functional(L.Conv3D(2, 1, trainable=False), shape=(4, 4, 4, 1)),
    lambda: _functional(L.Reshape((8, 24)), L.Bidirectional(L.LSTM(3, return_sequences=True)), L.GRU(2)),
    lambda: tf.keras.Sequential([tf.keras.Input((12,), dtype='int32'), L.Embedding(20, 4),
                                 L.Bidirectional(L.GRU(3)), L.Dense(2)]),
], ids=['functional_zoo', 'sequential_without_input', 'subclassed', 'nested', 'frozen_conv3d',
        'recurrent', 'int_token_input'])
def test_accepted(make_model):
    assert problems(make_model()) == []


@pytest.mark.parametrize('make_model,message', [
    (lambda: _functional(L.BatchNormalization()), 'statistics of the whole batch'),
    (lambda: _functional(L.Lambda(lambda t: t * 2)), "'lambda' .* not known to treat examples"),
    (lambda: _functional(_Leaf()), r'not known to treat examples independently \(Lambda, '
     r'auto-wrapped TF ops and custom layers without sublayers are not trusted\)$'),
    (lambda: _functional(_Own()), r'own trainable variables .* outside any registered layer$'),
    (lambda: _functional(_MyDense(4)), "no per-example gradient function"),
    (lambda: _functional(L.PReLU()), "'p_re_lu' .* no per-example gradient function"),
    (lambda: _functional(L.Conv3D(2, 1), shape=(4, 4, 4, 1)), 'no per-example gradient function'),
    (lambda: _functional(L.Reshape((8, 24)), L.TimeDistributed(L.Dense(3))), 'time steps into the batch'),
    (lambda: _functional(L.Reshape((8, 24)), L.LSTM(3, recurrent_dropout=0.1)), 'recurrent_dropout'),
    (lambda: _functional(L.Reshape((8, 24)), L.GRU(3, reset_after=False)), 'reset_after=False'),
    (lambda: _functional(L.Reshape((8, 24)), L.RNN(L.LSTMCell(3))), "LSTMCell.* no per-example gradient"),
    (lambda: _functional(L.Dense(3, activity_regularizer='l2')), 'activity_regularizer'),
    (lambda: _functional(L.Conv2D(2, 1, data_format='channels_first')), 'channels_first'),
    (lambda: tf.keras.Sequential([L.Embedding(5, 2, sparse=True)]), 'sparse=True'),
    (lambda: _functional(L.Dense(3, dtype='float16')), 'computes in float16'),
], ids=['batchnorm', 'lambda', 'custom_leaf', 'own_weights', 'dense_subclass_with_call', 'prelu',
        'conv3d', 'time_distributed', 'lstm_dropout', 'gru_reset_before', 'generic_rnn',
        'activity_regularizer', 'channels_first',
        'sparse_embedding', 'float16_weights'])
def test_refused_with_the_reason(make_model, message):
    found = problems(make_model())
    assert len(found) == 1, found
    assert re.search(message, found[0]), found


def test_tf_op_in_a_functional_graph_is_refused():
    inputs = tf.keras.Input((4,))
    mixed = inputs - tf.reduce_mean(inputs, axis=0)
    found = problems(tf.keras.Model(inputs, L.Dense(2)(mixed)))
    assert found and all('TFOpLambda' in problem for problem in found), found
