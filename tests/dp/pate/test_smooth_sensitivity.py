"""Smooth-sensitivity release of PATE's data-dependent RDP (Papernot et al. 2018, Sec. 4.3, App. B-C).

The local-sensitivity bounds are checked against brute force: for small
ensembles every histogram within distance k is enumerated, and the true
LS^(k) = max over them and their neighbours of the change in the RDP.
"""

import itertools
import math

import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant

from tfpriv.dp.pate.aggregation import ConfidentGNMax, GNMax, LNMax, vote_counts
from tfpriv.dp.pate.analysis import analyze, data_dependent_rdp, log_q_gnmax, rdp_gnmax, rdp_threshold
from tfpriv.dp.pate.smooth_sensitivity import (DEFAULT_BETA, DEFAULT_ORDER, DEFAULT_SIGMA_S, beta_for_order,
                                               gnss_rdp, local_sensitivity_gnmax, local_sensitivity_threshold,
                                               release_epsilon, sigma_s_for, smooth_sensitivity)
from tfpriv.rng import RandomSource

UNANIMOUS = np.array([250, 0, 0, 0, 0, 0, 0, 0, 0, 0])
SPLIT = np.array([126, 124, 0, 0, 0, 0, 0, 0, 0, 0])


def _histograms(num_teachers, num_classes):
    """Every vote histogram of `num_teachers` votes over `num_classes` classes (stars and bars)."""
    for bars in itertools.combinations(range(num_teachers + num_classes - 1), num_classes - 1):
        yield np.diff(np.r_[-1, bars, num_teachers + num_classes - 1]) - 1


def _true_local_sensitivities(num_teachers, num_classes, rdp_of, max_distance):
    """(histograms, values, true LS^(k) for k = 0..max_distance) by enumeration."""
    hists = np.array(list(_histograms(num_teachers, num_classes)))
    values = np.array([rdp_of(h) for h in hists])
    distance = np.abs(hists[:, None, :] - hists[None, :, :]).sum(axis=-1) // 2  # votes to move
    ls = np.array([np.max(np.abs(values[distance[i] == 1] - values[i])) for i in range(len(hists))])
    true = np.array([[ls[distance[i] <= k].max() for k in range(max_distance + 1)] for i in range(len(hists))])
    return hists, values, true


@pytest.mark.parametrize('num_teachers,num_classes,sigma,order', [
    (10, 2, 1.0, 2.0), (10, 3, 1.0, 2.0), (10, 3, 1.5, 3.0), (12, 4, 2.0, 2.0), (10, 3, 0.7, 4.0),
    (12, 4, 1.2, 5.0)])
def test_gnmax_bounds_dominate_brute_force(num_teachers, num_classes, sigma, order):
    rdp_of = lambda h: rdp_gnmax(log_q_gnmax(h, sigma), sigma, [order])[0]  # noqa: E731
    hists, values, true = _true_local_sensitivities(num_teachers, num_classes, rdp_of, num_teachers)
    assert values.max() == pytest.approx(order / sigma ** 2) and values.min() < 0.9 * values.max()  # non-trivial
    assert true.max() > 0
    for i in range(len(hists)):
        bound = local_sensitivity_gnmax(hists[i], sigma, order, num_teachers)
        assert np.all(bound >= true[i] - 1e-12), (hists[i], bound, true[i])
        assert np.all(np.diff(bound[1:]) >= 0) and np.all(bound <= order / sigma ** 2 + 1e-12)


@pytest.mark.parametrize('num_teachers,num_classes,threshold,sigma_threshold,order', [
    (10, 3, 5.0, 1.0, 2.0), (10, 3, 7.0, 1.5, 3.0), (12, 4, 8.0, 2.0, 2.5)])
