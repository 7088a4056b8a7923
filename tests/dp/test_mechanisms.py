"""Randomized response, Laplace and Gaussian mechanisms: noise, estimators, dp_accounting events.

Statistical tolerances are 5 standard errors of the tested statistic, computed
from the statistic's exact variance (failure probability < 1e-6 per check).
"""

import math

import dp_accounting
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.dp.mechanisms import GaussianMechanism, LaplaceMechanism, epsilon_of, make_accountant
from tfpriv.dp.randomized_response import (RandomizedResponse, RandomizedResponseDpEvent,
                                           rdp_of_randomized_response)
from tfpriv.rng import RandomSource

N = 200_000
Z = 5.0


def test_two_coin_survey_has_epsilon_ln3():
    rr = RandomizedResponse()
    assert rr.epsilon == pytest.approx(math.log(3))
    for accountant in ('rdp', 'pld'):
        assert epsilon_of([rr.dp_event()], 0.0 if accountant == 'pld' else 1e-9, accountant) \
            == pytest.approx(math.log(3), abs=2e-2)


def test_randomized_response_answer_probabilities():
    rr = RandomizedResponse(rng=RandomSource(1))
    yes = rr(np.ones(N, dtype=bool)).mean()
    no = rr(np.zeros(N, dtype=bool)).mean()
    for observed, p in ((yes, 0.75), (no, 0.25)):
        assert abs(observed - p) < Z * math.sqrt(p * (1 - p) / N)


@settings(max_examples=5, deadline=None)
@given(true_fraction=st.floats(0.0, 1.0), p=st.sampled_from([0.5, 0.25, 0.8]), seed=st.integers(0, 2**31))
def test_randomized_response_estimator_is_unbiased(true_fraction, p, seed):
    rr = RandomizedResponse(p, RandomSource(seed))
    truth = np.zeros(N, dtype=bool)
    truth[:int(round(true_fraction * N))] = True
    estimate = rr.estimate(rr(truth))
    assert abs(estimate - truth.mean()) < Z * rr.standard_error(truth.mean(), N)


def test_randomized_response_estimator_formula():
    rr = RandomizedResponse()
    noisy = np.array([True] * 6 + [False] * 4)
    assert rr.estimate(noisy) == pytest.approx(2 * 0.6 - 0.5)


def test_randomized_response_rdp_matches_definition():
    event = RandomizedResponseDpEvent(0.5, 2)
    alpha = 3.0
    expected = math.log(0.75 ** 3 * 0.25 ** -2 + 0.25 ** 3 * 0.75 ** -2) / 2
    assert rdp_of_randomized_response(event, [alpha])[0] == pytest.approx(expected)
    # Never above the pure-DP bound ε, and at least the zCDP-free lower value at large α.
    big = rdp_of_randomized_response(event, [1000.0])[0]
    assert big <= math.log(3) + 1e-12 and big > 0.99 * math.log(3)


def test_randomized_response_is_worse_than_laplace_under_pld():
    # RR(ε) is the worst ε-DP mechanism; a Laplace event would under-count it.
    rr_eps = epsilon_of([RandomizedResponse().dp_event()] * 20, 1e-5, 'pld')
    lap_eps = epsilon_of([dp_accounting.LaplaceDpEvent(1 / math.log(3))] * 20, 1e-5, 'pld')
    assert rr_eps > lap_eps


def test_bad_randomized_response_inputs():
    with pytest.raises(ValueError, match='truth_probability'):
        RandomizedResponse(1.0)
    with pytest.raises(TypeError, match='boolean'):
        RandomizedResponse(rng=RandomSource(0))(np.array([0, 1]))
    with pytest.raises(ValueError, match='non-empty boolean'):
        RandomizedResponse().estimate(np.array([], dtype=bool))


def test_laplace_noise_scale_and_event():
    mech = LaplaceMechanism(sensitivity=2.0, epsilon=0.5, rng=RandomSource(2))
    assert mech.scale == 4.0
    noise = mech(np.zeros(N))
    # Var[|Lap(b)|] = b^2, E|Lap(b)| = b; Var[Lap(b)] = 2b^2.
    assert abs(np.mean(np.abs(noise)) - 4.0) < Z * 4.0 / math.sqrt(N)
    assert abs(noise.mean()) < Z * math.sqrt(2 * 16.0 / N)
    assert mech.dp_event() == dp_accounting.LaplaceDpEvent(2.0)
    assert epsilon_of([mech.dp_event()], 1e-9, 'pld') == pytest.approx(0.5, abs=1e-2)


