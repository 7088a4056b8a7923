"""Functional-API Keras models used across tfpriv (DP training, FL, SMPC, PATE).

Both builders return logits (no softmax) and accept any input shape: MNIST
images `(28, 28, 1)` or feature vectors such as the Credit Approval data
`(46,)`. The CNN reshapes vectors to `(d, 1, 1)` so the same architecture
builds for tabular data.

Layers follow the TensorFlow Privacy MNIST tutorial that the seed notebooks
use. `activation='tanh'` is offered because bounded activations train better
under DP-SGD (Papernot et al., "Tempered Sigmoid Activations for Deep Learning
with Differential Privacy", AAAI 2021).

DP-friendly normalization is GroupNormalization without learned scale/shift
(Wu & He 2018, as Tramèr & Boneh 2021's `GroupNorm(affine=False)`): each
example is normalized with its own statistics, so per-example clipping still
bounds its influence, nothing is estimated from the data set (no privacy cost,
unlike data normalization with noised statistics), and the layer has no weights,
so the fast (ghost-norm) clipping path stays available. `cnn_gn` puts it after
each convolution. The ScatterNet models (`scatternet_linear`, `scatternet_cnn`,
Tramèr & Boneh's architectures) take `tfpriv.data.scatter.scatter_dataset`
features of shape (7, 7, 81), to which that module has already applied the same
GroupNorm on the scattering channels (once, instead of at every step).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

MODELS = ('mlp', 'cnn', 'cnn_gn', 'cnn_large', 'scatternet_linear', 'scatternet_cnn')
SCATTERNET_MODELS = ('scatternet_linear', 'scatternet_cnn')
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


def group_norm(x: tf.Tensor, groups: int) -> tf.Tensor:
    """Per-example GroupNormalization over the channels of `x`, without weights (see module doc).

    `groups` is reduced to gcd(groups, channels) so it always divides the channels.
    """
    groups = math.gcd(int(groups), int(x.shape[-1]))
    return tf.keras.layers.GroupNormalization(groups=groups, center=False, scale=False)(x)


def _conv(x: tf.Tensor, filters: int, kernel: int, strides: int, padding: str, activation: str,
          groups: Optional[int]) -> tf.Tensor:
    """Conv2D with `activation`; with `groups`, Conv2D → GroupNorm(groups) → activation."""
    if groups is None:
        return tf.keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                      activation=activation)(x)
    x = tf.keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding)(x)
    return tf.keras.layers.Activation(activation)(group_norm(x, groups))


def cnn(input_shape: Sequence[int], num_classes: int = 10, activation: str = 'relu',
        dropout: float = 0.2, name: str = 'cnn', groups: Optional[int] = None) -> tf.keras.Model:
    """Conv(16, 8, /2, same) → MaxPool(2, 1) → Conv(32, 4, /2, valid) → MaxPool(2, 1)
    → Flatten → Dense(32) → Dropout → Dense(classes) (logits).

    Inputs of rank 1 are viewed as `(d, 1, 1)` images and rank-2 inputs as
    single-channel images; the second conv keeps `valid` padding when the map is
    large enough and falls back to `same` for tiny inputs. With `groups`, each
    convolution is followed by a weightless GroupNorm of that many groups.
    """
    _check(input_shape, num_classes, activation, dropout)
    inputs, x = _image_input(input_shape)
    x = _conv(x, 16, 8, 2, 'same', activation, groups)
    x = tf.keras.layers.MaxPool2D(2, strides=1, padding='same' if min(x.shape[1:3]) < 2 else 'valid')(x)
    padding = 'valid' if min(x.shape[1:3]) >= 4 else 'same'
    x = _conv(x, 32, 4, 2, padding, activation, groups)
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


def cnn_gn(input_shape: Sequence[int], num_classes: int = 10, activation: str = 'relu',
           dropout: float = 0.0, name: str = 'cnn_gn') -> tf.keras.Model:
    """`cnn` with a 4-group weightless GroupNorm after each convolution (no Dropout by default)."""
    return cnn(input_shape, num_classes, activation, dropout, name, groups=4)


def _scatter_input(input_shape: Sequence[int]) -> tf.Tensor:
    """The Keras Input for (group-normalized) scattering features (H, W, channels)."""
    if len(input_shape) != 3:
        raise ValueError('ScatterNet models take scattering features of shape (H, W, channels) '
                         f'(tfpriv.data.scatter), got input_shape {tuple(input_shape)}')
    return tf.keras.Input(shape=tuple(int(d) for d in input_shape))


def scatternet_linear(input_shape: Sequence[int], num_classes: int = 10, activation: str = 'relu',
                      dropout: float = 0.0, name: str = 'scatternet_linear') -> tf.keras.Model:
    """Tramèr & Boneh 2021's ScatterNet + linear: Flatten → Dense(classes) on the
    group-normalized scattering features.

    A linear model: `activation` is checked but unused.
    """
    _check(input_shape, num_classes, activation, dropout)
    inputs = _scatter_input(input_shape)
    x = _dropout(tf.keras.layers.Flatten()(inputs), dropout)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(num_classes)(x), name=name)


def scatternet_cnn(input_shape: Sequence[int], num_classes: int = 10, activation: str = 'relu',
                   dropout: float = 0.0, name: str = 'scatternet_cnn') -> tf.keras.Model:
    """Tramèr & Boneh 2021's ScatterNet CNN for MNIST (their `MNIST_CNN` on group-normalized
    scattering features): Conv(16, 3, /2, same) → Conv(32, 3, same) → Flatten → Dense(32)
    → [Dropout] → Dense(classes); they use tanh.
    """
    _check(input_shape, num_classes, activation, dropout)
    inputs = _scatter_input(input_shape)
    x = tf.keras.layers.Conv2D(16, 3, strides=2, padding='same', activation=activation)(inputs)
    x = tf.keras.layers.Conv2D(32, 3, padding='same', activation=activation)(x)
    x = tf.keras.layers.Flatten()(x)
    x = _dropout(tf.keras.layers.Dense(32, activation=activation)(x), dropout)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(num_classes)(x), name=name)


_BUILDERS: Dict[str, Callable[..., tf.keras.Model]] = {
    'mlp': mlp, 'cnn': cnn, 'cnn_gn': cnn_gn, 'cnn_large': cnn_large,
    'scatternet_linear': scatternet_linear, 'scatternet_cnn': scatternet_cnn}


def build_model(name: str, input_shape: Sequence[int], num_classes: int = 10,
                activation: str = 'relu', dropout: Optional[float] = None) -> tf.keras.Model:
    """Builds the model called `name` (one of `MODELS`); `dropout=None` is the model's default."""
    if name not in _BUILDERS:
        raise ValueError(f'unknown model {name!r}; choose one of {MODELS}')
    kwargs = {} if dropout is None else {'dropout': dropout}
    return _BUILDERS[name](input_shape, num_classes, activation=activation, **kwargs)
