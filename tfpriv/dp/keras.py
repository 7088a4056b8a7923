"""`make_private`: the one entry point that makes a user's Keras model train with DP-SGD.

    private = tfpriv.dp.keras(model, num_examples=60000, batch_size=256,
                                     l2_norm_clip=1.0, noise_multiplier=1.1, epochs=15)
    private.model.compile(optimizer=private.optimizer, loss=private.loss, metrics=['accuracy'])
    private.model.fit(x, y, batch_size=256, epochs=15, callbacks=[private.epsilon_callback])

Three clipping paths of TensorFlow Privacy 0.9, all computing DP-SGD (Abadi et
al. 2016) with per-example clipping:

- `fast`: `DPModel` with a layer registry ("ghost" per-example norms, Lee &
  Kifer 2021; Li et al. 2022): one extra backward pass instead of per-example
  gradients. TF Privacy's registry has Dense and Embedding; tfpriv adds Conv2D
  (`tfpriv.dp.clipping`). Used only when every trainable layer is
  covered and the model has no stochastic layer: TF
  Privacy computes the norms with Dropout off and the gradient with Dropout on,
  so a Dropout model's clipped gradient can exceed the clip norm and the DP
  guarantee silently fails. Such models take the vectorized path instead.
- `vectorized`: `DPModel(use_xla=False)`: per-example gradients with
  `tf.vectorized_map`, clipped, summed, noised. XLA is off because it made
  conv models 2-8x slower on CPU here.
- `microbatch`: the `DPKeras*Optimizer`s with an unreduced loss, one
  microbatch per example (`num_microbatches=None`, so a last partial batch
  works). Slowest; kept for users of those optimizers.

`auto` picks `fast` when it is eligible and correct, else `vectorized`.

The optimizer applies the mean of clipped per-example gradients plus
N(0, (σC)^2 / B^2) noise, so the Poisson-subsampled Gaussian accounting of
`tfpriv.dp.accounting` with q = B / n applies (Keras draws shuffled batches,
the usual DP-SGD practice; the accountant assumes Poisson sampling).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, Optional

import tensorflow as tf
import tensorflow_privacy as tfp
from tensorflow_privacy.privacy.fast_gradient_clipping import gradient_clipping_utils

from tfpriv.dp import accounting
from tfpriv.dp.callbacks import EpsilonCallback
from tfpriv.dp.clipping import make_layer_registry, registry_covers

Clipping = Literal['auto', 'fast', 'vectorized', 'microbatch']
CLIPPING_PATHS = ('auto', 'fast', 'vectorized', 'microbatch')
OPTIMIZERS = ('sgd', 'adam')
STOCHASTIC_LAYERS = (tf.keras.layers.Dropout, tf.keras.layers.GaussianNoise,
                     tf.keras.layers.GaussianDropout, tf.keras.layers.AlphaDropout)


@dataclasses.dataclass
class PrivateTraining:
    """What a Keras user needs to train privately.

    Attributes:
      model: the DP model to compile and fit (shares the user's layers and weights).
      optimizer: optimizer to pass to `compile`.
      loss: loss to pass to `compile` (reduced or unreduced as the path needs).
      epsilon_callback: adds ε per epoch to the Keras history.
      clipping: the path used (`fast`, `vectorized` or `microbatch`).
      noise_multiplier: σ (calibrated when a target ε was given).
      sampling_probability: q = batch_size / num_examples.
      steps_per_epoch: ceil(num_examples / batch_size).
      delta: δ of the reported ε.
    """

    model: tf.keras.Model
    optimizer: tf.keras.optimizers.Optimizer
    loss: tf.keras.losses.Loss
    epsilon_callback: EpsilonCallback
    clipping: str
    noise_multiplier: float
    l2_norm_clip: float
    sampling_probability: float
    steps_per_epoch: int
    delta: float

    def epsilon(self, epochs: float, accountant: accounting.Accountant = 'rdp') -> float:
        """ε after `epochs` epochs of training."""
        return accounting.dpsgd_epsilon(self.noise_multiplier, self.sampling_probability,
                                        int(round(epochs * self.steps_per_epoch)), self.delta,
                                        accountant)


def default_delta(num_examples: int) -> float:
    """10^-ceil(log10 n): 1e-5 for MNIST's 60,000 examples (δ < 1/n)."""
    return 10.0 ** -math.ceil(math.log10(num_examples))


def fast_clipping_eligible(model: tf.keras.Model) -> bool:
    """True when the registry covers every trainable layer and no layer is stochastic."""
    stochastic = any(isinstance(layer, STOCHASTIC_LAYERS) for layer in model.layers)
    return (not stochastic and gradient_clipping_utils.has_internal_compute_graph(model)
            and registry_covers(model))


def _validate(model, num_examples, batch_size, l2_norm_clip, noise_multiplier, target_epsilon,
              epochs, delta, clipping, optimizer, learning_rate) -> None:
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f'model must be a tf.keras.Model, got {type(model).__name__}')
    if num_examples < 1:
        raise ValueError(f'num_examples must be >= 1, got {num_examples}')
    if not 1 <= batch_size <= num_examples:
        raise ValueError(f'batch_size must be in [1, num_examples={num_examples}], got {batch_size}')
    if not l2_norm_clip > 0:
        raise ValueError(f'l2_norm_clip must be > 0, got {l2_norm_clip}')
    if (noise_multiplier is None) == (target_epsilon is None):
        raise ValueError('give exactly one of noise_multiplier and target_epsilon')
    if noise_multiplier is not None and not noise_multiplier >= 0:
        raise ValueError(f'noise_multiplier must be >= 0, got {noise_multiplier}')
    if target_epsilon is not None and not (target_epsilon > 0 and epochs):
        raise ValueError(f'target_epsilon must be > 0 and needs epochs, got {target_epsilon}, '
                         f'epochs={epochs}')
    if epochs is not None and epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    if delta is not None and not 0 < delta < 1:
        raise ValueError(f'delta must be in (0, 1), got {delta}')
    if clipping not in CLIPPING_PATHS:
        raise ValueError(f'clipping must be one of {CLIPPING_PATHS}, got {clipping!r}')
    if optimizer not in OPTIMIZERS:
        raise ValueError(f'optimizer must be one of {OPTIMIZERS}, got {optimizer!r}')
    if not learning_rate > 0:
        raise ValueError(f'learning_rate must be > 0, got {learning_rate}')


