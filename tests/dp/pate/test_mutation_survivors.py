"""Tests written for the mutants of the PATE code that survived mutation testing (issue #20, round 4).

References are the papers' formulas written out here, never the code under test:

- LNMax (Papernot et al. 2017, "Semi-supervised knowledge transfer...", Thm. 3): q ≤ Σ_{j≠j*}
  (2 + γΔ_j)/(4e^{γΔ_j}); Thm. 2: for q < (e^{2γ} - 1)/(e^{4γ} - 1),
  α(l) ≤ log((1 - q)((1 - q)/(1 - e^{2γ}q))^l + q e^{2γl}); always α(l) ≤ min(2γ²l(l + 1), 2γl);
  RDP of order l + 1 is α(l)/l.
- GNMax (Papernot et al. 2018, "Scalable Private Learning with PATE"): Prop. 7, q ≤ Σ_{j≠j*} ½erfc(Δ_j/(2σ))
  capped at 1 - 1/m; Thm. 6 with Prop. 10's μ2 = σ√(log 1/q), μ1 = μ2 + 1, ε_i = μ_i/σ², applicable when
  μ2 > 1, log 1/q > ε2 and q ≤ e^{(μ2-1)ε2}/(μ1/(μ1-1) · μ2/(μ2-1))^{μ2}, for orders λ < μ1; always capped by
  the data-independent λ/σ².
- Threshold check (2018, Sec. 4.2): the same bound with σ → √2σ1 and q = min(p, 1 - p),
  p = Φ̄((T - max_j n_j)/σ1).
- (ε, δ) from an RDP curve: dp_accounting's `compute_epsilon` (the conversion its accountant uses).

Tolerances: the bounds are deterministic closed forms, compared at rel 1e-9 (float64 rounding of
logs and exps of arguments below 1e3). The randomized checks compare labels of seeded sources for
equality (reproducibility) or use histograms 150 noise standard deviations from the decision
boundary (failure probability below 1e-4000 per query).
"""

import itertools
import logging
import math
import re

import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant
from scipy import stats

from tfpriv.dp.pate.aggregation import UNANSWERED, ConfidentGNMax, GNMax, LNMax, make_aggregator, vote_counts
from tfpriv.dp.pate.analysis import (ORDERS, analyze_stages, data_dependent_rdp, log_q_gnmax, perform_analysis,
                                     q_lnmax, rdp_gnmax, rdp_lnmax, rdp_threshold)
from tfpriv.dp.pate.smooth_sensitivity import (_reachable_log_q, beta_for_order, gnss_rdp, local_sensitivity_gnmax,
                                               local_sensitivity_threshold, release_epsilon, sigma_s_for,
                                               smooth_sensitivity)
from tfpriv.rng import RandomSource

REL = 1e-9
SPLIT = np.array([125, 125, 0, 0, 0, 0, 0, 0, 0, 0])  # two-way tie: every data-dependent bound falls back


def _exact(message: str) -> str:
    return '^' + re.escape(message) + '$'


def _thm2_rdp(q: float, gamma: float, order: float) -> float:
    """Papernot 2017, Thm. 2 (with its applicability condition), as RDP of order l + 1."""
    l = order - 1.0
    alpha = min(2 * gamma ** 2 * l * (l + 1), 2 * gamma * l)
    if q < (math.exp(2 * gamma) - 1) / (math.exp(4 * gamma) - 1):
        terms = (1 - q) * ((1 - q) / (1 - math.exp(2 * gamma) * q)) ** l + q * math.exp(2 * gamma * l)
        alpha = min(alpha, math.log(terms))
    return alpha / l


