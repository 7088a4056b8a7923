"""Privacy accounting with `dp_accounting`: the only module that builds accountants and DpEvents.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016,
Algorithm 1) clips per-example gradients to L2 norm C and adds N(0, (σC)^2)
noise to their sum. How a step's examples are chosen decides the accounting:

- `poisson` (the default): each example joins each step independently with
  probability q. One step is the Poisson-subsampled Gaussian mechanism under
  add/remove-one adjacency (sensitivity C); T steps are
  `SelfComposed(PoissonSampled(q, Gaussian(σ)), T)` (Mironov, Talwar, Zhang,
  "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019).
- `shuffle`: each step uses a uniformly drawn fixed-size batch of B of the n
  examples. Fixed-size sampling is analysed with n public, i.e. under
  *replace-one* adjacency (Wang, Balle, Kasiviswanathan, "Subsampled Rényi
  Differential Privacy and Analytical Moments Accountant", AISTATS 2019,
  Thm. 27): dp_accounting's `SampledWithoutReplacementDpEvent` in an
  `RdpAccountant(REPLACE_ONE)`. Replacing one example moves the clipped sum
  by up to 2C, so the Gaussian's multiplier relative to that sensitivity is
  σC / 2C = σ/2. We chose it over the epoch-level bound (one Gaussian of
  sensitivity 2C per epoch, no amplification) because it is the tightest
  bound dp_accounting proves for fixed-size batches; it models each step's
  batch as drawn afresh, which `PrivateTraining.dataset(sampling='shuffle')`
  does exactly. (Keras's epoch-wise shuffling correlates the batches of one
  epoch; for it this is the usual heuristic, not a proof: Chua et al. 2024.)

DP-FedAvg samples m of K clients the same fixed-size way (`fedavg_event`); PATE
and the classic mechanisms compose Laplace, Gaussian and randomized-response
events. ε(δ) comes from the Rényi-DP accountant (Mironov, CSF 2017) or the
privacy-loss-distribution accountant (Doroshenko et al., "Connect the Dots",
PETS 2022). Nothing here is a hand-rolled formula.
"""

from __future__ import annotations

import functools
import math
from typing import List, Literal, Optional, Sequence

import dp_accounting
import numpy as np
from dp_accounting import pld, rdp
from dp_accounting.pld import privacy_loss_distribution

from tfpriv import checks
from tfpriv.dp.randomized_response import RandomizedResponseDpEvent, rdp_of_randomized_response

Accountant = Literal['rdp', 'pld']
Sampling = Literal['poisson', 'shuffle']
SAMPLINGS = ('poisson', 'shuffle')
CLIENT_SAMPLINGS = ('fixed', 'poisson')
ACCOUNTANTS = ('rdp', 'pld')
_RELATIONS = {'poisson': dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
              'shuffle': dp_accounting.NeighboringRelation.REPLACE_ONE}


def default_delta(num_examples: int) -> float:
    """δ = 10^-max(d, 2) for an n of d decimal digits: strictly below 1/n.

    With 10^(d-1) <= n < 10^d, 10^-d < 1/n (1e-5 for MNIST's 60,000, 1e-4 for
    1,000); it is never above 1e-2, so tiny n (1 example, 6 clients) still get
    a small δ. Integer arithmetic: no floating-point log10 can round a power of
    ten the wrong way.
    """
    num_examples = checks.integer('num_examples', num_examples, minimum=1)
    return 10.0 ** -max(len(str(num_examples)), 2)


class _RdpAccountant(rdp.RdpAccountant):
    """dp_accounting's RDP accountant, plus `RandomizedResponseDpEvent` (exact RDP curve)."""

    def _maybe_compose(self, event, count, do_compose):
        if isinstance(event, RandomizedResponseDpEvent):
            if do_compose:
                self._rdp += count * rdp_of_randomized_response(event, self._orders)
            return None
        return super()._maybe_compose(event, count, do_compose)

    def curve_of(self, event: dp_accounting.DpEvent) -> np.ndarray:
        """The RDP curve of `event` alone at this accountant's orders and adjacency."""
        alone = _RdpAccountant(self._orders, self.neighboring_relation)
        alone.compose(event)
        return alone._rdp  # pylint: disable=protected-access

    def add_curve(self, curve: np.ndarray) -> None:
        """Composes a mechanism of RDP `curve` (from `curve_of`): RDP adds under composition
        (Mironov 2017, Prop. 1), which is what `compose` does with the curve it computes."""
        self._rdp += curve


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