def test_threshold_bounds_dominate_brute_force(num_teachers, num_classes, threshold, sigma_threshold, order):
    rdp_of = lambda h: rdp_threshold(h.max(), threshold, sigma_threshold, [order])[0]  # noqa: E731
    hists, values, true = _true_local_sensitivities(num_teachers, num_classes, rdp_of, num_teachers)
    assert true.max() > 0
    for i in range(len(hists)):
        for teachers in (None, num_teachers):
            bound = local_sensitivity_threshold(hists[i].max(), threshold, sigma_threshold, order, num_teachers,
                                                num_teachers=teachers)
            assert np.all(bound >= true[i] - 1e-12), (hists[i], bound, true[i])
    # For a histogram whose max count v can move both ways, the distance-0 bound is the exact LS.
    v = num_teachers // 2 + 1
    f = [rdp_threshold(w, threshold, sigma_threshold, [order])[0] for w in (v - 1, v, v + 1)]
    exact = max(abs(f[1] - f[0]), abs(f[2] - f[1]))
    assert local_sensitivity_threshold(v, threshold, sigma_threshold, order, 0, num_teachers)[0] == pytest.approx(exact)
    target = np.r_[v, num_teachers - v, np.zeros(num_classes - 2, dtype=int)]  # neighbours reach v - 1 and v + 1
    assert true[np.flatnonzero((hists == target).all(axis=1))[0], 0] == pytest.approx(exact)


def test_unanimous_and_split_histograms_at_mnist_scale():
    sigma, order = 40.0, DEFAULT_ORDER
    ceiling = order / sigma ** 2  # data-independent RDP of one GNMax answer
    unanimous = local_sensitivity_gnmax(UNANIMOUS, sigma, order, 250)
    assert unanimous[0] < 1e-3 * ceiling  # one moved vote barely changes a tiny q
    assert np.all(np.diff(unanimous) >= 0) and unanimous[60] > 50 * unanimous[0]
    assert unanimous.max() <= ceiling
    # Split votes: the RDP is pinned at the ceiling for the histogram and all its neighbours, so LS^(0) = 0;
    # it reaches the largest local sensitivity after fewer moved votes than the unanimous histogram.
    assert rdp_gnmax(log_q_gnmax(SPLIT, sigma), sigma, [order])[0] == pytest.approx(ceiling)
    split = local_sensitivity_gnmax(SPLIT, sigma, order, 250)
    assert split[0] == 0.0
    assert split.max() == pytest.approx(unanimous.max())  # both reach the transition plateau
    assert np.argmax(split >= 0.99 * split.max()) < np.argmax(unanimous >= 0.99 * unanimous.max())
    assert split.max() > 0.05 * ceiling


def test_smooth_sensitivity_is_discounted_max():
    ls = [0.1, 0.5, 0.9, 1.0]
    assert smooth_sensitivity(ls, 0.5) == pytest.approx(0.9 * math.exp(-1.0))  # max(0.1, .303, .331, .223)
    assert smooth_sensitivity(ls, 0.0) == 1.0
    assert smooth_sensitivity(ls, 10.0) == 0.1
    for bad, match in [([], 'non-empty'), ([0.1, -1.0], '>= 0'), ([np.nan], 'finite')]:
        with pytest.raises(ValueError, match=match):
            smooth_sensitivity(bad, 0.5)
    with pytest.raises(ValueError, match='beta must be'):
        smooth_sensitivity(ls, -0.1)


def test_gnss_rdp_matches_theorem_and_is_monotone():
    beta, sigma_s, order = DEFAULT_BETA, DEFAULT_SIGMA_S, DEFAULT_ORDER
    theorem = order * math.exp(2 * beta) / sigma_s ** 2 + (beta * order - 0.5 * math.log(1 - 2 * beta * order)) / (
        order - 1)
    assert gnss_rdp(order, beta, sigma_s) == pytest.approx(theorem, rel=1e-12)  # Thm. 23 is increasing here
    orders = np.linspace(1.01, 1 / (2 * beta) - 1e-3, 60)
    values = np.array([gnss_rdp(lam, beta, sigma_s) for lam in orders])
    assert np.all(np.diff(values) >= -1e-9 * values[:-1])
    for lam in orders:
        assert gnss_rdp(lam, beta, sigma_s) <= lam * math.exp(2 * beta) / sigma_s ** 2 + (
            beta * lam - 0.5 * math.log(1 - 2 * beta * lam)) / (lam - 1) + 1e-12
    sigmas = [1.0, 5.0, 15.0, 50.0]
    costs = [gnss_rdp(order, beta, s) for s in sigmas]
    assert all(a > b for a, b in zip(costs, costs[1:]))
    assert gnss_rdp(5.0, 0.0, 2.0) == pytest.approx(5.0 / 4.0)  # β = 0: the Gaussian mechanism