def _thm6_rdp(log_q: float, sigma: float, order: float) -> float:
    """Papernot 2018, Thm. 6 with Prop. 10's μ1, μ2 and the theorem's conditions; min with λ/σ²."""
    independent = order / sigma ** 2
    q = math.exp(log_q)
    if q == 0.0:
        return 0.0
    mu2 = sigma * math.sqrt(-log_q)
    mu1 = mu2 + 1
    eps1, eps2 = mu1 / sigma ** 2, mu2 / sigma ** 2
    if mu2 <= 1 or -log_q <= eps2 or order >= mu1:
        return independent
    if q > math.exp((mu2 - 1) * eps2) / (mu1 / (mu1 - 1) * mu2 / (mu2 - 1)) ** mu2:
        return independent
    # A = (1 - q)/(1 - (qe^{ε2})^{(μ2-1)/μ2}) and B = e^{ε1}/q^{1/(μ1-1)}, in logs (B overflows for tiny q)
    log_a = math.log1p(-q) - math.log(-math.expm1((log_q + eps2) * (mu2 - 1) / mu2))
    log_b = eps1 - log_q / (mu1 - 1)
    bound = np.logaddexp(math.log1p(-q) + (order - 1) * log_a, log_q + (order - 1) * log_b) / (order - 1)
    return min(independent, float(bound))


# ---------------------------------------------------------------- aggregation.py


def test_vote_counts_defaults_to_ten_classes_and_refuses_float_votes():
    """Kills vote_counts 1 (default 11 classes) and 4 (`and` lets a 2-D float array through)."""
    counts = vote_counts(np.array([[0, 9], [9, 9]]))
    np.testing.assert_array_equal(counts, [[1, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0] * 9 + [2]])
    with pytest.raises(ValueError, match=_exact('teacher_preds must be a non-empty 2-D integer array (teachers, '
                                                'queries), got shape (2, 2) dtype float64')):
        vote_counts(np.zeros((2, 2)))


@pytest.mark.parametrize('aggregator', [LNMax(0.5), GNMax(1.0), ConfidentGNMax(0.0, 1.0, 1.0)])
def test_aggregators_refuse_negative_counts(aggregator):
    """Kills _check_counts 3 and 10 (a negative count accepted as a vote)."""
    with pytest.raises(ValueError, match=_exact('counts must be a (queries, classes >= 2) array of non-negative '
                                                'vote counts, got shape (1, 3)')):
        aggregator(np.array([[3, -1, 2]]))


def test_bad_noise_parameters_are_named_in_the_message():
    """Kills GNMax.__init__ 2, 6, 7 and ConfidentGNMax.__init__ 3, 11 (argument name or message lost)."""
    with pytest.raises(ValueError, match=_exact('sigma must be a positive finite number, got 0.0')):
        GNMax(0.0)
    with pytest.raises(ValueError, match=_exact('threshold must be finite, got inf')):
        ConfidentGNMax(math.inf, 1.0, 1.0)
    with pytest.raises(ValueError, match=_exact('sigma_threshold must be a positive finite number, got -1')):
        ConfidentGNMax(10, -1, 1)


NEAR_TIE = np.tile([10, 10, 9], (2000, 1))  # every noisy answer is a coin toss among three classes


def _aggregators(seed):
    return [LNMax(0.5, RandomSource(seed)), GNMax(2.0, RandomSource(seed)),
            ConfidentGNMax(-1000.0, 1.0, 2.0, RandomSource(seed))]


def test_aggregators_draw_their_noise_from_the_given_source():
    """Same seed, same answers; another seed, other answers (P(equal) < 0.7^2000); no seed still answers.

    Kills the `rng if rng is not None else RandomSource()` mutants of LNMax, GNMax and ConfidentGNMax
    (9, 10, 11 and 14, 15, 16: the seeded source ignored, or None kept) and ConfidentGNMax.__init__ 19, 21
    (GNMax(σ2) given a fresh source instead of the seeded one).
    """
    for first, again, other in zip(_aggregators(5), _aggregators(5), _aggregators(6)):
        labels = first(NEAR_TIE)
        np.testing.assert_array_equal(labels, again(NEAR_TIE))
        assert np.mean(labels != other(NEAR_TIE)) > 0.3
        assert set(np.unique(labels)) == {0, 1, 2}
    for unseeded in (LNMax(0.5), GNMax(2.0), ConfidentGNMax(-1000.0, 1.0, 2.0)):  # the OS source: labels only
        assert np.isin(unseeded(NEAR_TIE), [0, 1, 2]).all()


