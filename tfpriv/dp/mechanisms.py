"""Laplace and Gaussian mechanisms for numeric queries, and dp_accounting composition.

Laplace mechanism (Dwork, McSherry, Nissim, Smith 2006; Dwork & Roth 2014,
Thm. 3.6): for a query with L1 sensitivity Δ1, releasing f(D) + Lap(Δ1/ε) per
coordinate is ε-DP. Its DpEvent is `LaplaceDpEvent(noise_multiplier=1/ε)`
(noise scale in units of the sensitivity).

Gaussian mechanism (Dwork & Roth 2014, App. A; Mironov 2017, Prop. 7): for L2
sensitivity Δ2, releasing f(D) + N(0, (σΔ2)^2) satisfies (α, α/(2σ^2))-RDP for
every α; its DpEvent is `GaussianDpEvent(noise_multiplier=σ)`.

Every mechanism (these two and `RandomizedResponse`) returns its DpEvent, and
`epsilon_of` composes a list of events with dp_accounting's RDP or PLD
accountant; no composition is done by hand here. Events and accountants are
built by `tfpriv.dp.accounting` (its `make_accountant` also knows
`RandomizedResponseDpEvent`, which dp_accounting 0.4.3 lacks).
Noise comes from `tfpriv.rng.RandomSource`: the OS CSPRNG unless a seed is given.
"""

from __future__ import annotations

from typing import Optional

import dp_accounting
import numpy as np

from tfpriv.dp.accounting import (Accountant, epsilon_of, gaussian_event, laplace_event,
                                  make_accountant)
from tfpriv.rng import RandomSource

__all__ = ['Accountant', 'GaussianMechanism', 'LaplaceMechanism', 'epsilon_of', 'make_accountant']


class _AdditiveNoise:
    """f(D) + noise, the noise scaled by the query's sensitivity."""

    def __init__(self, sensitivity: float, rng: Optional[RandomSource]):
        if not (np.isfinite(sensitivity) and sensitivity > 0):
            raise ValueError(f'sensitivity must be a positive finite number, got {sensitivity}')
        self.sensitivity = float(sensitivity)
        self._rng = rng if rng is not None else RandomSource()

    @property
    def scale(self) -> float:
        raise NotImplementedError

    def _noise(self, shape) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, value) -> np.ndarray:
        """The noisy answer for the true answer `value` (scalar or array)."""
        value = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(value)):
            raise ValueError('value must be finite')
        return value + self._noise(value.shape)


class LaplaceMechanism(_AdditiveNoise):
    """ε-DP release of a query with L1 sensitivity Δ1: f(D) + Lap(Δ1/ε) per coordinate."""

    def __init__(self, sensitivity: float, epsilon: float, rng: Optional[RandomSource] = None):
        super().__init__(sensitivity, rng)
        if not (np.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f'epsilon must be a positive finite number, got {epsilon}')
        self.epsilon = float(epsilon)

    @property
    def scale(self) -> float:
        """The Laplace scale b = Δ1/ε (variance 2b^2)."""
        return self.sensitivity / self.epsilon

    def _noise(self, shape) -> np.ndarray:
        return self._rng.laplace(shape, self.scale)

    def dp_event(self) -> dp_accounting.LaplaceDpEvent:
        return laplace_event(1.0 / self.epsilon)


class GaussianMechanism(_AdditiveNoise):
    """Release of a query with L2 sensitivity Δ2: f(D) + N(0, (σΔ2)^2) per coordinate."""

    def __init__(self, sensitivity: float, noise_multiplier: float, rng: Optional[RandomSource] = None):
        super().__init__(sensitivity, rng)
        if not (np.isfinite(noise_multiplier) and noise_multiplier > 0):
            raise ValueError(f'noise_multiplier must be a positive finite number, got {noise_multiplier}')
        self.noise_multiplier = float(noise_multiplier)

    @property
    def scale(self) -> float:
        """The noise standard deviation σΔ2."""
        return self.noise_multiplier * self.sensitivity

    def _noise(self, shape) -> np.ndarray:
        return self._rng.normal(shape, self.scale)

    def dp_event(self) -> dp_accounting.GaussianDpEvent:
        return gaussian_event(self.noise_multiplier)