def test_gaussian_noise_scale_and_event():
    mech = GaussianMechanism(sensitivity=3.0, noise_multiplier=2.0, rng=RandomSource(3))
    noise = mech(np.full(N, 10.0)) - 10.0
    var = noise.var()
    # Var of the sample variance of N(0, s^2) is 2 s^4 / (N - 1).
    assert abs(var - 36.0) < Z * math.sqrt(2 * 36.0 ** 2 / (N - 1))
    assert mech.dp_event() == dp_accounting.GaussianDpEvent(2.0)


def test_composition_is_dp_accounting():
    events = [LaplaceMechanism(1, 0.3).dp_event(), GaussianMechanism(1, 4.0).dp_event(),
              RandomizedResponse().dp_event()]
    for kind in ('rdp', 'pld'):
        plain = make_accountant(kind)
        for event in events:
            plain.compose(event)
        assert epsilon_of(events, 1e-5, kind) == pytest.approx(plain.get_epsilon(1e-5))
    # Without randomized response, the plain dp_accounting accountant agrees.
    rdp = dp_accounting.rdp.RdpAccountant()
    rdp.compose(dp_accounting.ComposedDpEvent(events[:2]))
    assert epsilon_of(events[:2], 1e-5, 'rdp') == pytest.approx(rdp.get_epsilon(1e-5))
    # k-fold pure composition of Laplace never exceeds k ε.
    assert epsilon_of([events[0]] * 10, 1e-5, 'pld') <= 3.0 + 1e-6


def test_bad_mechanism_inputs():
    with pytest.raises(ValueError, match='sensitivity'):
        LaplaceMechanism(0.0, 1.0)
    with pytest.raises(ValueError, match='epsilon'):
        LaplaceMechanism(1.0, -1.0)
    with pytest.raises(ValueError, match='noise_multiplier'):
        GaussianMechanism(1.0, float('nan'))
    with pytest.raises(ValueError, match='finite'):
        LaplaceMechanism(1.0, 1.0)(np.array([np.inf]))
    with pytest.raises(ValueError, match="accountant must be one of"):
        epsilon_of([], 1e-5, 'moments')


# --- Written for the mutation run (issue #20): wiring, exact formulas, argument bounds ---

def test_mechanisms_draw_their_noise_from_the_given_source():
    """A seeded source makes the release exactly f(D) + that source's draw (reference: the
    source called directly), so a mechanism cannot silently fall back to another source."""
    value = np.array([1.0, -2.0, 3.5])
    laplace = LaplaceMechanism(2.0, 0.5, rng=RandomSource(31))(value)
    np.testing.assert_array_equal(laplace, value + RandomSource(31).laplace(3, 4.0))
    gauss = GaussianMechanism(3.0, 2.0, rng=RandomSource(32))(value)
    np.testing.assert_array_equal(gauss, value + RandomSource(32).normal(3, 6.0))
    truth = np.array([True, False] * 50)
    noisy = RandomizedResponse(0.3, RandomSource(33))(truth)
    source = RandomSource(33)
    honest, coin = source.uniform01(100) < 0.3, source.uniform01(100) < 0.5
    np.testing.assert_array_equal(noisy, np.where(honest, truth, coin))


def test_mechanism_parameters_must_be_positive():
    for bad in (0.0, -1.0, float('inf'), float('nan')):
        with pytest.raises(ValueError, match='^epsilon must be a positive finite number'):
            LaplaceMechanism(1.0, bad)
        with pytest.raises(ValueError, match='^noise_multiplier must be a positive finite'):
            GaussianMechanism(1.0, bad)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=r'^truth_probability must be in \(0, 1\)'):
            RandomizedResponse(bad)
    assert GaussianMechanism(1.0, 0.5).scale == 0.5 and LaplaceMechanism(1.0, 4.0).scale == 0.25
    with pytest.raises(ValueError, match='^value must be finite$'):
        GaussianMechanism(1.0, 1.0)(np.array([np.nan]))
    with pytest.raises(ValueError, match='^noisy answers must be a non-empty boolean array$'):
        RandomizedResponse().estimate(np.array([1, 0]))