def make_accountant(accountant: Accountant = 'rdp', orders: Optional[Sequence[float]] = None,
                    sampling: Sampling = 'poisson') -> dp_accounting.PrivacyAccountant:
    """A fresh RDP or PLD accountant that also knows randomized response.

    `sampling='shuffle'` gives the replace-one relation that fixed-size
    sampling needs (RDP only: dp_accounting's PLD has no such event).
    """
    checks.choice('accountant', accountant, ACCOUNTANTS)
    relation = _RELATIONS[checks.choice('sampling', sampling, SAMPLINGS)]
    if accountant == 'pld':
        if sampling == 'shuffle':
            raise ValueError("accountant='pld' cannot account for sampling='shuffle' "
                             "(fixed-size batches); use accountant='rdp'")
        return _PldAccountant()
    extra = {} if orders is None else {'orders': orders}
    return _RdpAccountant(neighboring_relation=relation, **extra)


def gaussian_event(noise_multiplier: float) -> dp_accounting.DpEvent:
    """Gaussian noise of σ times the sensitivity."""
    return dp_accounting.GaussianDpEvent(noise_multiplier)


def laplace_event(noise_multiplier: float) -> dp_accounting.DpEvent:
    """Laplace noise of scale `noise_multiplier` times the L1 sensitivity."""
    return dp_accounting.LaplaceDpEvent(noise_multiplier)


def repeated(event: dp_accounting.DpEvent, count: int) -> dp_accounting.DpEvent:
    """`event` run `count` times (self-composition)."""
    return dp_accounting.SelfComposedDpEvent(event, checks.integer('count', count, minimum=0))


def fixed_size_event(population: int, sample_size: int,
                     noise_multiplier: float) -> dp_accounting.DpEvent:
    """Gaussian sum over a uniform fixed-size sample, replace-one (sensitivity 2: σ/2)."""
    population = checks.integer('population', population, minimum=1)
    checks.integer('sample_size', sample_size, minimum=1, maximum=population)
    return dp_accounting.SampledWithoutReplacementDpEvent(
        population, sample_size, gaussian_event(noise_multiplier / 2.0))


def fedavg_event(num_clients: int, clients_per_round: int,
                 noise_multiplier: float) -> dp_accounting.DpEvent:
    """One DP-FedAvg round: m of K clients without replacement, user-level replace-one."""
    if not 1 <= clients_per_round <= num_clients:
        raise ValueError(f'clients_per_round must be in [1, {num_clients}], got {clients_per_round}')
    return fixed_size_event(num_clients, clients_per_round, noise_multiplier)


def dpsgd_event(noise_multiplier: float, sampling_probability: float, steps: int,
                sampling: Sampling = 'poisson',
                num_examples: Optional[int] = None) -> dp_accounting.DpEvent:
    """The DpEvent of `steps` DP-SGD steps (see the module docstring for the two samplings).

    For `shuffle`, `num_examples` n is needed and the batch is round(q n).
    """
    checks.number('noise_multiplier', noise_multiplier, minimum=0)
    checks.number('sampling_probability', sampling_probability, minimum=0, maximum=1,
                  strict_minimum=True)
    checks.integer('steps', steps, minimum=0)
    if checks.choice('sampling', sampling, SAMPLINGS) == 'poisson':
        step = dp_accounting.PoissonSampledDpEvent(sampling_probability,
                                                   gaussian_event(noise_multiplier))
    else:
        if num_examples is None:
            raise ValueError("sampling='shuffle' needs num_examples")
        batch_size = max(1, round(sampling_probability * num_examples))
        step = fixed_size_event(num_examples, batch_size, noise_multiplier)
    return repeated(step, steps)


