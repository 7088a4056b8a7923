"""Keras callbacks of DP training: the privacy spent per epoch, and the weight average (EMA)."""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from tfpriv import checks
from tfpriv.dp import accounting


class EpsilonCallback(tf.keras.callbacks.Callback):
    """Adds `epsilon` (RDP) and, for Poisson sampling, `epsilon_pld` (PLD) to the logs per epoch.

    The epoch index Keras passes is absolute (it counts epochs restored by
    `BackupAndRestore` or `initial_epoch`), so ε keeps growing correctly across
    a resumed run: after epoch e the DP-SGD event has (e + 1) * steps_per_epoch steps.
    """

    def __init__(self, noise_multiplier: float, sampling_probability: float, steps_per_epoch: int,
                 delta: float, sampling: accounting.Sampling = 'poisson',
                 num_examples: Optional[int] = None):
        super().__init__()
        self.noise_multiplier = noise_multiplier
        self.sampling_probability = sampling_probability
        self.steps_per_epoch = steps_per_epoch
        self.delta = delta
        self.sampling = sampling
        self.num_examples = num_examples
        # dp_accounting's PLD accountant has no fixed-size (replace-one) event.
        self.pld = sampling == 'poisson'

    def epsilon_after(self, epochs: int, accountant: accounting.Accountant = 'rdp') -> float:
        """ε after `epochs` epochs of `steps_per_epoch` steps."""
        return accounting.dpsgd_epsilon(self.noise_multiplier, self.sampling_probability,
                                        epochs * self.steps_per_epoch, self.delta, accountant,
                                        self.sampling, self.num_examples)

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, float]] = None) -> None:
        if logs is None:
            return
        logs['epsilon'] = self.epsilon_after(epoch + 1)
        if self.pld:
            logs['epsilon_pld'] = self.epsilon_after(epoch + 1, 'pld')



class WeightAverage(tf.keras.callbacks.Callback):
    """Exponential moving average of the trainable weights; the model ends with the average.

    After every step t = 1, 2, ...: a_t = d_t a_{t-1} + (1 - d_t) w_t, with a_0 = w_0
    (the initial weights) and the warm-up d_t = min(decay, (1 + t) / (10 + t)) of
    `tf.train.ExponentialMovingAverage(num_updates=t)`, so early, noisy iterates
    fade fast. Under DP-SGD the iterates w_t are already private, and the average
    is post-processing: it costs no privacy (De et al. 2022 "Unlocking High-Accuracy
    Differentially Private Image Classification through Scale", sec. 3).
    `on_train_end` loads the averages into the model (the raw weights stay in
    `raw_weights`); validation during `fit` sees the raw weights. The average lives
    in memory: a run resumed from a checkpoint restarts it from the restored weights.
    """

    def __init__(self, decay: float = 0.999):
        super().__init__()
        self.decay = checks.number('decay', decay, minimum=0, maximum=1, strict_minimum=True)
        self.averages: List[tf.Variable] = []
        self.raw_weights: List[np.ndarray] = []
        self._step: Optional[tf.Variable] = None

    def on_train_begin(self, logs: Optional[Dict[str, float]] = None) -> None:
        if not self.averages:
            self.averages = [tf.Variable(w, trainable=False) for w in self.model.trainable_weights]
            self._step = tf.Variable(0.0, trainable=False)

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, float]] = None) -> None:
        self._update()

    @tf.function
    def _update(self) -> None:
        self._step.assign_add(1.0)
        decay = tf.minimum(self.decay, (1.0 + self._step) / (10.0 + self._step))
        for average, weight in zip(self.averages, self.model.trainable_weights):
            average.assign(decay * average + (1.0 - decay) * weight)

    def on_train_end(self, logs: Optional[Dict[str, float]] = None) -> None:
        self.raw_weights = [w.numpy() for w in self.model.trainable_weights]
        for average, weight in zip(self.averages, self.model.trainable_weights):
            weight.assign(average)
