"""Randomized response: the two-coin survey (Warner 1965; Dwork & Roth 2014, Sec. 3.2).

Each respondent flips a coin. Heads (probability p, 1/2 for a fair coin): they
answer the sensitive question truthfully. Tails: they flip a second fair coin
and answer "yes" on heads, "no" on tails. Hence

    Pr[yes | truth yes] = p + (1 - p)/2,   Pr[yes | truth no] = (1 - p)/2,

and the answer is ε-DP in the respondent's truth with
ε = ln((1 + p) / (1 - p)); a fair first coin gives ε = ln 3.

If ρ is the fraction of "yes" among n noisy answers and π the true fraction,
E[ρ] = pπ + (1 - p)/2, so π̂ = (ρ - (1 - p)/2) / p (= 2ρ - 1/2 for p = 1/2) is
unbiased, with Var[π̂] = r(1 - r) / (n p^2), r = pπ + (1 - p)/2.

Accounting. dp_accounting 0.4.3 has no randomized-response DpEvent, and no
existing event is a sound stand-in under the PLD accountant: a Laplace
mechanism with the same ε has a strictly smaller privacy-loss distribution
(randomized response is the worst ε-DP mechanism; Kairouz, Oh, Viswanath,
ICML 2015). `RandomizedResponseDpEvent` therefore carries the mechanism's
parameters in dp_accounting's own terms (`noise_parameter` = probability of a
uniformly random answer = 1 - p, `num_buckets` = 2), and
`tfpriv.dp.accounting.make_accountant` teaches dp_accounting's RDP and PLD
accountants to compose it: the PLD accountant uses dp_accounting's
`from_randomized_response`, the RDP accountant the exact Rényi divergence
between the two output distributions (`rdp_of_randomized_response`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import attr
import dp_accounting
import numpy as np

from tfpriv.rng import RandomSource


@attr.s(frozen=True, slots=True, auto_attribs=True)
class RandomizedResponseDpEvent(dp_accounting.DpEvent):
    """k-ary randomized response: the input w.p. 1 - noise_parameter, else uniform over k buckets."""

    noise_parameter: float
    num_buckets: int = 2


def rdp_of_randomized_response(event: RandomizedResponseDpEvent, orders: Sequence[float]) -> np.ndarray:
    """Exact Rényi divergence D_α(R(x) || R(x')) for each order α > 1.

    With a = 1 - s + s/k (output = input), b = s/k (any other given bucket):
    D_α = log(a^α b^(1-α) + b^α a^(1-α) + (k - 2) b) / (α - 1)  (Mironov 2017, Def. 3).
    """
    s, k = event.noise_parameter, event.num_buckets
    a, b = 1.0 - s + s / k, s / k
    alphas = np.asarray(orders, dtype=np.float64)
    if b == 0:
        return np.full(alphas.shape, np.inf)
    log_terms = np.stack([alphas * np.log(a) + (1 - alphas) * np.log(b),
                          alphas * np.log(b) + (1 - alphas) * np.log(a),
                          np.full(alphas.shape, np.log((k - 2) * b) if k > 2 else -np.inf)])
    return np.logaddexp.reduce(log_terms, axis=0) / (alphas - 1)


class RandomizedResponse:
    """The two-coin survey with first-coin truth probability `truth_probability` (1/2: ε = ln 3)."""

    def __init__(self, truth_probability: float = 0.5, rng: Optional[RandomSource] = None):
        if not 0.0 < truth_probability < 1.0:
            raise ValueError(f'truth_probability must be in (0, 1), got {truth_probability}')
        self.truth_probability = float(truth_probability)
        self._rng = rng if rng is not None else RandomSource()

    @property
    def epsilon(self) -> float:
        """ε = ln(Pr[yes | yes] / Pr[yes | no]) = ln((1 + p) / (1 - p))."""
        p = self.truth_probability
        return float(np.log((1 + p) / (1 - p)))

    def __call__(self, answers) -> np.ndarray:
        """Noisy answers (bool array) for the true answers `answers` (bool array)."""
        truth = np.asarray(answers)
        if truth.dtype != np.bool_:
            raise TypeError(f'answers must be a boolean array, got dtype {truth.dtype}')
        honest = self._rng.uniform01(truth.shape) < self.truth_probability
        second_coin = self._rng.uniform01(truth.shape) < 0.5
        return np.where(honest, truth, second_coin)

    def _yes_rate(self, noisy) -> tuple:
        noisy = np.asarray(noisy)
        if noisy.dtype != np.bool_ or noisy.size == 0:
            raise ValueError('noisy answers must be a non-empty boolean array')
        return float(noisy.mean()), noisy.size

    def estimate(self, noisy) -> float:
        """Unbiased estimate π̂ = (ρ - (1 - p)/2) / p of the true "yes" fraction."""
        rho, _ = self._yes_rate(noisy)
        p = self.truth_probability
        return (rho - (1 - p) / 2) / p

    def standard_error(self, true_fraction: float, n: int) -> float:
        """Standard deviation of `estimate` over n respondents: sqrt(r(1 - r) / n) / p."""
        p = self.truth_probability
        r = p * true_fraction + (1 - p) / 2
        return float(np.sqrt(r * (1 - r) / n) / p)

    def dp_event(self) -> RandomizedResponseDpEvent:
        """One respondent's answer; compose with `tfpriv.dp.accounting.make_accountant`."""
        return RandomizedResponseDpEvent(noise_parameter=1.0 - self.truth_probability, num_buckets=2)
