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