@pytest.mark.parametrize('order,beta,sigma_s,match', [
    (16.0, 0.0329, 15.0, r'order < 1/\(2\*beta\)'), (1.0, 0.0329, 15.0, 'order must be'),
    (np.inf, 0.0, 15.0, 'order must be'), (14.0, -0.1, 15.0, 'beta must be'), (14.0, 0.0329, 0.0, 'sigma_s must be'),
    (14.0, np.nan, 15.0, 'beta must be')])
def test_gnss_rdp_rejects_invalid_parameters(order, beta, sigma_s, match):
    with pytest.raises(ValueError, match=match):
        gnss_rdp(order, beta, sigma_s)


def test_parameter_helpers():
    assert beta_for_order(14.0) == pytest.approx(0.0329, abs=5e-5)
    assert gnss_rdp(14.0, beta_for_order(14.0), 15.0) > 0
    with pytest.raises(ValueError, match='fraction'):
        beta_for_order(14.0, 0.5)
    ss = 0.01
    cost = lambda s: 14 * math.exp(2 * 0.0329) / s ** 2 + 2 * ss * s  # noqa: E731
    best = sigma_s_for(14.0, 0.0329, ss)
    assert cost(best) < min(cost(best * 0.99), cost(best * 1.01))


def test_input_validation():
    with pytest.raises(ValueError, match='one vote histogram'):
        local_sensitivity_gnmax(np.array([[1, 2]]), 40.0, 14.0, 3)
    with pytest.raises(ValueError, match='max_distance'):
        local_sensitivity_gnmax(UNANIMOUS, 40.0, 14.0, -1)
    with pytest.raises(ValueError, match='sigma must be'):
        local_sensitivity_gnmax(UNANIMOUS, 0.0, 14.0, 3)
    with pytest.raises(ValueError, match='max_count'):
        local_sensitivity_threshold(2.5, 200.0, 150.0, 14.0, 3)
    with pytest.raises(ValueError, match='num_teachers'):
        local_sensitivity_threshold(250, 200.0, 150.0, 14.0, 3, num_teachers=100)


def _mostly_unanimous_votes(rng, num_queries=300, num_teachers=250, num_classes=10):
    """80% of the queries with 1% of teachers voting at random, the rest with 30%."""
    truth = rng.uniform_mod(num_classes, num_queries)
    noisy = np.where(rng.uniform01(num_queries) < 0.8, 0.01, 0.3)
    right = rng.uniform01((num_teachers, num_queries)) >= noisy
    return vote_counts(np.where(right, truth, rng.uniform_mod(num_classes, (num_teachers, num_queries))), num_classes)


