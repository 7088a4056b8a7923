"""Keras side of the zoo: each model written the way keras.io examples write it.

    echo '["--model", "convnet", "--mode", "dp", "--data", "zoo.npz"]' |
        PYTHONPATH=. .venv/bin/python benchmarks/zoo/keras_zoo.py     # a `worker.serve` server

The DP configuration is what a user of tfpriv writes: build the model, `make_private`
it (Adam, lr 1e-3, C=1, σ=1.1, batch 256), compile `private.model` with the model's own
loss, train. Batches are fixed-size (`train_on_batch`), as on the Opacus side. TF runs
with 2 intra-op and 1 inter-op threads. Any exception of `make_private` or `compile`
is reported as a refusal, any later one as an error (see `worker.run`).
"""

from __future__ import annotations

import inspect
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

from zoo import spec, worker  # pylint: disable=wrong-import-position

L = tf.keras.layers
IMAGE = (28, 28, 1)


def convnet(dropout: bool) -> tf.keras.Model:
    """keras.io "Simple MNIST convnet" (softmax output, categorical cross-entropy)."""
    head = [L.Dropout(0.5)] if dropout else []
    return tf.keras.Sequential([
        tf.keras.Input(shape=IMAGE), L.Conv2D(32, kernel_size=(3, 3), activation='relu'),
        L.MaxPooling2D(pool_size=(2, 2)), L.Conv2D(64, kernel_size=(3, 3), activation='relu'),
        L.MaxPooling2D(pool_size=(2, 2)), L.Flatten(), *head, L.Dense(10, activation='softmax')])


class SubclassedCNN(tf.keras.Model):
    """A CNN written as a `tf.keras.Model` subclass (no Input, no functional graph)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = L.Conv2D(16, 3, activation='relu'), L.Conv2D(32, 3, activation='relu')
        self.pool, self.flatten, self.dense = L.MaxPooling2D(), L.Flatten(), L.Dense(10)

    def call(self, inputs, training=None):
        x = self.pool(self.conv1(inputs))
        return self.dense(self.flatten(self.pool(self.conv2(x))))


def two_output() -> tf.keras.Model:
    inputs = tf.keras.Input(shape=IMAGE)
    x = L.MaxPooling2D()(L.Conv2D(32, 3, activation='relu')(inputs))
    x = L.MaxPooling2D()(L.Conv2D(64, 3, activation='relu')(x))
    x = L.Dense(64, activation='relu')(L.Flatten()(x))
    return tf.keras.Model(inputs, {'digit': L.Dense(10, name='digit')(x),
                                   'parity': L.Dense(1, name='parity')(x)})


def text(*body: L.Layer, embedding: int = 32) -> tf.keras.Model:
    return tf.keras.Sequential([tf.keras.Input(shape=(spec.SEQUENCE_LENGTH,), dtype='int32'),
                                L.Embedding(spec.VOCAB, embedding), *body, L.Dense(10)])


def build_model(name: str) -> tf.keras.Model:
    """The Keras model `name` of `spec.MODELS`."""
    if name == 'mlp':
        return tf.keras.Sequential([tf.keras.Input(shape=IMAGE), L.Flatten(),
                                    L.Dense(128, activation='relu'), L.Dense(10)])
    if name in ('convnet', 'convnet_nodrop'):
        return convnet(dropout=name == 'convnet')
    if name == 'groupnorm_cnn':
        return tf.keras.Sequential([
            tf.keras.Input(shape=IMAGE), L.Conv2D(32, 3), L.GroupNormalization(8), L.ReLU(),
            L.MaxPooling2D(), L.Conv2D(64, 3), L.GroupNormalization(8), L.ReLU(),
            L.MaxPooling2D(), L.Flatten(), L.Dense(10)])
    if name == 'subclassed_cnn':
        return SubclassedCNN()
    if name == 'two_output':
        return two_output()
    if name == 'embedding_gap':
        return text(L.GlobalAveragePooling1D(), L.Dense(64, activation='relu'))
    if name == 'conv1d_text':
        return text(L.Dropout(0.5), L.Conv1D(64, 5, strides=2, activation='relu'),
                    L.Conv1D(64, 5, strides=2, activation='relu'), L.GlobalMaxPooling1D(),
                    L.Dense(64, activation='relu'), L.Dropout(0.5), embedding=64)
    if name == 'lstm_text':
        return text(L.LSTM(64))
    if name == 'bigru_text':
        return text(L.Bidirectional(L.GRU(32)))
    width, features = {'binary_credit': ((32,), 42), 'regression_credit': ((64, 64), 41)}[name]
    head = L.Dense(1, activation='sigmoid' if name == 'binary_credit' else None)
    return tf.keras.Sequential([tf.keras.Input(shape=(features,))]
                               + [L.Dense(w, activation='relu') for w in width] + [head])


def loss_and_labels(model: spec.ZooModel):
    """(the loss the user compiles with, y -> the labels Keras is fed)."""
    if model.name.startswith('convnet'):
        return 'categorical_crossentropy', lambda y: tf.keras.utils.to_categorical(y, 10)
    if model.task == 'two_output':
        losses = {'digit': tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  'parity': tf.keras.losses.BinaryCrossentropy(from_logits=True)}
        return losses, lambda y: {'digit': y, 'parity': (y % 2).astype(np.float32)}
    if model.task == 'binary':
        return tf.keras.losses.BinaryCrossentropy(), lambda y: y
    if model.task == 'regression':
        return tf.keras.losses.MeanSquaredError(), lambda y: y
    return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), lambda y: y


def make_private_kwargs(loss, num_examples: int) -> dict:
    """`make_private` arguments; the loss too when this tfpriv's `make_private` takes one."""
    from tfpriv.dp.keras import make_private  # pylint: disable=import-outside-toplevel
    kwargs = dict(num_examples=num_examples, batch_size=spec.BATCH_SIZE,
                  l2_norm_clip=spec.L2_NORM_CLIP, noise_multiplier=spec.NOISE_MULTIPLIER,
                  optimizer='adam', learning_rate=spec.LEARNING_RATE)
    if 'loss' in inspect.signature(make_private).parameters:
        kwargs['loss'] = loss
    return kwargs


def build(model: spec.ZooModel, mode: str, num_examples: int):
    """Train step, predict and clipping path of `model`, without DP or through make_private."""
    keras_model = build_model(model.name)
    loss, labels = loss_and_labels(model)
    path, optimizer = 'non-DP', tf.keras.optimizers.Adam(spec.LEARNING_RATE)
    if mode == 'dp':
        from tfpriv.dp.keras import make_private  # pylint: disable=import-outside-toplevel
        private = make_private(keras_model, **make_private_kwargs(loss, num_examples))
        keras_model, optimizer, path = private.model, private.optimizer, private.clipping
    keras_model.compile(optimizer=optimizer, loss=loss)

    def predict(x):
        out = keras_model.predict(x, batch_size=500, verbose=0)
        return out['digit'] if isinstance(out, dict) else out

    return worker.Built(lambda x, y: keras_model.train_on_batch(x, labels(y)), predict, path,
                        lambda: sum(int(tf.size(v)) for v in keras_model.trainable_variables))


def setup() -> None:
    """In each forked child, before any TensorFlow op: threads and seeds."""
    tf.config.threading.set_intra_op_parallelism_threads(spec.TF_INTRA_OP_THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(spec.TF_INTER_OP_THREADS)
    tf.keras.utils.set_random_seed(0)


def main() -> None:
    import tfpriv.dp.keras  # pylint: disable=import-outside-toplevel,unused-import
    worker.serve('keras', build, setup)


if __name__ == '__main__':
    main()
