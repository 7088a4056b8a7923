"""One compiled Keras training loop, reused for many models of the same architecture.

PATE trains hundreds of teachers and several student rounds with one
architecture. Building a model and tracing a training step per teacher would
dominate the run time on two CPU cores, so `Trainer` builds one model with
`tfpriv.model.build_model`, re-draws its weights (Glorot-uniform from
`RandomSource`, biases zero) and zeroes the optimizer state in `reset()`, and
runs a whole training schedule (a (steps, batch) matrix of example indices)
inside one `tf.function` loop: no Python per step, no retracing between models.

Optional augmentation (for the student): per-example random rotation,
scaling and translation through one projective-transform op; the random
parameters are drawn from `RandomSource` and passed in, so all randomness
comes from it (the TF seed that drives dropout masks is also drawn from it).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from tfpriv.rng import RandomSource


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Uniform ranges: rotation ±degrees, scale 1 ± scale, translation ±pixels."""

    degrees: float = 12.0
    scale: float = 0.1
    pixels: float = 2.5


def glorot(rng: RandomSource, shape) -> np.ndarray:
    """Glorot-uniform draw: U(-l, l), l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return ((2.0 * rng.uniform01(shape) - 1.0) * limit).astype(np.float32)


class Trainer:
    """A `build_model` network with Adam, trained on index schedules inside one `tf.function`."""

    def __init__(self, model: str, input_shape, num_classes: int, rng: RandomSource, learning_rate: float = 1e-3,
                 activation: str = 'relu', dropout: float = 0.2):
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        from tfpriv.model import build_model  # pylint: disable=g-import-not-at-top
        self._tf, self._rng = tf, rng
        tf.random.set_seed(int(rng.uniform_mod(2**31 - 1, 1)[0]))  # dropout masks follow `rng`
        self.model = build_model(model, input_shape, num_classes, activation=activation, dropout=dropout)
        self._optimizer = tf.keras.optimizers.Adam(learning_rate)
        self._optimizer.build(self.model.trainable_variables)
        self._image = len(input_shape) == 3
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        net, optimizer = self.model, self._optimizer

        def step(images, labels):
            with tf.GradientTape() as tape:
                value = loss(labels, net(images, training=True))
            grads = tape.gradient(value, net.trainable_variables)
            optimizer.apply_gradients(zip(grads, net.trainable_variables))

        @tf.function(reduce_retracing=True)
        def fit(x, y, batches):
            for i in tf.range(tf.shape(batches)[0]):
                step(tf.gather(x, batches[i]), tf.gather(y, batches[i]))

        def transform(images, transforms):
            return tf.raw_ops.ImageProjectiveTransformV3(
                images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
                fill_value=0.0, interpolation='BILINEAR')

        @tf.function(reduce_retracing=True)
        def fit_augmented(x, y, batches, transforms):
            for i in tf.range(tf.shape(batches)[0]):
                step(transform(tf.gather(x, batches[i]), transforms[i]), tf.gather(y, batches[i]))

        @tf.function(reduce_retracing=True)
        def logits(x):
            return net(x, training=False)

        penultimate_model = tf.keras.Model(net.input, net.layers[-1].input)

        @tf.function(reduce_retracing=True)
        def penultimate(x):
            return penultimate_model(x, training=False)

        self._fit, self._fit_augmented, self._logits, self._penultimate = fit, fit_augmented, logits, penultimate

    def reset(self) -> None:
        """Fresh random weights and optimizer state."""
        for var in self.model.trainable_variables:
            shape = tuple(var.shape)
            var.assign(glorot(self._rng, shape) if len(shape) >= 2 else np.zeros(shape, np.float32))
        for var in self._optimizer.variables:
            var.assign(self._tf.zeros_like(var))

    def _transforms(self, steps: int, batch: int, height: int, width: int,
                    aug: Augmentation) -> np.ndarray:
        """(steps, batch, 8) projective transforms: output pixel -> input pixel (rotate/scale about centre, shift)."""
        u = 2.0 * self._rng.uniform01((steps, batch, 4)) - 1.0
        theta = np.deg2rad(aug.degrees) * u[..., 0]
        s = 1.0 + aug.scale * u[..., 1]
        tx, ty = aug.pixels * u[..., 2], aug.pixels * u[..., 3]
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        cos, sin = s * np.cos(theta), s * np.sin(theta)
        zeros = np.zeros_like(cos)
        return np.stack([cos, -sin, cx - cos * cx + sin * cy + tx,
                         sin, cos, cy - sin * cx - cos * cy + ty, zeros, zeros], axis=-1).astype(np.float32)

    def fit(self, x: np.ndarray, y: np.ndarray, batches: np.ndarray,
            augmentation: Optional[Augmentation] = None) -> None:
        """One Adam step per row of `batches` (int32 indices into x, y)."""
        y = np.asarray(y, dtype=np.int32)
        batches = np.asarray(batches, dtype=np.int32)
        if augmentation is None or not self._image:
            self._fit(x, y, batches)
            return
        transforms = self._transforms(batches.shape[0], batches.shape[1], x.shape[1], x.shape[2], augmentation)
        self._fit_augmented(x, y, batches, transforms)

    def shuffled_epochs(self, n: int, epochs: int, batch_size: int) -> np.ndarray:
        """`epochs` shuffled passes over n examples as a (steps, batch) index matrix."""
        b = min(batch_size, n)
        order = np.concatenate([np.argsort(self._rng.uint64(n), kind='stable') for _ in range(epochs)])
        steps = len(order) // b
        return order[:steps * b].reshape(steps, b).astype(np.int32)

    def probabilities(self, x: np.ndarray, chunk: int = 2000) -> np.ndarray:
        """Softmax outputs (len(x), num_classes)."""
        logits = _chunked(self._logits, x, chunk)
        logits -= logits.max(axis=1, keepdims=True)
        expd = np.exp(logits)
        return expd / expd.sum(axis=1, keepdims=True)

    def features(self, x: np.ndarray, chunk: int = 2000) -> np.ndarray:
        """The activations that feed the output layer (inference mode), shape (len(x), width)."""
        return _chunked(self._penultimate, x, chunk)


def _chunked(fn, x: np.ndarray, chunk: int) -> np.ndarray:
    """`fn` applied to consecutive slices of `chunk` rows of x, concatenated as NumPy."""
    return np.concatenate([fn(x[i:i + chunk]).numpy() for i in range(0, len(x), chunk)])


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax equals the label."""
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(labels)))