def test_release_epsilon_confident_gnmax():
    counts = _mostly_unanimous_votes(RandomSource(0))
    aggregator = ConfidentGNMax(200.0, 150.0, 40.0, RandomSource(1))
    labels = aggregator(counts)
    delta = 1e-5
    result = release_epsilon([(aggregator, counts, labels)], delta, rng=RandomSource(2))
    assert result == release_epsilon([(aggregator, counts, labels)], delta, rng=RandomSource(2))  # reproducible
    assert (result.order, result.beta, result.sigma_s) == (DEFAULT_ORDER, DEFAULT_BETA, DEFAULT_SIGMA_S)
    rdp = data_dependent_rdp(aggregator, counts, labels, [DEFAULT_ORDER])[0]
    assert result.data_dependent_rdp == pytest.approx(rdp)
    ls = sum(local_sensitivity_threshold(row.max(), 200.0, 150.0, DEFAULT_ORDER, 250, num_teachers=250)
             for row in counts)
    ls = ls + sum(local_sensitivity_gnmax(row, 40.0, DEFAULT_ORDER, 250) for row in counts[labels != -1])
    assert result.smooth_sensitivity == pytest.approx(smooth_sensitivity(ls, DEFAULT_BETA))
    assert 0 < result.smooth_sensitivity < 0.05
    assert result.noise_std == pytest.approx(result.smooth_sensitivity * DEFAULT_SIGMA_S)
    assert abs(result.released_rdp - rdp) <= 6 * result.noise_std
    assert result.gnss_rdp == pytest.approx(gnss_rdp(DEFAULT_ORDER, DEFAULT_BETA, DEFAULT_SIGMA_S))
    to_eps = lambda r: rdp_privacy_accountant.compute_epsilon([DEFAULT_ORDER], [r], delta)[0]  # noqa: E731
    assert result.epsilon == pytest.approx(to_eps(result.released_rdp + result.gnss_rdp))
    assert result.expected_epsilon == pytest.approx(to_eps(rdp + result.gnss_rdp))
    assert result.data_dependent_epsilon == pytest.approx(to_eps(rdp))
    # The released ε is a little above the un-noised one and far below the data-independent one.
    report = analyze(aggregator, counts, labels, delta)
    assert result.data_dependent_epsilon < result.epsilon < result.data_dependent_epsilon + 0.5
    assert result.epsilon < report.data_independent_eps / 1.5
    assert result.data_dependent_epsilon >= report.data_dependent_eps  # one fixed order vs the best order


def test_release_epsilon_gnmax_and_errors():
    counts = _mostly_unanimous_votes(RandomSource(3), num_queries=50)
    aggregator = GNMax(40.0, RandomSource(4))
    labels = aggregator(counts)
    result = release_epsilon([(aggregator, counts, labels)], 1e-5, rng=RandomSource(5))
    assert result.smooth_sensitivity > 0 and result.epsilon > 0
    with pytest.raises(TypeError, match='GNMax and ConfidentGNMax'):
        release_epsilon([(LNMax(0.05), counts, labels)], 1e-5, rng=RandomSource(5))
    with pytest.raises(ValueError, match='delta'):
        release_epsilon([(aggregator, counts, labels)], 0.0, rng=RandomSource(5))
    with pytest.raises(ValueError, match='order < 1/'):
        release_epsilon([(aggregator, counts, labels)], 1e-5, order=20.0, rng=RandomSource(5))


def test_release_epsilon_sums_rounds():
    """Two rounds: RDP at the order and local sensitivities add up, as one example moves a vote in each."""
    first_counts = _mostly_unanimous_votes(RandomSource(6), 80)
    second_counts = _mostly_unanimous_votes(RandomSource(7), 60)
    first = ConfidentGNMax(200.0, 150.0, 40.0, RandomSource(8))
    second = ConfidentGNMax(100.0, 40.0, 30.0, RandomSource(9))
    stages = [(first, first_counts, first(first_counts)), (second, second_counts, second(second_counts))]
    both = release_epsilon(stages, 1e-5, rng=RandomSource(10))
    alone = [release_epsilon([stage], 1e-5, rng=RandomSource(10)) for stage in stages]
    assert both.data_dependent_rdp == pytest.approx(sum(a.data_dependent_rdp for a in alone))
    assert max(a.smooth_sensitivity for a in alone) < both.smooth_sensitivity
    assert both.smooth_sensitivity <= sum(a.smooth_sensitivity for a in alone) + 1e-12
    with pytest.raises(ValueError, match='same number of teachers'):
        release_epsilon([stages[0], (second, second_counts[:, :10] // 2, stages[1][2])], 1e-5, rng=RandomSource(10))
    with pytest.raises(ValueError, match='at least one'):
        release_epsilon([], 1e-5)