def epsilon(event: dp_accounting.DpEvent, delta: float, accountant: Accountant = 'rdp',
            sampling: Sampling = 'poisson') -> float:
    """ε(δ) of `event` under the chosen accountant and the sampling's adjacency."""
    if not 0 < delta < 1:
        raise ValueError(f'delta must be in (0, 1), got {delta}')
    acc = make_accountant(accountant, sampling=sampling)
    if not acc.supports(event):
        raise ValueError(f'the {accountant} accountant cannot account for {event}')
    return float(acc.compose(event).get_epsilon(delta))


def epsilon_of(events: Sequence[dp_accounting.DpEvent], delta: float,
               accountant: Accountant = 'rdp') -> float:
    """ε(δ) of the composition of `events` (add/remove adjacency; δ = 0 allowed for PLD)."""
    if not 0.0 <= delta < 1.0:
        raise ValueError(f'delta must be in [0, 1), got {delta}')
    acc = make_accountant(accountant)
    acc.compose(dp_accounting.ComposedDpEvent(list(events)))
    return float(acc.get_epsilon(delta))


@functools.lru_cache(maxsize=256)
def dpsgd_epsilon(noise_multiplier: float, sampling_probability: float, steps: int, delta: float,
                  accountant: Accountant = 'rdp', sampling: Sampling = 'poisson',
                  num_examples: Optional[int] = None) -> float:
    """ε of DP-SGD after `steps` steps (0 steps spend nothing; σ = 0 is ∞).

    Memoized: a run asks for the same ε at its last epoch's end and in its report, and a
    PLD ε takes seconds.
    """
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return float('inf')
    event = dpsgd_event(noise_multiplier, sampling_probability, steps, sampling, num_examples)
    return epsilon(event, delta, accountant, sampling)


def poisson_fedavg_event(client_fraction: float, noise_multiplier: float) -> dp_accounting.DpEvent:
    """One DP-FedAvg round with Poisson client sampling: each client joins with probability C.

    Add/remove-one adjacency (user level), sensitivity S of the noised sum:
    `PoissonSampled(C, Gaussian(σ))` (Mironov, Talwar, Zhang 2019), the accounting of
    McMahan et al. 2018's DP-FedAvg, which divides the sum by the expected count C K.
    """
    checks.number('client_fraction', client_fraction, minimum=0, maximum=1, strict_minimum=True)
    return dp_accounting.PoissonSampledDpEvent(client_fraction, gaussian_event(noise_multiplier))


def fedavg_epsilons(num_clients: int, clients_per_round: int, noise_multiplier: float,
                    rounds: int, delta: float, client_sampling: str = 'fixed',
                    client_fraction: Optional[float] = None) -> List[float]:
    """ε(δ) of DP-FedAvg after each of rounds 1..`rounds` (RDP).

    `client_sampling='fixed'`: m of K without replacement, replace-one (`fedavg_event`);
    `'poisson'`: each client with probability `client_fraction`, add/remove-one
    (`poisson_fedavg_event`).
    """
    checks.choice('client_sampling', client_sampling, CLIENT_SAMPLINGS)
    if client_sampling == 'poisson':
        if client_fraction is None:
            raise ValueError("client_sampling='poisson' needs client_fraction")
        event = poisson_fedavg_event(client_fraction, noise_multiplier)
    else:
        event = fedavg_event(num_clients, clients_per_round, noise_multiplier)
    return _running_epsilons([event] * rounds, delta,
                             'poisson' if client_sampling == 'poisson' else 'shuffle')


