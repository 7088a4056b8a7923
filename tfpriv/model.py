"""Functional-API Keras models used across tfpriv (DP training, FL, SMPC, PATE).

Both builders return logits (no softmax) and accept any input shape: MNIST
images `(28, 28, 1)` or feature vectors such as the Credit Approval data
`(46,)`. The CNN reshapes vectors to `(d, 1, 1)` so the same architecture
builds for tabular data.

Layers follow the TensorFlow Privacy MNIST tutorial that the seed notebooks
use. `activation='tanh'` is offered because bounded activations train better
under DP-SGD (Papernot et al., "Tempered Sigmoid Activations for Deep Learning
with Differential Privacy", AAAI 2021).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

MODELS = ('mlp', 'cnn', 'cnn_large')
ACTIVATIONS = ('relu', 'tanh')


def _check(input_shape: Sequence[int], num_classes: int, activation: str, dropout: float) -> None:
    if not input_shape or any(int(d) < 1 for d in input_shape):
        raise ValueError(f'input_shape must be a non-empty tuple of positive ints, got {input_shape}')
    if num_classes < 2:
        raise ValueError(f'num_classes must be >= 2, got {num_classes}')
    if activation not in ACTIVATIONS:
        raise ValueError(f'activation must be one of {ACTIVATIONS}, got {activation!r}')
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f'dropout must be in [0, 1), got {dropout}')


def _dropout(x: tf.Tensor, rate: float) -> tf.Tensor:
    return tf.keras.layers.Dropout(rate)(x) if rate > 0 else x


def _image_input(input_shape: Sequence[int]):
    """(Keras Input, its image view): rank-1 inputs as `(d, 1, 1)`, rank-2 as `(h, w, 1)` images."""
    inputs = tf.keras.Input(shape=tuple(int(d) for d in input_shape))
    shape = tuple(inputs.shape[1:])
    image = {1: shape + (1, 1), 2: shape + (1,)}.get(len(shape))
    return inputs, inputs if image is None else tf.keras.layers.Reshape(image)(inputs)


def mlp(input_shape: Sequence[int], num_classes: int = 10, activation: str = 'relu',
        dropout: float = 0.2, name: str = 'mlp') -> tf.keras.Model:
    """Flatten → Dense(64) → Dense(64) → Dropout → Dense(classes) (logits)."""
    _check(input_shape, num_classes, activation, dropout)
    inputs = tf.keras.Input(shape=tuple(input_shape))
    x = tf.keras.layers.Flatten()(inputs)
    x = tf.keras.layers.Dense(64, activation=activation)(x)
    x = tf.keras.layers.Dense(64, activation=activation)(x)
    x = _dropout(x, dropout)
    outputs = tf.keras.layers.Dense(num_classes)(x)
    return tf.keras.Model(inputs, outputs, name=name)


def cnn(input_shape: Sequence[int], num_classes: int = 10, activation: str = 'relu',
        dropout: float = 0.2, name: str = 'cnn') -> tf.keras.Model:
    """Conv(16, 8, /2, same) → MaxPool(2, 1) → Conv(32, 4, /2, valid) → MaxPool(2, 1)
    → Flatten → Dense(32) → Dropout → Dense(classes) (logits).

    Inputs of rank 1 are viewed as `(d, 1, 1)` images and rank-2 inputs as
    single-channel images; the second conv keeps `valid` padding when the map is
    large enough and falls back to `same` for tiny inputs.
    """
    _check(input_shape, num_classes, activation, dropout)
    inputs, x = _image_input(input_shape)
    x = tf.keras.layers.Conv2D(16, 8, strides=2, padding='same', activation=activation)(x)
    x = tf.keras.layers.MaxPool2D(2, strides=1, padding='same' if min(x.shape[1:3]) < 2 else 'valid')(x)
    padding = 'valid' if min(x.shape[1:3]) >= 4 else 'same'
    x = tf.keras.layers.Conv2D(32, 4, strides=2, padding=padding, activation=activation)(x)
    x = tf.keras.layers.MaxPool2D(2, strides=1, padding='same' if min(x.shape[1:3]) < 2 else 'valid')(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(32, activation=activation)(x)
    x = _dropout(x, dropout)
    outputs = tf.keras.layers.Dense(num_classes)(x)
    return tf.keras.Model(inputs, outputs, name=name)


def cnn_large(input_shape: Sequence[int], num_classes: int = 10, activation: str = 'relu',
              dropout: float = 0.0, name: str = 'cnn_large') -> tf.keras.Model:
    """McMahan et al. 2017's MNIST CNN ("Communication-Efficient Learning of Deep
    Networks from Decentralized Data", sec. 3): Conv(32, 5) → MaxPool(2) → Conv(64, 5)
    → MaxPool(2) → Flatten → Dense(512) → [Dropout] → Dense(classes) (logits);
    1,663,370 parameters on MNIST. Convolutions and pools use `same` padding, so
    vectors (viewed as `(d, 1, 1)` images) build too.
    """
    _check(input_shape, num_classes, activation, dropout)
    inputs, x = _image_input(input_shape)
    for filters in (32, 64):
        x = tf.keras.layers.Conv2D(filters, 5, padding='same', activation=activation)(x)
        x = tf.keras.layers.MaxPool2D(2, padding='same')(x)
    x = tf.keras.layers.Flatten()(x)
    x = _dropout(tf.keras.layers.Dense(512, activation=activation)(x), dropout)
    outputs = tf.keras.layers.Dense(num_classes)(x)
    return tf.keras.Model(inputs, outputs, name=name)


_BUILDERS: Dict[str, Callable[..., tf.keras.Model]] = {'mlp': mlp, 'cnn': cnn, 'cnn_large': cnn_large}


def build_model(name: str, input_shape: Sequence[int], num_classes: int = 10,
                activation: str = 'relu', dropout: Optional[float] = None) -> tf.keras.Model:
    """Builds the model called `name` (one of `MODELS`); `dropout=None` is the model's default."""
    if name not in _BUILDERS:
        raise ValueError(f'unknown model {name!r}; choose one of {MODELS}')
    kwargs = {} if dropout is None else {'dropout': dropout}
    return _BUILDERS[name](input_shape, num_classes, activation=activation, **kwargs)