def make_private(model: tf.keras.Model, *, num_examples: int, batch_size: int,
                 l2_norm_clip: float, noise_multiplier: Optional[float] = None,
                 target_epsilon: Optional[float] = None, epochs: Optional[int] = None,
                 delta: Optional[float] = None, optimizer: str = 'sgd',
                 learning_rate: float = 0.1, clipping: Clipping = 'auto',
                 from_logits: bool = True) -> PrivateTraining:
    """Wraps `model` for DP-SGD; see the module docstring for the paths.

    Args:
      model: a Functional (or Sequential) Keras model.
      num_examples: training-set size n.
      batch_size: expected batch size B (q = B / n).
      l2_norm_clip: per-example gradient clip norm C.
      noise_multiplier: σ; or give `target_epsilon` and `epochs` to calibrate it.
      target_epsilon: ε budget to meet after `epochs` epochs (RDP accountant).
      epochs: planned epochs (needed with `target_epsilon`).
      delta: δ; default 10^-ceil(log10 n).
      optimizer: 'sgd' or 'adam'.
      learning_rate: optimizer learning rate.
      clipping: 'auto', 'fast', 'vectorized' or 'microbatch'.
      from_logits: whether the model outputs logits.

    Raises:
      ValueError/TypeError: for any invalid argument, before TensorFlow work starts;
        `clipping='fast'` on a model that is not eligible.
    """
    _validate(model, num_examples, batch_size, l2_norm_clip, noise_multiplier, target_epsilon,
              epochs, delta, clipping, optimizer, learning_rate)
    delta = default_delta(num_examples) if delta is None else delta
    q = batch_size / num_examples
    steps_per_epoch = math.ceil(num_examples / batch_size)
    if target_epsilon is not None:
        noise_multiplier = accounting.calibrate_noise_multiplier(
            target_epsilon, q, epochs * steps_per_epoch, delta)
    eligible = fast_clipping_eligible(model)
    if clipping == 'fast' and not eligible:
        raise ValueError("clipping='fast' needs every trainable layer in the registry "
                         '(Dense, Embedding, Conv2D) and no Dropout/noise layer; use '
                         "'vectorized' or 'auto'")
    path = ('fast' if eligible else 'vectorized') if clipping == 'auto' else clipping

    if path == 'microbatch':
        dp_optimizer = {'sgd': tfp.DPKerasSGDOptimizer, 'adam': tfp.DPKerasAdamOptimizer}[optimizer]
        opt = dp_optimizer(l2_norm_clip=l2_norm_clip, noise_multiplier=noise_multiplier,
                           num_microbatches=None, learning_rate=learning_rate)
        loss = tf.keras.losses.SparseCategoricalCrossentropy(
            from_logits=from_logits, reduction=tf.losses.Reduction.NONE)
        dp_model = model
    else:
        opt = {'sgd': tf.keras.optimizers.SGD, 'adam': tf.keras.optimizers.Adam}[optimizer](
            learning_rate=learning_rate)
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        registry = make_layer_registry() if path == 'fast' else None
        dp_model = tfp.DPModel(l2_norm_clip, noise_multiplier, num_microbatches=None, use_xla=False,
                               layer_registry=registry, inputs=model.inputs, outputs=model.outputs,
                               name=f'dp_{model.name}')
    callback = EpsilonCallback(noise_multiplier, q, steps_per_epoch, delta)
    return PrivateTraining(dp_model, opt, loss, callback, path, float(noise_multiplier),
                           float(l2_norm_clip), q, steps_per_epoch, delta)
