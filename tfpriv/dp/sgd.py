"""`DPSGDModel`: wraps any Keras model; its `train_step` is DP-SGD normalized as the analysis says.

One step (Abadi et al. 2016, Alg. 1, with Poisson sampling of rate q):

    g = ( sum_{i in batch} clip_C(grad_i) + N(0, σ^2 C^2 I) ) / (q n)

The divisor is the *expected* batch size q n (= `batch_size`), not the number
of examples that happened to be drawn: TF Privacy's `DPModel` divides by the
actual batch size, which makes the noise scale data-dependent (and an empty
Poisson batch undefined). The accountant's Poisson-subsampled Gaussian bounds
exactly the sum-plus-noise above; dividing by a public constant is
post-processing. For fixed-size batches q n = B as well.

The user's model (Functional, Sequential with or without `Input`, or a
subclassed `tf.keras.Model`) is a sublayer: `DPSGDModel.call` is the user
model's call, so the layers and weights are the user's own. grad_i is the
gradient of the per-example loss l_i of the compiled loss structure
(`tfpriv.dp.losses.ExampleLoss`; a sample weight multiplies l_i before the
clip, so |clip_C(grad_i)| <= C whatever the weights).

Three ways to compute the sum of clipped per-example gradients:

- `fast`: `tfpriv.dp.grad_sample.clipped_sum`: per-example norms (ghost or
  explicit per layer) and the clipped sum from one forward and one backward
  pass. Only for models `tfpriv.dp.grad_sample.problems` finds eligible.
- `vectorized`: per-example gradients with `tf.vectorized_map`, clipped, summed.
- `microbatch`: the same, one example at a time in a sequential `tf.while_loop`
  (least memory; the fallback for recurrent layers the fast path does not
  cover, whose `while_loop`s `vectorized_map` cannot batch).
In the last two the applied gradient is by construction the sum of clipped
gradients, so they are correct for any layer, stochastic ones included.

Virtual steps (as Opacus's `BatchMemoryManager`): `vectorized` splits every
logical batch into chunks of at most `virtual_batch_size` examples, sums the
clipped gradients chunk after chunk (`parallel_iterations=1`, so one chunk's
per-example gradients are alive at a time) and adds the noise once per
logical batch: the released sum is the same, so the accounting is unchanged.
By default the chunk is the largest with chunk x (number of weights) x 4 bytes
<= `GRADIENT_MEMORY_BYTES` (64 MiB). The per-example gradients, their clipped
copies and the running sum then add at most about 3 x 64 MiB to the memory of a
chunk's activations, which are at most the whole batch's as in non-DP training:
peak <= non-DP peak + ~200 MiB, under 2 x the non-DP peak RSS of every model
measured (`benchmarks/dp_memory.py`). `microbatch` is the chunk size 1.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, List, Optional, Tuple

import tensorflow as tf

from tfpriv.dp import grad_sample
from tfpriv.dp.losses import ExampleLoss
from tfpriv.errors import FastClippingError

GradientsAndOutputs = Tuple[List[tf.Tensor], Any]
ChunkSum = Callable[[Any, Any], List[tf.Tensor]]
CLIPPING_PATHS = ('fast', 'vectorized', 'microbatch')
GRADIENT_MEMORY_BYTES = 64 * 2 ** 20


def _rows(structure, start: tf.Tensor, size: int):
    """Rows [start, start + size) of every leaf (batch dimension first)."""
    return tf.nest.map_structure(lambda t: t[start:start + size], structure)


def _unstaged(error: Exception) -> Exception:
    """The `FastClippingError` inside Keras/autograph's wrapping of a traced step, else `error`."""
    marker = 'FastClippingError: '
    text = str(error)
    if marker not in text:
        return error
    reason = text.split(marker, 1)[1].strip().splitlines()
    reason = [line for line in reason if line.strip() and 'Exception encountered' not in line]
    return FastClippingError(reason[0].strip() if reason else text)


