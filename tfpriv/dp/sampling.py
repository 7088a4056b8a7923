"""The batches DP-SGD's accounting assumes, as a `tf.data.Dataset` Keras can fit on.

- `poisson_batches`: every step, each of the n examples joins the batch
  independently with probability q (Abadi et al. 2016, Alg. 1; the sampling
  of `PoissonSampledDpEvent`). Batch sizes are Binomial(n, q), empty batches
  included.
- `fixed_size_batches`: every step, a uniformly random subset of exactly B
  examples, drawn afresh (the sampling of `SampledWithoutReplacementDpEvent`).

The data is any structure Keras fits on: (x, y) or (x, y, sample_weight),
where x and y may be arrays, dicts or tuples of arrays (multi-input and
multi-output models), every leaf with the n examples along its first axis.
Each step's draw uses a stateless RNG keyed by a seed from
`tf.data.Dataset.random(rerandomize_each_iteration=True)`, so each epoch
(each new iterator) draws new batches, reproducibly under a fixed seed. The
gather follows Keras's own array adapter: the arrays ride along as one
repeated element and each step gathers its rows.

A `tf.data.Dataset` of single examples (`from_dataset`) is read once into
such arrays: Poisson sampling needs every one of the n examples to be
eligible independently at every step, which a streaming shuffle buffer
cannot give (it samples from a window), so the sampling stays exact at the
cost of holding the data in memory.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tfpriv import checks

Picker = Callable[[tf.Tensor], tf.Tensor]


def _as_tuples(structure):
    """Lists become tuples (tf.data would stack a list of arrays into one tensor)."""
    if isinstance(structure, (list, tuple)):
        return tuple(_as_tuples(item) for item in structure)
    if isinstance(structure, dict):
        return {key: _as_tuples(value) for key, value in structure.items()}
    return structure


def check_arrays(x, y, num_examples: int, sample_weight=None) -> None:
    """Refuses data whose leaves disagree in length or whose size is not `num_examples`."""
    lengths = [len(leaf) for part in (x, y, sample_weight) if part is not None
               for leaf in tf.nest.flatten(_as_tuples(part))]
    if len(set(lengths)) > 1:
        raise ValueError('x, y (and sample_weight) must have the same length in every array, '
                         f'got lengths {sorted(set(lengths))}')
    if lengths[0] != num_examples:
        raise ValueError(
            f'the data has {lengths[0]} examples but make_private was given num_examples='
            f'{num_examples}: ε is computed for q = batch_size / num_examples, so pass '
            f'num_examples={lengths[0]} to make_private (or feed all {num_examples} examples)')


def from_dataset(dataset: tf.data.Dataset, num_examples: int) -> tuple:
    """The (x, y) or (x, y, sample_weight) arrays of a dataset of `num_examples` single examples."""
    if not isinstance(dataset.element_spec, tuple) or len(dataset.element_spec) not in (2, 3):
        raise ValueError('a tf.data.Dataset for private.dataset must yield (x, y) or '
                         f'(x, y, sample_weight) examples, got elements {dataset.element_spec}')
    try:
        whole = next(iter(dataset.take(num_examples + 1).batch(num_examples + 1)))
    except StopIteration:
        whole = None
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise ValueError('private.dataset reads a tf.data.Dataset of single examples of one '
                         'shape (pad variable-length ones first): '
                         + str(error).split('\n')[0]) from None
    count = 0 if whole is None else len(tf.nest.flatten(whole)[0])
    if count != num_examples:
        raise ValueError(f'the tf.data.Dataset has {"more than " if count > num_examples else ""}'
                         f'{min(count, num_examples)} elements but make_private was given '
                         f'num_examples={num_examples}; each element must be one example '
                         '(call .unbatch() on a batched dataset)')
    return tf.nest.map_structure(lambda t: t.numpy(), whole)


def _batches(data: tuple, steps: int, seed: Optional[int], pick: Picker) -> tf.data.Dataset:
    """`steps` batches, each the rows `pick(stateless_seed)` of every leaf of `data`."""
    arrays = tf.data.Dataset.from_tensors(
        tf.nest.map_structure(np.asarray, _as_tuples(data))).repeat()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).take(steps)
    indices = seeds.map(pick, num_parallel_calls=tf.data.AUTOTUNE)
    return tf.data.Dataset.zip((indices, arrays)).map(
        lambda rows, parts: tf.nest.map_structure(lambda t: tf.gather(t, rows), parts),
        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _data(x, y, sample_weight) -> tuple:
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def _length(x) -> int:
    return len(tf.nest.flatten(_as_tuples(x))[0])


def poisson_batches(x, y, sampling_probability: float, steps: int, seed: Optional[int] = None,
                    sample_weight=None) -> tf.data.Dataset:
    """`steps` Poisson-sampled batches of (x, y): each row in each batch with probability q."""
    q = checks.number('sampling_probability', sampling_probability, minimum=0, maximum=1,
                      strict_minimum=True)
    n = _length(x)

    def pick(step_seed: tf.Tensor) -> tf.Tensor:
        return tf.where(tf.random.stateless_uniform([n], step_seed) < q)[:, 0]

    steps = checks.integer('steps', steps, minimum=1)
    return _batches(_data(x, y, sample_weight), steps, seed, pick)


def fixed_size_batches(x, y, batch_size: int, steps: int, seed: Optional[int] = None,
                       sample_weight=None) -> tf.data.Dataset:
    """`steps` batches of exactly `batch_size` rows, each a fresh uniform subset."""
    n = _length(x)
    batch_size = checks.integer('batch_size', batch_size, minimum=1, maximum=n)

    def pick(step_seed: tf.Tensor) -> tf.Tensor:
        return tf.argsort(tf.random.stateless_uniform([n], step_seed))[:batch_size]

    steps = checks.integer('steps', steps, minimum=1)
    return _batches(_data(x, y, sample_weight), steps, seed, pick)