def test_confident_gnmax_checks_each_querys_own_max_count():
    """The check compares max_j n_j of each query with T (Alg. 1): a query 150σ1 below T is never answered.

    Kills ConfidentGNMax.__call__ 5 (the maximum over the whole batch).
    """
    aggregator = ConfidentGNMax(150.0, 1.0, 1.0, RandomSource(4))
    np.testing.assert_array_equal(aggregator(np.array([[300, 0], [0, 0], [0, 300]])), [0, UNANSWERED, 1])


def test_make_aggregator_passes_noise_threshold_and_source_through():
    """Kills make_aggregator 1, 2 (defaults), 7, 9, 14, 16, 23, 27 (source dropped), 11-13, 15 ('gnmax')."""
    gnmax = make_aggregator('gnmax', 2.0)
    assert isinstance(gnmax, GNMax) and gnmax.sigma == 2.0
    assert make_aggregator('confident-gnmax', 2.0, sigma_threshold=3.0).threshold == 0.0
    with pytest.raises(ValueError, match=_exact('sigma_threshold must be a positive finite number, got 0.0')):
        make_aggregator('confident-gnmax', 2.0)
    for name, noise in (('lnmax', 0.5), ('gnmax', 2.0), ('confident-gnmax', 2.0)):
        runs = [make_aggregator(name, noise, -1000.0, 1.0, RandomSource(seed))(NEAR_TIE) for seed in (8, 8, 9)]
        np.testing.assert_array_equal(runs[0], runs[1])
        assert np.mean(runs[0] != runs[2]) > 0.3


# ---------------------------------------------------------------- analysis.py: per-query bounds


def test_gaps_are_taken_from_the_plurality_class_wherever_it_is():
    """Kills _gaps 8 (j* taken as class 0): plurality in class 3, gaps 29, 30, 28."""
    counts = np.array([1, 0, 2, 30])
    gamma, sigma = 0.1, 10.0
    expected = sum((2 + gamma * d) / (4 * math.exp(gamma * d)) for d in (29, 30, 28))
    assert q_lnmax(counts, gamma) == pytest.approx(expected, rel=REL)
    expected = math.log(sum(0.5 * math.erfc(d / (2 * sigma)) for d in (29, 30, 28)))
    assert log_q_gnmax(counts, sigma) == pytest.approx(expected, rel=REL)


def test_log_q_gnmax_is_capped_at_one_minus_one_over_m():
    """Four tied classes: Prop. 7's sum is 3 · ½ = 1.5, capped at 1 - 1/4. Kills log_q_gnmax 16 (cap 1 + 1/m)."""
    assert log_q_gnmax(np.array([5, 5, 5, 5]), 1.0) == pytest.approx(math.log(0.75), rel=REL)


@pytest.mark.parametrize('gamma,qs', [(0.5, (0.01, 0.1, 0.15, 0.2, 0.25, 0.26, 0.3, 0.5, 0.8)),
                                      (0.05, (0.01, 0.1, 0.3, 0.45, 0.47, 0.48, 0.5, 0.9))])
def test_rdp_lnmax_applies_thm2_exactly_where_papernot_allows(gamma, qs):
    """The condition q < (e^{2γ}-1)/(e^{4γ}-1) is 0.269 at γ = 0.5 and 0.475 at γ = 0.05; q on both sides.

    Kills rdp_lnmax 27, 28, 31, 34 (the condition's constants): inside, Thm. 2 is below the
    data-independent bound (5% below at γ = 0.5, q = 0.26, λ = 2; 97% at q = 0.01); outside, the formula
    is NaN (e^{2γ}q > 1) or above it.
    """
    for q in qs:
        for order in (1.5, 2.0, 3.0, 11.0, 21.0, 64.0):
            assert rdp_lnmax(q, gamma, [order])[0] == pytest.approx(_thm2_rdp(q, gamma, order), rel=REL), (q, order)


def test_zero_error_probability_costs_nothing():
    """q = 0: Thm. 2 gives α(l) = log 1 = 0 and Thm. 6 RDP 0, at every order (shape kept).

    Kills rdp_lnmax 54, 56 (log 0 raised), 58 (log q = +inf) and rdp_gnmax 11, 12.
    """
    np.testing.assert_array_equal(rdp_lnmax(0.0, 0.1, ORDERS), np.zeros(len(ORDERS)))
    zeros = rdp_gnmax(-np.inf, 4.0, ORDERS)
    assert zeros.shape == ORDERS.shape
    np.testing.assert_array_equal(zeros, np.zeros(len(ORDERS)))


