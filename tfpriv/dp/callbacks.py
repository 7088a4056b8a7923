"""Keras callback that records the privacy spent after every epoch."""

from __future__ import annotations

from typing import Dict, Optional

import tensorflow as tf

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

