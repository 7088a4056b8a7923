"""The batches DP-SGD's accounting assumes, as a `tf.data.Dataset` Keras can fit on.

- `poisson_batches`: every step, each of the n examples joins the batch
  independently with probability q (Abadi et al. 2016, Alg. 1; the sampling
  of `PoissonSampledDpEvent`). Batch sizes are Binomial(n, q), empty batches
  included.
- `fixed_size_batches`: every step, a uniformly random subset of exactly B
  examples, drawn afresh (the sampling of `SampledWithoutReplacementDpEvent`).

Each step's draw uses a stateless RNG keyed by a seed from
`tf.data.Dataset.random(rerandomize_each_iteration=True)`, so each epoch
(each new iterator) draws new batches, reproducibly under a fixed seed. The
gather follows Keras's own array adapter: the arrays ride along as one
repeated element and each step gathers its rows.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tfpriv import checks

Picker = Callable[[tf.Tensor], tf.Tensor]


def check_arrays(x, y, num_examples: int) -> None:
    """Refuses data whose size is not the `num_examples` the accounting was told."""
    if len(x) != len(y):
        raise ValueError(f'x and y must have the same length, got {len(x)} and {len(y)}')
    if len(x) != num_examples:
        raise ValueError(
            f'the data has {len(x)} examples but make_private was given num_examples='
            f'{num_examples}: ε is computed for q = batch_size / num_examples, so pass '
            f'num_examples={len(x)} to make_private (or feed all {num_examples} examples)')


def _batches(x, y, steps: int, seed: Optional[int], pick: Picker) -> tf.data.Dataset:
    """`steps` batches, each the rows `pick(stateless_seed)` of (x, y)."""
    arrays = tf.data.Dataset.from_tensors((np.asarray(x), np.asarray(y))).repeat()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).take(steps)
    indices = seeds.map(pick, num_parallel_calls=tf.data.AUTOTUNE)
    return tf.data.Dataset.zip((indices, arrays)).map(
        lambda rows, data: (tf.gather(data[0], rows), tf.gather(data[1], rows)),
        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def poisson_batches(x, y, sampling_probability: float, steps: int,
                    seed: Optional[int] = None) -> tf.data.Dataset:
    """`steps` Poisson-sampled batches of (x, y): each row in each batch with probability q."""
    q = checks.number('sampling_probability', sampling_probability, minimum=0, maximum=1,
                      strict_minimum=True)
    n = len(x)

    def pick(step_seed: tf.Tensor) -> tf.Tensor:
        return tf.where(tf.random.stateless_uniform([n], step_seed) < q)[:, 0]

    return _batches(x, y, checks.integer('steps', steps, minimum=1), seed, pick)


def fixed_size_batches(x, y, batch_size: int, steps: int,
                       seed: Optional[int] = None) -> tf.data.Dataset:
    """`steps` batches of exactly `batch_size` rows, each a fresh uniform subset."""
    batch_size = checks.integer('batch_size', batch_size, minimum=1, maximum=len(x))

    def pick(step_seed: tf.Tensor) -> tf.Tensor:
        return tf.argsort(tf.random.stateless_uniform([len(x)], step_seed))[:batch_size]

    return _batches(x, y, checks.integer('steps', steps, minimum=1), seed, pick)