@pytest.mark.parametrize('sigma', [0.5, 1.0, 2.0])
def test_rdp_gnmax_matches_thm6_with_its_conditions_over_a_grid_of_q(sigma):
    """120 values of log 1/q in [0.05, 400] (μ2 from below 1 to 40σ), at every order of ORDERS.

    atol 1e-12 besides rel 1e-9: at small λ and tiny q the bound (down to 1e-11) is the log of 1 + O(q), and
    float64 rounding (1e-16 absolute) of the two ways to compute log(1 - q) shows there; every mutant
    listed moves some value between the bound and λ/σ² ≥ 0.375.

    Kills rdp_gnmax 29 (μ2 ≤ 2 refused: at σ = 0.5, log q = -9, μ2 = 1.5, Thm. 6 gives 7.0 at λ = 2
    against λ/σ² = 8) and 36, 42, 46 (the theorem's condition tightened).
    """
    for log_q in -np.geomspace(0.05, 400, 120):
        got = rdp_gnmax(float(log_q), sigma, ORDERS)
        expected = [_thm6_rdp(float(log_q), sigma, order) for order in ORDERS]
        np.testing.assert_allclose(got, expected, rtol=REL, atol=1e-12, err_msg=f'log q = {log_q}')
    assert rdp_gnmax(-9.0, 0.5, [2.0])[0] == pytest.approx(_thm6_rdp(-9.0, 0.5, 2.0), rel=REL)
    assert _thm6_rdp(-9.0, 0.5, 2.0) < 7.1


@pytest.mark.parametrize('max_count', [60, 140])
def test_threshold_rdp_uses_z_over_sigma1_on_both_sides(max_count):
    """T = 100, σ1 = 10, max count 4σ1 below or above T: q = Φ̄(4) either way, bound of Thm. 6 at √2σ1.

    Kills rdp_threshold 4 (z·σ1 in p, seen below T) and 9 (z·σ1 in 1 - p, seen above T).
    """
    log_q = float(stats.norm.logsf(4.0))
    orders = [2.0, 8.0, 32.0]
    expected = [_thm6_rdp(log_q, math.sqrt(2) * 10.0, order) for order in orders]
    assert expected[1] < 8.0 / (2 * 10.0 ** 2)  # data-dependent: below the data-independent λ/(2σ1²)
    np.testing.assert_allclose(rdp_threshold(max_count, 100.0, 10.0, orders), expected, rtol=REL)


# ---------------------------------------------------------------- analysis.py: composition and reports


ORDERS_FEW = np.array([2.0, 8.0, 32.0])


def test_confident_gnmax_rdp_sums_every_check_and_every_answer():
    """Rows with max count = T: the check is a fair coin, λ/(2σ1²) each (no data-dependent gain); the
    answers to tied rows fall back to λ/σ2². Labels [-1, 0, -1, 0, 0]: 5 checks, 3 answers.

    Kills data_dependent_rdp 14, 38 (a `+=` made `=`), 19, 23, 42, 45 (the orders dropped), 25 (`break`).
    """
    sigma1, sigma2 = 30.0, 40.0
    counts = np.tile(SPLIT, (5, 1))
    labels = np.array([UNANSWERED, 0, UNANSWERED, 0, 0])
    got = data_dependent_rdp(ConfidentGNMax(125.0, sigma1, sigma2), counts, labels, ORDERS_FEW)
    np.testing.assert_allclose(got, 5 * ORDERS_FEW / (2 * sigma1 ** 2) + 3 * ORDERS_FEW / sigma2 ** 2, rtol=REL)


def test_lnmax_rdp_sums_every_answer():
    """Three tied rows at γ = 0.05 (q ≥ 0.5, above Thm. 2's 0.475): each min(2γ²(l+1), 2γ).

    Kills data_dependent_rdp 26 (`=`) and 33 (the orders dropped).
    """
    gamma = 0.05
    got = data_dependent_rdp(LNMax(gamma), np.tile(SPLIT, (3, 1)), np.zeros(3, dtype=np.int64), ORDERS_FEW)
    np.testing.assert_allclose(got, [3 * min(2 * gamma ** 2 * order, 2 * gamma) for order in ORDERS_FEW],
                               rtol=REL)