def _running_epsilons(events: Sequence[dp_accounting.DpEvent], delta: float,
                      sampling: Sampling) -> List[float]:
    """ε(δ) after each prefix of `events` (one RDP accountant; from a σ = 0 round on: ∞).

    Each distinct event's RDP curve is computed once (`curve_of`) and added per round, so
    R rounds of one event cost one curve (the sampled-without-replacement curve takes
    about 0.5 s) and R additions: the same sums, in the same order, as R `compose` calls.
    """
    if not 0 < delta < 1:
        raise ValueError(f'delta must be in (0, 1), got {delta}')
    acc, out = make_accountant('rdp', sampling=sampling), []
    curves = {}
    for event in events:
        if out and out[-1] == math.inf or _noise_of(event) == 0:
            out.append(math.inf)
            continue
        if event not in curves:
            curves[event] = acc.curve_of(event)
        acc.add_curve(curves[event])
        out.append(float(acc.get_epsilon(delta)))
    return out


def _noise_of(event: dp_accounting.DpEvent) -> float:
    """The Gaussian noise multiplier inside a (sampled) round event."""
    return _noise_of(event.event) if hasattr(event, 'event') else event.noise_multiplier


def ddgauss_tau(local_stddev: float, contributors: int) -> float:
    """τ = 10 Σ_{j=1}^{k-1} exp(-2π^2 σ_l^2 j/(j+1)) (Kairouz, Liu, Steinke 2021, Thm. 1).

    The gap between a sum of k discrete Gaussians N_Z(0, σ_l^2) and a Gaussian in their
    Prop. 14: its RDP at order α is at most α Δ^2/(2 k σ_l^2) + τ d.
    """
    checks.integer('contributors', contributors, minimum=1)
    return 10.0 * sum(math.exp(-2.0 * math.pi ** 2 * local_stddev ** 2 * j / (j + 1))
                      for j in range(1, contributors))


def ddgauss_noise_multiplier(local_stddev: float, l2_sensitivity: float, contributors: int) -> float:
    """σ_eff = sqrt(k) σ_l / Δ: the Gaussian noise multiplier of k discrete noise shares."""
    checks.number('l2_sensitivity', l2_sensitivity, minimum=0, strict_minimum=True)
    checks.integer('contributors', contributors, minimum=1)
    return math.sqrt(contributors) * local_stddev / l2_sensitivity


def ddgauss_fedavg_epsilons(num_clients: int, contributors: Sequence[int],
                            noise_multipliers: Sequence[float], delta: float) -> List[float]:
    """ε(δ) after each round of distributed-DP FedAvg with fixed-size client sampling.

    Round r's sum holds the noise shares of its `contributors[r]` = k_r clients (fewer than
    sampled if some dropped, independently of the data: a uniform k_r-subset), so it is
    `SampledWithoutReplacement(K, k_r, Gaussian(σ_r / 2))` with σ_r = `noise_multipliers[r]`,
    the σ_eff of those k_r shares (replace-one, as `fedavg_event`).
    """
    if len(contributors) != len(noise_multipliers):
        raise ValueError(f'contributors ({len(contributors)}) and noise_multipliers '
                         f'({len(noise_multipliers)}) must have one entry per round')
    events = [fedavg_event(num_clients, k, sigma) for k, sigma in zip(contributors, noise_multipliers)]
    return _running_epsilons(events, delta, 'shuffle')


def calibrate_noise_multiplier(target_epsilon: float, sampling_probability: float, steps: int,
                               delta: float, sampling: Sampling = 'poisson',
                               num_examples: Optional[int] = None) -> float:
    """The smallest σ (to 1e-3 relative) whose RDP ε after `steps` steps is ≤ target.

    Uses `dp_accounting.calibrate_dp_mechanism` (bracketing then bisection).
    """
    checks.number('target_epsilon', target_epsilon, minimum=0, strict_minimum=True)
    return float(dp_accounting.calibrate_dp_mechanism(
        lambda: make_accountant('rdp', sampling=sampling),
        lambda sigma: dpsgd_event(sigma, sampling_probability, steps, sampling, num_examples),
        target_epsilon, delta,
        bracket_interval=dp_accounting.ExplicitBracketInterval(1e-3, 1e3),
        tol=1e-3))