class DPSGDModel(tf.keras.Model):
    """The user's `model` as a sublayer, trained by DP-SGD in `fit`.

    `fit` accepts only datasets from `PrivateTraining.dataset` (the sampling the
    ε is computed for); `evaluate` and `predict` take anything.
    """

    def __init__(self, model: tf.keras.Model, *, l2_norm_clip: float, noise_multiplier: float,
                 expected_batch_size: int, clipping: str,
                 virtual_batch_size: Optional[int] = None, name: Optional[str] = None):
        super().__init__(name=name)
        self.inner = model
        if getattr(model, 'output_names', None):
            self.output_names = list(model.output_names)
        self.l2_norm_clip = float(l2_norm_clip)
        self.noise_multiplier = float(noise_multiplier)
        self.expected_batch_size = int(expected_batch_size)
        self.virtual_batch_size = virtual_batch_size
        self.clipping = clipping
        self._clipped_sum = {'fast': self._fast_sum, 'vectorized': self._vectorized_sum,
                             'microbatch': self._loop_sum}[clipping]
        self._feeds = weakref.WeakSet()
        self._example_loss: Optional[ExampleLoss] = None

    def call(self, inputs, training=None):  # pylint: disable=arguments-differ
        """The user model's output."""
        return self.inner(inputs, training=training)

    def register_feed(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """Marks `dataset` as sampled the way the accounting assumes (see `fit`)."""
        self._feeds.add(dataset)
        return dataset

    def compile(self, *args, **kwargs) -> None:
        """Keras `compile`; the compiled loss (any structure Keras takes) is made per-example."""
        super().compile(*args, **kwargs)
        compiled = self.compiled_loss
        self._example_loss = ExampleLoss(
            compiled._user_losses, compiled._user_loss_weights,  # pylint: disable=protected-access
            output_names=self.output_names)

    def fit(self, x=None, y=None, *args, **kwargs):  # pylint: disable=keyword-arg-before-vararg
        """Keras `fit` on a dataset made by `PrivateTraining.dataset(...)` only."""
        if not (isinstance(x, tf.data.Dataset) and x in self._feeds) or y is not None:
            raise ValueError('fit a DP-SGD model on private.dataset(x, y): its batches are sampled '
                             'the way ε is computed (got arrays or another dataset, whose batches '
                             'the accounting does not describe)')
        try:
            return super().fit(x, None, *args, **kwargs)
        except Exception as error:  # pylint: disable=broad-except
            unstaged = _unstaged(error)
            if unstaged is error:
                raise
            raise unstaged from None

    def _clipped_gradient(self, x, targets) -> List[tf.Tensor]:
        """The gradient of a one-example batch's loss, scaled to L2 norm at most C."""
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(self._example_loss(targets, self(x, training=True)))
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(
            loss, self.trainable_variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)]
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))
        scale = self.l2_norm_clip / tf.maximum(norm, self.l2_norm_clip)
        return [g * scale for g in grads]

    def _vectorized_chunk(self, x, targets) -> List[tf.Tensor]:
        """Sum over a chunk of its examples' clipped gradients, vectorized over the examples."""
        def one(example):
            return self._clipped_gradient(*tf.nest.map_structure(lambda t: t[None], example))

        return [tf.reduce_sum(g, axis=0) for g in tf.vectorized_map(one, (x, targets))]

    def chunk_size(self) -> int:
        """Examples per virtual step: `virtual_batch_size`, else by `GRADIENT_MEMORY_BYTES`."""
        if self.virtual_batch_size is not None:
            return self.virtual_batch_size
        weights = sum(int(v.shape.num_elements()) for v in self.trainable_variables)
        return max(1, GRADIENT_MEMORY_BYTES // (4 * max(weights, 1)))

    def _chunked_sum(self, chunk_sum: ChunkSum, size: int, x, targets) -> List[tf.Tensor]:
        """Sum of `chunk_sum` over consecutive chunks of `size` examples, one chunk at a time."""
        count = tf.shape(targets[1])[0]

        def body(start, total):
            part = chunk_sum(_rows(x, start, size), _rows(targets, start, size))
            return start + size, [t + g for t, g in zip(total, part)]

        zeros = [tf.zeros_like(v) for v in self.trainable_variables]
        _, total = tf.while_loop(lambda start, _: start < count, body, (tf.constant(0), zeros),
                                 parallel_iterations=1)
        return total

    def _vectorized_sum(self, x, targets) -> GradientsAndOutputs:
        y_pred = self(x, training=True)  # builds the user model before any loop
        return self._chunked_sum(self._vectorized_chunk, self.chunk_size(), x, targets), y_pred

    def _loop_sum(self, x, targets) -> GradientsAndOutputs:
        y_pred = self(x, training=True)
        return self._chunked_sum(self._clipped_gradient, 1, x, targets), y_pred

    def _fast_sum(self, x, y) -> GradientsAndOutputs:
        return grad_sample.clipped_sum(self, self._example_loss, x, y, self.l2_norm_clip)

    def _privatize(self, summed: tf.Tensor) -> tf.Tensor:
        """(sum of clipped gradients + N(0, σ^2 C^2)) / (q n)."""
        if self.noise_multiplier > 0:
            summed += tf.random.normal(tf.shape(summed),
                                       stddev=self.noise_multiplier * self.l2_norm_clip)
        return summed / self.expected_batch_size

    def train_step(self, data):
        """One DP-SGD step; `sample_weight` scales each example's loss before its clip."""
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        count = tf.shape(tf.nest.flatten(x)[0])[0]
        weight = tf.ones([count]) if sample_weight is None else sample_weight
        summed, y_pred = self._clipped_sum(x, (y, weight))
        grads = [self._privatize(g) for g in summed]
        if self.losses:  # weight regularization: data-independent, added after the noise
            with tf.GradientTape() as tape:
                penalty = tf.add_n(self.losses)
            extra = tape.gradient(penalty, self.trainable_variables,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            grads = [g + e for g, e in zip(grads, extra)]
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.compute_loss(x, y, y_pred, sample_weight)
        return self.compute_metrics(x, y, y_pred, sample_weight)