def test_unknown_aggregator_is_named():
    """Kills data_dependent_rdp 50, 51 (the message, or the type named in it, lost)."""
    with pytest.raises(TypeError, match=_exact('unknown aggregator str')):
        data_dependent_rdp('gnmax', SPLIT[None], np.zeros(1, dtype=np.int64))


def test_analyze_stages_checks_delta_and_rounds():
    """Kills analyze_stages 4, 5 (δ = 1 accepted) and 8, 9, 10 (the message of an empty call)."""
    stage = (GNMax(40.0), SPLIT[None], np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError, match=_exact('delta must be in (0, 1), got 1.0')):
        analyze_stages([stage], 1.0)
    with pytest.raises(ValueError, match=_exact('need at least one round of answers')):
        analyze_stages([], 1e-5)


def test_analyze_stages_reports_the_order_and_delta_of_its_epsilon():
    """Two rounds of 4 tied GNMax(σ = 40) answers: RDP 8λ/σ² (data-independent fallback), converted by
    dp_accounting. Kills analyze_stages 34 (order None) and 37 (δ None)."""
    sigma, delta = 40.0, 1e-5
    stage = (GNMax(sigma), np.tile(SPLIT, (4, 1)), np.zeros(4, dtype=np.int64))
    report = analyze_stages([stage, stage], delta)
    eps, order = rdp_privacy_accountant.compute_epsilon(ORDERS, 8 * ORDERS / sigma ** 2, delta)
    assert report.data_dependent_eps == pytest.approx(eps, rel=REL)
    assert report.data_dependent_order == order
    assert report.delta == delta
    assert (report.num_queries, report.num_answered) == (8, 8)


@pytest.mark.parametrize('num_classes', [None, 3])
def test_perform_analysis_counts_the_classes_it_is_given(num_classes):
    """40 unanimous teachers on 20 queries, γ = 0.1: q = (m - 1)(2 + 4)/(4e^4) per query (Thm. 3), Thm. 2
    summed over the 20 queries, (ε, δ) by dp_accounting. m = 10 by default.

    Kills perform_analysis 1 (default 11 classes) and 11 (num_classes not passed on).
    """
    gamma, delta, m = 0.1, 1e-5, num_classes or 10
    preds = np.zeros((40, 20), dtype=np.int64)
    kwargs = {} if num_classes is None else {'num_classes': num_classes}
    dependent, _ = perform_analysis(preds, list(range(20)), gamma, delta, **kwargs)
    q = (m - 1) * (2 + gamma * 40) / (4 * math.exp(gamma * 40))
    rdp = [20 * _thm2_rdp(q, gamma, order) for order in ORDERS]
    assert dependent == pytest.approx(rdp_privacy_accountant.compute_epsilon(ORDERS, rdp, delta)[0], rel=REL)


def test_perform_analysis_refuses_an_empty_query_list():
    """No query asked: the vote check names the problem (not an IndexError from float indices).

    Kills perform_analysis 4, 6 (indices left as float64 when the list is empty).
    """
    with pytest.raises(ValueError, match='teacher_preds must be a non-empty 2-D integer array'):
        perform_analysis(np.zeros((3, 4), dtype=np.int64), [], 0.1, 1e-5)


# ---------------------------------------------------------------- smooth_sensitivity.py


