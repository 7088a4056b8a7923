"""`DPSGDModel`: a Keras Functional model whose `train_step` is DP-SGD normalized as the analysis says.

One step (Abadi et al. 2016, Alg. 1, with Poisson sampling of rate q):

    g = ( sum_{i in batch} clip_C(grad_i) + N(0, σ^2 C^2 I) ) / (q n)

The divisor is the *expected* batch size q n (= `batch_size`), not the number
of examples that happened to be drawn: TF Privacy's `DPModel` divides by the
actual batch size, which makes the noise scale data-dependent (and an empty
Poisson batch undefined). The accountant's Poisson-subsampled Gaussian bounds
exactly the sum-plus-noise above; dividing by a public constant is
post-processing. For fixed-size batches q n = B as well.

Three ways to compute the sum of clipped per-example gradients:

- `fast`: `tfpriv.dp.grad_sample.clipped_sum`: per-example norms (ghost or
  explicit per layer) and the clipped sum from one forward and one backward
  pass. Only for models `tfpriv.dp.grad_sample.problems` finds eligible.
- `vectorized`: per-example gradients with `tf.vectorized_map`, clipped, summed.
- `microbatch`: the same, one example at a time in a `tf.while_loop`
  (least memory).
In the last two the applied gradient is by construction the sum of clipped
gradients, so they are correct for any layer, stochastic ones included.
"""

from __future__ import annotations

import weakref
from typing import List, Optional, Tuple

import tensorflow as tf

from tfpriv.dp import grad_sample

GradientsAndOutputs = Tuple[List[tf.Tensor], tf.Tensor]
CLIPPING_PATHS = ('fast', 'vectorized', 'microbatch')


class DPSGDModel(tf.keras.Model):
    """A Functional model (built from `inputs`/`outputs`) trained by DP-SGD in `fit`.

    `fit` accepts only datasets from `PrivateTraining.dataset` (the sampling the
    ε is computed for); `evaluate` and `predict` take anything.
    """

    def __init__(self, *, inputs, outputs, l2_norm_clip: float, noise_multiplier: float,
                 expected_batch_size: int, clipping: str, name: Optional[str] = None):
        super().__init__(inputs=inputs, outputs=outputs, name=name)
        self.l2_norm_clip = float(l2_norm_clip)
        self.noise_multiplier = float(noise_multiplier)
        self.expected_batch_size = int(expected_batch_size)
        self.clipping = clipping
        self._clipped_sum = {'fast': self._fast_sum, 'vectorized': self._vectorized_sum,
                             'microbatch': self._loop_sum}[clipping]
        self._feeds = weakref.WeakSet()
        self._example_loss = None

    def register_feed(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """Marks `dataset` as sampled the way the accounting assumes (see `fit`)."""
        self._feeds.add(dataset)
        return dataset

    def compile(self, *args, **kwargs) -> None:
        """Keras `compile`; the loss must be a `tf.keras.losses.Loss` (it is made per-example)."""
        super().compile(*args, **kwargs)
        if not isinstance(self.loss, tf.keras.losses.Loss):
            raise TypeError('DP-SGD needs loss to be a tf.keras.losses.Loss instance (for example '
                            f'PrivateTraining.loss), got {type(self.loss).__name__}')
        config = self.loss.get_config()
        config['reduction'] = tf.keras.losses.Reduction.NONE
        self._example_loss = type(self.loss).from_config(config)

    def fit(self, x=None, y=None, *args, **kwargs):  # pylint: disable=keyword-arg-before-vararg
        """Keras `fit` on a dataset made by `PrivateTraining.dataset(x, y)` only."""
        if not (isinstance(x, tf.data.Dataset) and x in self._feeds) or y is not None:
            raise ValueError('fit a DP-SGD model on private.dataset(x, y): its batches are sampled '
                             'the way ε is computed (got arrays or another dataset, whose batches '
                             'the accounting does not describe)')
        return super().fit(x, None, *args, **kwargs)

    def _example_gradient(self, example: Tuple[tf.Tensor, tf.Tensor]) -> List[tf.Tensor]:
        """One example's gradient, scaled to L2 norm at most C."""
        x, y = example
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(self._example_loss(y[None], self(x[None], training=True)))
        grads = tape.gradient(loss, self.trainable_variables,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))
        scale = self.l2_norm_clip / tf.maximum(norm, self.l2_norm_clip)
        return [g * scale for g in grads]

    def _vectorized_sum(self, x, y) -> GradientsAndOutputs:
        per_example = tf.vectorized_map(self._example_gradient, (x, y))
        return [tf.reduce_sum(g, axis=0) for g in per_example], self(x, training=True)

    def _loop_sum(self, x, y) -> GradientsAndOutputs:
        def body(i, total):
            grads = self._example_gradient((x[i], y[i]))
            return i + 1, [t + g for t, g in zip(total, grads)]

        zeros = [tf.zeros_like(v) for v in self.trainable_variables]
        _, total = tf.while_loop(lambda i, _: i < tf.shape(y)[0], body, (tf.constant(0), zeros))
        return total, self(x, training=True)

    def _fast_sum(self, x, y) -> GradientsAndOutputs:
        return grad_sample.clipped_sum(self, self._example_loss, x, y, self.l2_norm_clip)

    def _privatize(self, summed: tf.Tensor) -> tf.Tensor:
        """(sum of clipped gradients + N(0, σ^2 C^2)) / (q n)."""
        if self.noise_multiplier > 0:
            summed += tf.random.normal(tf.shape(summed),
                                       stddev=self.noise_multiplier * self.l2_norm_clip)
        return summed / self.expected_batch_size

    def train_step(self, data):
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError('DP-SGD here does not support sample weights')
        summed, y_pred = self._clipped_sum(x, y)
        grads = [self._privatize(g) for g in summed]
        if self.losses:  # weight regularization: data-independent, added after the noise
            with tf.GradientTape() as tape:
                penalty = tf.add_n(self.losses)
            extra = tape.gradient(penalty, self.trainable_variables,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            grads = [g + e for g, e in zip(grads, extra)]
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.compute_loss(x, y, y_pred)
        return self.compute_metrics(x, y, y_pred, None)
