"""`make_private`: the one entry point that makes a user's Keras model train with DP-SGD.

    private = tfpriv.dp.make_private(model, num_examples=len(x), batch_size=256,
                                     l2_norm_clip=1.0, noise_multiplier=1.1)
    private.model.compile(optimizer=private.optimizer, loss=private.loss, metrics=['accuracy'])
    private.model.fit(private.dataset(x, y), epochs=15, callbacks=[private.epsilon_callback])

`make_private(..., loss=...)` takes any loss `compile` takes (a Loss, a name,
a function, or a dict/list per output); `private.loss` is that loss (default:
sparse categorical cross-entropy). Per-example losses come from the compiled
loss itself (`tfpriv.dp.losses`). Any `tf.keras.Model` is accepted: Functional,
Sequential with or without `Input`, subclassed, multi-input/-output.

`private.dataset(x, y, sample_weight=None)` (arrays, or dicts/tuples of arrays;
or a `tf.data.Dataset` of single (x, y[, w]) examples, read once into memory
so the sampling stays exact) draws the batches the accountant assumes: by default
Poisson sampling (each example in each step independently with probability
q = batch_size / num_examples; batch sizes vary, empty batches happen), or
`sampling='shuffle'`: fresh uniform fixed-size batches, accounted with the
replace-one analysis of fixed-size sampling (`tfpriv.dp.accounting`). The
update is (sum of clipped per-example gradients + N(0, σ^2 C^2 I)) / (q n)
(`tfpriv.dp.sgd`). It refuses data whose size is not `num_examples`, and
`private.model.fit` refuses any other feed.

Clipping paths (`tfpriv.dp.sgd`): `fast` (ghost norms; only for models that
`tfpriv.dp.clipping` proves eligible), `vectorized` (in virtual steps of
`virtual_batch_size` examples, bounding its memory), `microbatch`; `auto` picks
`fast` when eligible, else `microbatch` for recurrent models (`vectorized_map`
cannot batch their loops), else `vectorized`. Refused up front, with the layer
named: BatchNormalization (`tfpriv.dp.replace_batchnorm` fixes it), stateful
recurrent layers, and `clipping='vectorized'` with recurrent layers.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, List, Literal, Optional

import tensorflow as tf

from tfpriv import checks
from tfpriv.dp import accounting, clipping as clipping_checks, grad_sample, losses, sampling as feeds
from tfpriv.dp.callbacks import EpsilonCallback
from tfpriv.dp.sgd import CLIPPING_PATHS as PATHS, DPSGDModel

Clipping = Literal['auto', 'fast', 'vectorized', 'microbatch']
CLIPPING_PATHS = ('auto',) + PATHS
OPTIMIZERS = ('sgd', 'adam')


@dataclasses.dataclass
class PrivateTraining:
    """What a Keras user needs to train privately.

    Attributes:
      model: the DP-SGD model to compile and fit (shares the user's layers and weights).
      optimizer: optimizer to pass to `compile`.
      loss: loss to pass to `compile` (the `loss` given to `make_private`).
      epsilon_callback: adds ε per epoch to the Keras history.
      clipping: the path used (`fast`, `vectorized` or `microbatch`).
      sampling: `poisson` or `shuffle` (what `dataset` draws and ε assumes).
      noise_multiplier: σ (calibrated when a target ε was given).
      l2_norm_clip: C.
      num_examples: n.
      batch_size: expected batch size q n.
      steps_per_epoch: ceil(n / batch_size).
      delta: δ of the reported ε.
    """

    model: DPSGDModel
    optimizer: tf.keras.optimizers.Optimizer
    loss: Any
    epsilon_callback: EpsilonCallback
    clipping: str
    sampling: str
    noise_multiplier: float
    l2_norm_clip: float
    num_examples: int
    batch_size: int
    steps_per_epoch: int
    delta: float

    @property
    def sampling_probability(self) -> float:
        """q = batch_size / num_examples."""
        return self.batch_size / self.num_examples

    def epsilon(self, epochs: float, accountant: accounting.Accountant = 'rdp') -> float:
        """ε after `epochs` epochs of training."""
        return accounting.dpsgd_epsilon(self.noise_multiplier, self.sampling_probability,
                                        int(round(epochs * self.steps_per_epoch)), self.delta,
                                        accountant, self.sampling, self.num_examples)

    def dataset(self, x, y=None, seed: Optional[int] = None,
                sample_weight=None) -> tf.data.Dataset:
        """One epoch (`steps_per_epoch` batches) sampled as ε assumes, from all n examples.

        `x`, `y` (and `sample_weight`, one weight per example, multiplying its loss
        before the clip) are arrays or dicts/tuples of arrays with n rows; or `x`
        is a `tf.data.Dataset` of n single (x, y) or (x, y, sample_weight) examples.
        """
        if isinstance(x, tf.data.Dataset):
            if y is not None or sample_weight is not None:
                raise ValueError('with a tf.data.Dataset, give the labels (and sample weights) '
                                 'inside its (x, y[, sample_weight]) elements, not as y=')
            x, y, *rest = feeds.from_dataset(x, self.num_examples)
            sample_weight = rest[0] if rest else None
        feeds.check_arrays(x, y, self.num_examples, sample_weight)
        if self.sampling == 'poisson':
            data = feeds.poisson_batches(x, y, self.sampling_probability, self.steps_per_epoch,
                                         seed, sample_weight=sample_weight)
        else:
            data = feeds.fixed_size_batches(x, y, self.batch_size, self.steps_per_epoch, seed,
                                            sample_weight=sample_weight)
        return self.model.register_feed(data)


def _validate(model, num_examples, batch_size, l2_norm_clip, noise_multiplier, target_epsilon,
              epochs, delta, learning_rate) -> None:
    """Every argument check of `make_private` (TypeError/ValueError naming the argument)."""
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f'model must be a tf.keras.Model, got {type(model).__name__}')
    checks.integer('num_examples', num_examples, minimum=1)
    checks.integer('batch_size', batch_size, minimum=1, maximum=num_examples)
    checks.number('l2_norm_clip', l2_norm_clip, minimum=0, strict_minimum=True)
    checks.number('learning_rate', learning_rate, minimum=0, strict_minimum=True)
    if (noise_multiplier is None) == (target_epsilon is None):
        raise ValueError('give exactly one of noise_multiplier and target_epsilon')
    if noise_multiplier is not None:
        checks.number('noise_multiplier', noise_multiplier, minimum=0)
    if epochs is not None:
        checks.integer('epochs', epochs, minimum=1)
    if target_epsilon is not None:
        checks.number('target_epsilon', target_epsilon, minimum=0, strict_minimum=True)
        if epochs is None:
            raise ValueError('target_epsilon needs epochs (the planned number of epochs)')
    if delta is not None:
        checks.number('delta', delta, minimum=0, maximum=1, strict_minimum=True)
        if delta >= 1.0 / num_examples:
            raise ValueError(f'delta must be < 1/num_examples = {1 / num_examples:g}, got {delta}')


RECURRENT = (tf.keras.layers.RNN, tf.keras.layers.Bidirectional)


def _recurrent_problems(model: tf.keras.Model, clipping: str) -> List[str]:
    """Recurrent layers DP-SGD cannot train as asked (stateful ones; any under `vectorized`)."""
    problems = []
    for layer in clipping_checks.all_layers(model):
        if not isinstance(layer, RECURRENT):
            continue
        if getattr(layer, 'stateful', False):
            problems.append(f"layer {layer.name!r} ({type(layer).__name__}) is stateful: its "
                            'state carries one batch into the next, so an example changes later '
                            "gradients beyond its clip; build it with stateful=False")
        elif clipping == 'vectorized':
            problems.append(f"layer {layer.name!r} ({type(layer).__name__}) runs a tf.while_loop "
                            "that tf.vectorized_map cannot batch; use clipping='microbatch' or "
                            "'auto'")
    return problems


def _check_loss(model: tf.keras.Model, loss: Any) -> None:
    """Every loss leaf is a Keras loss; a dict's keys name outputs (when the model's are known)."""
    losses.check_loss(loss)
    names = getattr(model, 'output_names', None)
    if isinstance(loss, dict) and names:
        unknown = sorted(set(loss) - set(names))
        if unknown:
            raise ValueError(f'loss has keys {unknown} that are not outputs of {model.name!r}; '
                             f'its outputs are {list(names)}')


def _choose_path(model: tf.keras.Model, clipping: str) -> str:
    """Refuses models DP-SGD cannot train; the clipping path to use."""
    problems = clipping_checks.validate(model) + _recurrent_problems(model, clipping)
    if problems:
        raise ValueError('make_private: ' + '; '.join(problems))
    if clipping in ('fast', 'auto'):
        reasons = grad_sample.problems(model)
        if clipping == 'fast' and reasons:
            raise ValueError("clipping='fast' cannot bound every example's gradient here: "
                             + '; '.join(reasons) + ". Use clipping='vectorized' or 'auto'")
        if not reasons:
            return 'fast'
        recurrent = any(isinstance(layer, RECURRENT)
                        for layer in clipping_checks.all_layers(model))
        return 'microbatch' if recurrent else 'vectorized'
    return clipping


def make_private(model: tf.keras.Model, *, num_examples: int, batch_size: int,
                 l2_norm_clip: float, noise_multiplier: Optional[float] = None,
                 target_epsilon: Optional[float] = None, epochs: Optional[int] = None,
                 delta: Optional[float] = None, optimizer: str = 'sgd',
                 learning_rate: float = 0.1, clipping: Clipping = 'auto',
                 sampling: accounting.Sampling = 'poisson', from_logits: bool = True,
                 loss: Any = None, virtual_batch_size: Optional[int] = None) -> PrivateTraining:
    """Wraps `model` for DP-SGD; see the module docstring.

    Args:
      model: any `tf.keras.Model` (no BatchNormalization, no stateful recurrent layers).
      num_examples: training-set size n (checked against the data `dataset` feeds).
      batch_size: expected batch size q n.
      l2_norm_clip: per-example gradient clip norm C.
      noise_multiplier: σ; or give `target_epsilon` and `epochs` to calibrate it.
      target_epsilon: ε budget to meet after `epochs` epochs (RDP accountant).
      epochs: planned epochs (needed with `target_epsilon`).
      delta: δ < 1/n; default `accounting.default_delta(n)`.
      optimizer: 'sgd' or 'adam'.
      learning_rate: optimizer learning rate.
      clipping: 'auto', 'fast', 'vectorized' or 'microbatch'.
      sampling: 'poisson' (default) or 'shuffle' (fixed-size batches).
      from_logits: whether the model outputs logits (for the default loss only).
      loss: any loss `compile` takes (per output: a dict or list); default
        `SparseCategoricalCrossentropy(from_logits)`. Compile with `private.loss`
        (or any other loss: the compiled one is what gets clipped).
      virtual_batch_size: examples per virtual step of the `vectorized` path;
        default: as many as keep their gradients within `sgd.GRADIENT_MEMORY_BYTES`.

    Raises:
      ValueError/TypeError: for any invalid argument or model, before any TensorFlow work.
    """
    _validate(model, num_examples, batch_size, l2_norm_clip, noise_multiplier, target_epsilon,
              epochs, delta, learning_rate)
    checks.choice('clipping', clipping, CLIPPING_PATHS)
    checks.choice('optimizer', optimizer, OPTIMIZERS)
    checks.choice('sampling', sampling, accounting.SAMPLINGS)
    if virtual_batch_size is not None:
        checks.integer('virtual_batch_size', virtual_batch_size, minimum=1)
    if loss is None:
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    _check_loss(model, loss)
    path = _choose_path(model, clipping)
    delta = accounting.default_delta(num_examples) if delta is None else float(delta)
    q, steps_per_epoch = batch_size / num_examples, math.ceil(num_examples / batch_size)
    if target_epsilon is not None:
        noise_multiplier = accounting.calibrate_noise_multiplier(
            target_epsilon, q, epochs * steps_per_epoch, delta, sampling, num_examples)
    dp_model = DPSGDModel(model, l2_norm_clip=l2_norm_clip, noise_multiplier=noise_multiplier,
                          expected_batch_size=batch_size, clipping=path,
                          virtual_batch_size=virtual_batch_size, name=f'dp_{model.name}')
    opt = {'sgd': tf.keras.optimizers.SGD, 'adam': tf.keras.optimizers.Adam}[optimizer](
        learning_rate=learning_rate)
    callback = EpsilonCallback(noise_multiplier, q, steps_per_epoch, delta, sampling, num_examples)
    return PrivateTraining(dp_model, opt, loss, callback, path, sampling, float(noise_multiplier),
                           float(l2_norm_clip), num_examples, batch_size, steps_per_epoch, delta)