@pytest.mark.parametrize('call,message', [
    (lambda: gnss_rdp(14.0, 0.0329, 0.0), 'sigma_s must be a finite number > 0, got 0.0'),
    (lambda: gnss_rdp(10.0, 0.05, 15.0), 'GNSS needs 1 < order < 1/(2*beta) = 10; got order=10.0, beta=0.05'),
    (lambda: smooth_sensitivity([0.1], -0.1), 'beta must be a finite number >= 0, got -0.1'),
    (lambda: local_sensitivity_gnmax(np.array([250, 0]), 40.0, 14.0, 2.5),
     'max_distance must be an integer >= 0, got 2.5'),
    (lambda: local_sensitivity_gnmax(np.array([250, 0]), 40.0, 1.0, 3), 'order must be a finite number > 1, got 1.0'),
    (lambda: local_sensitivity_gnmax(np.array([-1, 2]), 40.0, 14.0, 3),
     'counts must be one vote histogram (>= 2 non-negative counts), got shape (2,)'),
    (lambda: local_sensitivity_gnmax(np.array([np.nan, 2]), 40.0, 14.0, 3),
     'counts must be one vote histogram (>= 2 non-negative counts), got shape (2,)'),
    (lambda: local_sensitivity_threshold(5, np.inf, 1.0, 2.0, 3), 'threshold must be finite, got inf'),
    (lambda: local_sensitivity_threshold(5, 5.0, 0.0, 2.0, 3), 'sigma_threshold must be a finite number > 0, got 0.0'),
    (lambda: local_sensitivity_threshold(5, 5.0, 1.0, 1.0, 3), 'order must be a finite number > 1, got 1.0'),
    (lambda: local_sensitivity_threshold(5, 5.0, 1.0, 2.0, -1), 'max_distance must be an integer >= 0, got -1'),
    (lambda: local_sensitivity_threshold(5, 5.0, 1.0, 2.0, 3, num_teachers=-1),
     'num_teachers must be an integer >= 0, got -1'),
    (lambda: beta_for_order(14.0, 0.0), 'fraction must be in (0, 0.5) so that beta < 1/(2*order), got 0.0'),
    (lambda: beta_for_order(1.0), 'order must be a finite number > 1, got 1.0'),
    (lambda: sigma_s_for(14.0, 0.03, 0.0), 'expected_smooth_sensitivity must be a finite number > 0, got 0.0'),
    (lambda: sigma_s_for(1.0, 0.03, 0.01), 'order must be a finite number > 1, got 1.0'),
    (lambda: sigma_s_for(14.0, -0.1, 0.01), 'beta must be a finite number >= 0, got -0.1'),
])
def test_smooth_sensitivity_arguments_are_named_with_their_bound(call, message):
    """Kills the argument-check mutants of _number, _count, local_sensitivity_gnmax/threshold, gnss_rdp,
    beta_for_order, sigma_s_for (name lost or changed, `>` shown as `>=`, a check weakened by `and`)."""
    with pytest.raises(ValueError, match=_exact(message)):
        call()


def test_boundary_values_are_accepted():
    """max count 0, LS^(k) of 0, β = 0, order just above 1 (beta_for_order and sigma_s_for take any λ > 1).

    Kills local_sensitivity_threshold 5, 6 (max count 0 refused), smooth_sensitivity 17 (a zero LS refused),
    beta_for_order 17, sigma_s_for 22 (λ ≤ 2 refused) and 32, 33, 37 (β = 0 refused).
    """
    assert local_sensitivity_threshold(0, 5.0, 1.0, 2.0, 3, num_teachers=10).shape == (4,)
    assert smooth_sensitivity([0.0, 0.2], 0.5) == pytest.approx(0.2 * math.exp(-0.5), rel=REL)
    assert beta_for_order(1.5) == pytest.approx(0.46 / 1.5, rel=REL)
    assert sigma_s_for(1.5, 0.0, 0.01) == pytest.approx((1.5 / 0.01) ** (1 / 3), rel=REL)


def test_gnss_rdp_is_the_minimum_of_thm23_up_to_the_pole():
    """β = 0.3, σ_s = 10: Thm. 23's bound falls from +∞ at λ → 1 to its minimum near λ = 1.49, then rises to
    +∞ at 1/(2β) = 1.667. gnss_rdp(1.05) is that minimum; the reference is a 200,001-point grid of the
    bound written here (grid step 3e-6, so the grid minimum is within 1e-9 relative of the true one; the
    optimizer's tolerance allows 1e-7). Kills gnss_rdp 60 (search only up to 1/(3β) = 1.11: 7.96 for 3.23).
    """
    beta, sigma_s = 0.3, 10.0
    lam = np.linspace(1.05, (1 - 1e-9) / (2 * beta), 200_001)
    bound = lam * math.exp(2 * beta) / sigma_s ** 2 + (beta * lam - 0.5 * np.log1p(-2 * beta * lam)) / (lam - 1)
    assert 1.4 < lam[np.argmin(bound)] < 1.6
    assert gnss_rdp(1.05, beta, sigma_s) == pytest.approx(bound.min(), rel=1e-7)


