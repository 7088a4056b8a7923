"""Privacy accounting for DP-SGD with `dp_accounting`.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016,
Algorithm 1) samples each example with probability q = batch_size / n, clips
per-example gradients to L2 norm C and adds N(0, (σC)^2) noise to their sum.
One step is the Poisson-subsampled Gaussian mechanism; T steps are its T-fold
self-composition:

    SelfComposed(PoissonSampled(q, Gaussian(σ)), T)

ε(δ) of that event comes from the Rényi-DP accountant (Mironov, "Rényi
Differential Privacy", CSF 2017; Mironov, Talwar, Zhang, "Rényi Differential
Privacy of the Sampled Gaussian Mechanism", 2019) or from the privacy-loss
distribution accountant (Koskela et al. 2020; Doroshenko et al., "Connect the
Dots", PETS 2022), which is tighter. Nothing here is a hand-rolled formula.
"""

from __future__ import annotations

from typing import Literal

import dp_accounting
from dp_accounting import pld, rdp

Accountant = Literal['rdp', 'pld']


def dpsgd_event(noise_multiplier: float, sampling_probability: float, steps: int) -> dp_accounting.DpEvent:
    """The DpEvent of `steps` DP-SGD steps with Poisson sampling rate q and noise σ."""
    if noise_multiplier < 0:
        raise ValueError(f'noise_multiplier must be >= 0, got {noise_multiplier}')
    if not 0 < sampling_probability <= 1:
        raise ValueError(f'sampling_probability must be in (0, 1], got {sampling_probability}')
    if steps < 0:
        raise ValueError(f'steps must be >= 0, got {steps}')
    step = dp_accounting.PoissonSampledDpEvent(sampling_probability,
                                               dp_accounting.GaussianDpEvent(noise_multiplier))
    return dp_accounting.SelfComposedDpEvent(step, steps)


def epsilon(event: dp_accounting.DpEvent, delta: float, accountant: Accountant = 'rdp') -> float:
    """ε(δ) of `event` under the chosen accountant (∞ when there is no noise)."""
    if not 0 < delta < 1:
        raise ValueError(f'delta must be in (0, 1), got {delta}')
    if accountant == 'rdp':
        acc = rdp.RdpAccountant()
    elif accountant == 'pld':
        acc = pld.PLDAccountant()
    else:
        raise ValueError(f"accountant must be 'rdp' or 'pld', got {accountant!r}")
    if not acc.supports(event):
        raise ValueError(f'the {accountant} accountant cannot account for {event}')
    return float(acc.compose(event).get_epsilon(delta))


def dpsgd_epsilon(noise_multiplier: float, sampling_probability: float, steps: int, delta: float,
                  accountant: Accountant = 'rdp') -> float:
    """ε of DP-SGD after `steps` steps (0 steps spend nothing)."""
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return float('inf')
    return epsilon(dpsgd_event(noise_multiplier, sampling_probability, steps), delta, accountant)


def calibrate_noise_multiplier(target_epsilon: float, sampling_probability: float, steps: int,
                               delta: float) -> float:
    """The smallest σ (to 1e-3 relative) whose RDP ε after `steps` steps is ≤ target.

    Uses `dp_accounting.calibrate_dp_mechanism` (bracketing then bisection).
    """
    if target_epsilon <= 0:
        raise ValueError(f'target_epsilon must be > 0, got {target_epsilon}')
    return float(dp_accounting.calibrate_dp_mechanism(
        rdp.RdpAccountant,
        lambda sigma: dpsgd_event(sigma, sampling_probability, steps),
        target_epsilon, delta,
        bracket_interval=dp_accounting.ExplicitBracketInterval(1e-3, 1e3),
        tol=1e-3))
