"""The noise scale of each PATE aggregator, measured from its answers on fixed histograms.

The aggregators release only labels, so the noise is read off the frequency with
which a fixed vote histogram (n_0, n_1) = (0, d) is answered with the minority
class 0: that is P(Z_0 - Z_1 > d) for the two i.i.d. noise draws Z_j, a closed form
of the scale. References are the mechanisms as the papers define them, integrated
here by hand (never the code under test):

- LNMax (Papernot et al. 2017, Eq. 1), Z ~ Lap(b), b = 1/γ: Z_0 - Z_1 has density
  (1 + |x|/b) e^{-|x|/b} / (4b), so P(Z_0 - Z_1 > d) = e^{-d/b} (1 + d/(2b)) / 2.
- GNMax (Papernot et al. 2018, Sec. 4.1), Z ~ N(0, σ²): P = Φ̄(d / (σ√2)).
- Confident-GNMax (2018, Alg. 1): answered iff max_j n_j + N(0, σ1²) ≥ T, so
  P(answered) = Φ̄((T - max_j n_j) / σ1); the answers are GNMax(σ2).

Tolerance: each frequency of N Bernoulli(p) answers is checked two-sided within
5 binomial standard errors sqrt(p (1 - p) / N) (false-failure rate 6e-7 per check;
the seeds are fixed). With N = 20,000 that is about ±0.016, while halving or
doubling the scale moves every probability checked here by more than 0.09.
"""

import math

import numpy as np
import pytest
from scipy import stats

from tfpriv.dp.pate.aggregation import UNANSWERED, ConfidentGNMax, GNMax, LNMax
from tfpriv.rng import RandomSource

N = 20_000
Z = 5.0


def _histograms(counts) -> np.ndarray:
    return np.tile(np.asarray(counts, dtype=np.int64), (N, 1))


def _check_frequency(hits: np.ndarray, p: float) -> None:
    frequency = float(np.mean(hits))
    tolerance = Z * math.sqrt(p * (1 - p) / hits.size)
    assert abs(frequency - p) <= tolerance, (frequency, p, tolerance)


def _laplace_flip(d: float, b: float) -> float:
    return math.exp(-d / b) * (1 + d / (2 * b)) / 2


def _gaussian_flip(d: float, sigma: float) -> float:
    return float(stats.norm.sf(d / (sigma * math.sqrt(2))))


@pytest.mark.parametrize('gamma,d', [(0.5, 2), (0.1, 10)])
def test_lnmax_laplace_scale_is_one_over_gamma(gamma, d):
    """P(minority wins) = 0.276 at d = b; b/2 gives 0.135, 2b gives 0.379."""
    labels = LNMax(gamma, RandomSource(seed=1))(_histograms([0, d]))
    _check_frequency(labels == 0, _laplace_flip(d, 1 / gamma))


@pytest.mark.parametrize('sigma', [5.0, 40.0])
def test_gnmax_gaussian_sigma(sigma):
    """d = σ: P = Φ̄(1/√2) = 0.240; σ/2 gives 0.079, 2σ gives 0.362."""
    labels = GNMax(sigma, RandomSource(seed=2))(_histograms([0, sigma]))
    _check_frequency(labels == 0, _gaussian_flip(sigma, sigma))


def test_confident_gnmax_threshold_sigma1_and_answer_sigma2():
    """max n_j = T - σ1: P(answered) = Φ̄(1) = 0.159 (σ1/2: 0.023, 2σ1: 0.309); the
    answered queries are GNMax(σ2) answers."""
    sigma1, sigma2, threshold = 30.0, 10.0, 200.0
    aggregator = ConfidentGNMax(threshold, sigma1, sigma2, RandomSource(seed=3))
    labels = aggregator(_histograms([0, threshold - sigma1]))
    _check_frequency(labels != UNANSWERED, float(stats.norm.sf(1.0)))
    # Answers: a histogram that always passes (max far above T), minority d = σ2 behind.
    labels = aggregator(_histograms([threshold + 20 * sigma1 - sigma2, threshold + 20 * sigma1]))
    assert np.all(labels != UNANSWERED)
    _check_frequency(labels == 0, _gaussian_flip(sigma2, sigma2))