def _threshold_ls_reference(v, threshold, sigma_threshold, order, k_max, teachers):
    """LS^(k) bound of the threshold RDP f(w) (w = max count): the largest |f(w ± 1) - f(w)| over max counts
    w in [v - k, v + k] ∩ [0, teachers], neighbours also in [0, teachers] (module docstring), by loops."""
    f = [rdp_threshold(w, threshold, sigma_threshold, [order])[0] for w in range(teachers + 1)]
    step = [max([abs(f[w + d] - f[w]) for d in (-1, 1) if 0 <= w + d <= teachers]) for w in range(teachers + 1)]
    return np.array([max(step[max(v - k, 0):min(v + k, teachers) + 1]) for k in range(k_max + 1)])


def test_release_bounds_the_threshold_ls_within_the_number_of_teachers():
    """One unanimous query of 250 teachers, T = 260 > 250 (σ1 = 5): max counts above 250 cannot occur, and
    the RDP changes most near T. SS against the reference LS^(k) above, discounted by e^{-βk} here.

    Kills release_epsilon 71, 77 (num_teachers not passed: max counts up to 500 make SS 0.0179 for 0.0144).
    """
    aggregator = ConfidentGNMax(260.0, 5.0, 40.0)
    counts, labels = np.array([[250, 0]]), np.array([UNANSWERED])
    order, beta = 4.0, 0.1
    ls = _threshold_ls_reference(250, 260.0, 5.0, order, 250, 250)
    expected = max(ls * np.exp(-beta * np.arange(251)))
    release = release_epsilon([(aggregator, counts, labels)], 1e-5, order=order, beta=beta, sigma_s=5.0,
                              rng=RandomSource(12))
    assert release.smooth_sensitivity == pytest.approx(expected, rel=REL)
    np.testing.assert_allclose(local_sensitivity_threshold(0, 5.0, 1.0, 2.0, 3, num_teachers=10),
                               _threshold_ls_reference(0, 5.0, 1.0, 2.0, 3, 10), rtol=REL)


def test_gnmax_ls_bounds_do_not_depend_on_how_far_they_are_computed():
    """LS^(0), LS^(1) with max_distance = 1 equal the first two of max_distance = 12 (every histogram of 12
    votes over 4 classes, σ = 1.2, λ = 5). Kills local_sensitivity_gnmax 119 (left range from lo[-2])."""
    for hist in itertools.product(range(13), repeat=4):
        if sum(hist) != 12:
            continue
        counts = np.array(hist)
        np.testing.assert_array_equal(local_sensitivity_gnmax(counts, 1.2, 5.0, 1),
                                      local_sensitivity_gnmax(counts, 1.2, 5.0, 12)[:2])


def _stage(num_queries=20):
    counts = np.tile([240, 6, 4, 0], (num_queries, 1))
    return GNMax(40.0), counts, np.zeros(num_queries, dtype=np.int64)


def test_release_adds_ss_sigma_s_times_the_sources_draw():
    """released = ε_λ(D) + SS·σ_s·z with z the given source's first N(0, 1) draw (a twin source, seed 1,
    z = +1.10, so the sum is positive and not clipped at 0); δ is reported; no source still releases.

    Kills release_epsilon 104 (`-`), 105 (`/ z`), 106 (`SS/σ_s`), 126 (δ None), 97 (None source kept).
    """
    release = release_epsilon([_stage()], 1e-5, sigma_s=15.0, rng=RandomSource(1))
    z = RandomSource(1).normal(1)[0]
    assert z > 1 and release.noise_std > 0
    assert release.released_rdp == pytest.approx(
        release.data_dependent_rdp + release.smooth_sensitivity * 15.0 * z, rel=REL)
    assert release.delta == 1e-5
    assert release_epsilon([_stage()], 1e-5).data_dependent_rdp == release.data_dependent_rdp


