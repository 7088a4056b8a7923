"""The Dirichlet label-skew sampler against the exact moments of Dir(α 1_K) (NumPy only).

Reference (not the code under test): the Dirichlet mixed raw moments
    E[prod_k p_k^{m_k}] = Γ(α0) / Γ(α0 + Σ m_k) · prod_k Γ(α + m_k) / Γ(α),  α0 = K α,
so E[p_k] = α/α0 and Var[p_k] = α (α0 - α) / (α0² (α0 + 1)). The mean 1/K holds for any
symmetric α, so the statistic checked is the concentration S = Σ_k p_k² of one draw:
    E[S] = K E[p_1²],   Var[S] = K E[p_1⁴] + K (K - 1) E[p_1² p_2²] - E[S]².
Tolerance: the mean of M independent S is checked two-sided within 5 standard errors
sqrt(Var[S] / M) (false-failure rate 6e-7; seeds fixed). For α = 1, K = 10, one draw's
S shifts by 0.14 sd when α is 9 % off, so M = 6,000 draws move the mean 11 standard
errors away: a sampler with the wrong shape fails.
"""

import math

import numpy as np
from scipy.special import gammaln

from tfpriv.federated import partition
from tfpriv.rng import RandomSource

Z = 5.0
ALPHA, K = 1.0, 10


def _raw_moment(alpha: float, k: int, powers) -> float:
    """E[prod p_i^{m_i}] of Dir(alpha 1_k) over the listed coordinates."""
    alpha0 = k * alpha
    log = gammaln(alpha0) - gammaln(alpha0 + sum(powers))
    log += sum(gammaln(alpha + m) - gammaln(alpha) for m in powers)
    return math.exp(log)


def _concentration_moments(alpha: float, k: int):
    mean = k * _raw_moment(alpha, k, [2])
    second = k * _raw_moment(alpha, k, [4]) + k * (k - 1) * _raw_moment(alpha, k, [2, 2])
    return mean, second - mean**2


def test_dirichlet_draws_match_the_exact_mean_variance_and_concentration():
    draws = 6000
    rng = RandomSource(seed=31)
    p = np.stack([partition.dirichlet(rng, ALPHA, K) for _ in range(draws)])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    alpha0 = K * ALPHA
    # Per coordinate: mean α/α0 within 5 se; se of the mean sqrt(Var[p_k] / M).
    variance = ALPHA * (alpha0 - ALPHA) / (alpha0**2 * (alpha0 + 1))
    assert np.all(np.abs(p.mean(axis=0) - ALPHA / alpha0) <= Z * math.sqrt(variance / draws))
    mean, var = _concentration_moments(ALPHA, K)
    s = np.sum(p**2, axis=1)
    assert abs(s.mean() - mean) <= Z * math.sqrt(var / draws), (s.mean(), mean)


def test_label_skew_proportions_follow_the_dirichlet_concentration():
    """Each class's split among the clients is one Dir(α) draw, cut at floor(n_c C_k):
    the fractions differ from p_k by ε_k with E[Σ ε_k²] ≈ (K - 1) / (6 n_c²) (rounding
    of uniform fractional parts), added to E[S]; 5 se of the mean over the classes."""
    classes, per_class = 1500, 200
    labels = np.repeat(np.arange(classes), per_class)
    clients = partition.dirichlet_label_skew(labels, K, ALPHA, RandomSource(seed=32))
    counts = np.stack([np.bincount(labels[c], minlength=classes) for c in clients], axis=1)
    assert np.all(counts.sum(axis=1) == per_class)
    s = np.sum((counts / per_class) ** 2, axis=1)
    mean, var = _concentration_moments(ALPHA, K)
    mean += (K - 1) / (6 * per_class**2)
    assert abs(s.mean() - mean) <= Z * math.sqrt(var / classes), (s.mean(), mean)