def _renyi_by_summation(p_row, q_row, alpha):
    """D_alpha(P || Q) = log(sum_i P_i^alpha Q_i^(1 - alpha)) / (alpha - 1), summed here."""
    return math.log(sum(p**alpha * q**(1 - alpha) for p, q in zip(p_row, q_row))) / (alpha - 1)


@pytest.mark.parametrize('noise, buckets', [(0.5, 2), (0.3, 4), (0.8, 3), (0.6, 10)])
def test_randomized_response_rdp_is_the_renyi_divergence_of_the_output_laws(noise, buckets):
    """k-ary RR with input x outputs x w.p. 1 - s + s/k and each other bucket w.p. s/k; the
    reference sums the divergence between the output laws for inputs 0 and 1 over all k
    buckets, for several orders at once (rel 1e-12)."""
    a, b = 1 - noise + noise / buckets, noise / buckets
    law_0 = [a] + [b] * (buckets - 1)
    law_1 = [b, a] + [b] * (buckets - 2)
    orders = [1.5, 2.0, 8.0, 64.0]
    got = rdp_of_randomized_response(RandomizedResponseDpEvent(noise, buckets), orders)
    assert got.shape == (4,)
    np.testing.assert_allclose(got, [_renyi_by_summation(law_0, law_1, o) for o in orders],
                               rtol=1e-12)


def test_randomized_response_without_noise_has_infinite_rdp():
    got = rdp_of_randomized_response(RandomizedResponseDpEvent(0.0, 2), [2.0, 3.0])
    assert got.shape == (2,) and np.all(np.isposinf(got))


@pytest.mark.parametrize('p, true_fraction', [(0.5, 0.2), (0.25, 0.7), (0.8, 0.0)])
def test_randomized_response_standard_error_is_the_binomial_one(p, true_fraction):
    """For n respondents drawn from a population with "yes" fraction pi, each noisy answer is
    an independent Bernoulli(r), r = p pi + (1 - p) / 2, and the estimate is affine in a
    Binomial(n, r) count: sd sqrt(r (1 - r) / n) / p (computed here). Monte Carlo check of
    the mechanism itself: the sd of 4,000 estimates (n = 200 each) within 5 se of a sample
    sd (se ~ sd / sqrt(2 R)). (For one fixed set of truths the sd is smaller: the
    Poisson-binomial variance; the formula is then an upper bound.)"""
    n, repeats = 200, 4000
    r = p * true_fraction + (1 - p) / 2
    rr = RandomizedResponse(p, RandomSource(34))
    assert rr.standard_error(true_fraction, n) == pytest.approx(math.sqrt(r * (1 - r) / n) / p,
                                                                rel=1e-12)
    truth = RandomSource(35).uniform01((repeats, n)) < true_fraction
    noisy = rr(truth)
    estimates = (noisy.mean(axis=1) - (1 - p) / 2) / p
    sd = rr.standard_error(true_fraction, n)
    assert abs(estimates.std() - sd) <= Z * sd / math.sqrt(2 * repeats)


def test_mechanisms_without_a_source_use_the_os_csprng_at_the_right_scale():
    """No rng given: OS randomness (unseeded), still the calibrated scale: E|Lap(b)| = b
    (se b / sqrt(n)), Var N(0, s^2) = s^2 (se s^2 sqrt(2 / (n - 1))), RR's yes-rate for
    all-false truths (1 - p) / 2; 5 se each, two-sided."""
    n = 20_000
    laplace = LaplaceMechanism(1.0, 0.5)(np.zeros(n))
    assert abs(np.abs(laplace).mean() - 2.0) <= Z * 2.0 / math.sqrt(n)
    gauss = GaussianMechanism(1.0, 3.0)(np.zeros(n))
    assert abs(gauss.var(ddof=1) - 9.0) <= Z * 9.0 * math.sqrt(2 / (n - 1))
    yes = RandomizedResponse(0.5)(np.zeros(n, dtype=bool)).mean()
    assert abs(yes - 0.25) <= Z * math.sqrt(0.25 * 0.75 / n)