def test_release_checks_each_round():
    """Kills release_epsilon 4, 5 (δ = 1), 9 (message), 22 (type name), 26, 29, 31, 32 (shape checks),
    58, 59 (teacher counts in the message)."""
    aggregator, counts, labels = _stage()
    with pytest.raises(ValueError, match=_exact('delta must be in (0, 1), got 1.0')):
        release_epsilon([_stage()], 1.0)
    with pytest.raises(ValueError, match=_exact('need at least one round of answers')):
        release_epsilon([], 1e-5)
    with pytest.raises(TypeError, match=_exact('smooth sensitivity is implemented for GNMax and ConfidentGNMax, '
                                               'got LNMax')):
        release_epsilon([(LNMax(0.1), counts, labels)], 1e-5)
    for bad in (counts[0], counts[:0]):
        with pytest.raises(ValueError, match=_exact(f'counts must be a non-empty (queries, classes) array, '
                                                    f'got shape {bad.shape}')):
            release_epsilon([(aggregator, bad, labels[:len(bad)])], 1e-5)
    one = release_epsilon([_stage(1)], 1e-5, rng=RandomSource(1))
    assert one.smooth_sensitivity > 0
    with pytest.raises(ValueError, match=_exact('all rounds need the same number of teachers, got 250 and 125')):
        release_epsilon([_stage(), (aggregator, counts // 2, labels)], 1e-5)


def test_release_logs_its_figures(caplog):
    """The INFO line gives order, RDP, released RDP, GNSS cost and ε. Kills release_epsilon 157-171."""
    with caplog.at_level(logging.INFO):
        release = release_epsilon([_stage()], 1e-5, rng=RandomSource(3))
    expected = ('smooth-sensitivity release at order %g: RDP %.4g -> %.4g (+ GNSS %.4g), eps %.4g'
                % (release.order, release.data_dependent_rdp, release.released_rdp, release.gnss_rdp,
                   release.epsilon))
    assert expected in caplog.messages


def test_reachable_q_range_follows_the_moved_votes():
    """Bounds on log q at distance k (module docstring): k votes from the top to the runner-up shrink its gap
    by 2k and the others' by k, Σ_j Φ̄((Δ_j - shrink_j)/(√2σ)); once 2k ≥ Δ_min (k > 0) only the cap
    1 - 1/m bounds it; every gap grows by at most 2k, which bounds q below. Written here for histograms
    with Δ_min = 0, 2, 3 at σ = 1 (so the uncapped values stay below the cap 0.9), and checked to contain
    log q of every histogram of 12 votes over 3 classes within distance k (enumerated, σ = 1).

    Kills _reachable_log_q 37-41 (the cap rule: k ≥ 0, k > 1, 2/k, 3k, 2k > Δ) and 52, 53 (2/k, 3k below).
    """
    sigma, scale = 1.0, math.sqrt(2.0)
    k = np.arange(5.0)
    for counts in ([10, 10] + [0] * 8, [10, 8] + [0] * 8, [10, 7] + [0] * 8):
        counts = np.array(counts, dtype=np.float64)
        gaps = np.sort(counts.max() - np.delete(counts, np.argmax(counts)))
        cap = math.log(0.9)
        shrink = np.array([[2 * kk] + [kk] * (len(gaps) - 1) for kk in k])
        high = np.log(stats.norm.sf((gaps - shrink) / scale).sum(axis=1))
        high = np.where((k > 0) & (2 * k >= gaps[0]), cap, np.minimum(high, cap))
        low = np.minimum(np.log(stats.norm.sf((gaps + 2 * k[:, None]) / scale).sum(axis=1)), cap)
        got_low, got_high = _reachable_log_q(counts, sigma, k)
        np.testing.assert_allclose(got_high, high, rtol=REL)
        np.testing.assert_allclose(got_low, low, rtol=REL)
    hists = np.array([h for h in itertools.product(range(13), repeat=3) if sum(h) == 12])
    log_q = np.array([log_q_gnmax(h, sigma) for h in hists])
    distance = np.abs(hists[:, None, :] - hists[None, :, :]).sum(axis=-1) // 2
    for i, h in enumerate(hists):
        low, high = _reachable_log_q(h.astype(np.float64), sigma, np.arange(4.0))
        for kk in range(4):
            near = log_q[distance[i] <= kk]
            assert low[kk] <= near.min() + 1e-12 and near.max() <= high[kk] + 1e-12, (h, kk)
