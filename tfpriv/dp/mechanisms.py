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
accountant; no composition is done by hand here. `make_accountant` extends the
two accountants with `RandomizedResponseDpEvent`, which dp_accounting 0.4.3
lacks (see `tfpriv.dp.randomized_response`); the extension uses the
accountants' internal state (`_rdp`, `_orders`, `_pld`) of that pinned version.
Noise comes from `tfpriv.rng.RandomSource`: the OS CSPRNG unless a seed is given.
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import dp_accounting
import numpy as np
from dp_accounting import pld, rdp
from dp_accounting.pld import privacy_loss_distribution

from tfpriv.dp.randomized_response import RandomizedResponseDpEvent, rdp_of_randomized_response
from tfpriv.rng import RandomSource

Accountant = Literal['rdp', 'pld']


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
        return dp_accounting.LaplaceDpEvent(noise_multiplier=1.0 / self.epsilon)


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
        return dp_accounting.GaussianDpEvent(noise_multiplier=self.noise_multiplier)


class _RdpAccountant(rdp.RdpAccountant):
    """dp_accounting's RDP accountant, plus `RandomizedResponseDpEvent` (exact RDP curve)."""

    def _maybe_compose(self, event, count, do_compose):
        if isinstance(event, RandomizedResponseDpEvent):
            if do_compose:
                self._rdp += count * rdp_of_randomized_response(event, self._orders)
            return None
        return super()._maybe_compose(event, count, do_compose)


class _PldAccountant(pld.PLDAccountant):
    """dp_accounting's PLD accountant, plus `RandomizedResponseDpEvent` (its own RR PLD)."""

    def _maybe_compose(self, event, count, do_compose):
        if isinstance(event, RandomizedResponseDpEvent):
            if do_compose:
                rr = privacy_loss_distribution.from_randomized_response(
                    event.noise_parameter, event.num_buckets,
                    value_discretization_interval=self._value_discretization_interval)
                self._pld = self._pld.compose(rr.self_compose(count))
            return None
        return super()._maybe_compose(event, count, do_compose)


def make_accountant(accountant: Accountant = 'rdp',
                    orders: Optional[Sequence[float]] = None) -> dp_accounting.PrivacyAccountant:
    """A fresh dp_accounting RDP or PLD accountant that also knows randomized response."""
    if accountant == 'rdp':
        return _RdpAccountant(orders) if orders is not None else _RdpAccountant()
    if accountant == 'pld':
        return _PldAccountant()
    raise ValueError(f"accountant must be 'rdp' or 'pld', got {accountant!r}")


def epsilon_of(events: Sequence[dp_accounting.DpEvent], delta: float,
               accountant: Accountant = 'rdp') -> float:
    """ε(δ) of the composition of `events`, computed by dp_accounting."""
    if not 0.0 <= delta < 1.0:
        raise ValueError(f'delta must be in [0, 1), got {delta}')
    acc = make_accountant(accountant)
    acc.compose(dp_accounting.ComposedDpEvent(list(events)))
    return float(acc.get_epsilon(delta))
