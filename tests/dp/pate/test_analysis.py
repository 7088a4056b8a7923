"""PATE privacy analysis against the papers' formulas, evaluated by hand on small vote histograms.

Papernot et al. 2017 (LNMax): Thm. 3 (q bound) and Thm. 2 (log-moment bound).
Papernot et al. 2018 (GNMax): Prop. 7 (q bound), Thm. 6 with Prop. 10 (RDP bound).
"""

import math

import dp_accounting
import numpy as np
import pytest

from tfpriv.dp.pate.aggregation import ConfidentGNMax, GNMax, LNMax
from tfpriv.dp.pate.analysis import (ORDERS, analyze, log_q_gnmax, perform_analysis, q_lnmax, rdp_gnmax,
                                     rdp_lnmax, rdp_threshold)

UNANIMOUS = np.array([250, 0, 0, 0, 0, 0, 0, 0, 0, 0])
SPLIT = np.array([125, 125, 0, 0, 0, 0, 0, 0, 0, 0])


def test_lnmax_unanimous_matches_papernot_2017():
    gamma = 0.05
    q = 9 * (2 + gamma * 250) / (4 * math.exp(gamma * 250))  # Thm. 3, nine classes at gap 250
    assert q_lnmax(UNANIMOUS, gamma) == pytest.approx(q, rel=1e-12)
    for l in (1, 2, 8, 32):  # Thm. 2: α(l) = log((1-q)((1-q)/(1-e^{2γ}q))^l + q e^{2γl}); RDP = α(l)/l
        moment = math.log((1 - q) * ((1 - q) / (1 - math.exp(2 * gamma) * q)) ** l + q * math.exp(2 * gamma * l))
        moment = min(moment, 2 * gamma ** 2 * l * (l + 1), 2 * gamma * l)
        assert rdp_lnmax(q, gamma, [l + 1.0])[0] == pytest.approx(moment / l, rel=1e-9)


def test_lnmax_split_votes_fall_back_to_data_independent():
    gamma = 0.05
    q = q_lnmax(SPLIT, gamma)
    assert q == pytest.approx(0.5 + 8 * (2 + 6.25) / (4 * math.exp(6.25)))
    # q is above (e^{2γ}-1)/(e^{4γ}-1) ≈ 0.475: Thm. 2 does not apply; α(l) = min(2γ²l(l+1), 2γl).
    for l in (1, 4, 50):
        assert rdp_lnmax(q, gamma, [l + 1.0])[0] == pytest.approx(min(2 * gamma ** 2 * (l + 1), 2 * gamma))


def test_gnmax_unanimous_matches_papernot_2018():
    sigma = 40.0
    counts = np.array([200, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    q = 9 * 0.5 * math.erfc(200 / (2 * sigma))  # Prop. 7
    assert log_q_gnmax(counts, sigma) == pytest.approx(math.log(q), rel=1e-9)
    mu2 = sigma * math.sqrt(-math.log(q))  # Prop. 10
    mu1 = mu2 + 1
    eps1, eps2 = mu1 / sigma ** 2, mu2 / sigma ** 2
    a = (1 - q) / (1 - (q * math.exp(eps2)) ** ((mu2 - 1) / mu2))
    b = math.exp(eps1) / q ** (1 / (mu1 - 1))
    for lam in (2.0, 10.0, 50.0):
        assert lam < mu1
        expected = min(math.log((1 - q) * a ** (lam - 1) + q * b ** (lam - 1)) / (lam - 1), lam / sigma ** 2)
        assert rdp_gnmax(math.log(q), sigma, [lam])[0] == pytest.approx(expected, rel=1e-9)
    assert rdp_gnmax(math.log(q), sigma, [10.0])[0] < 10.0 / sigma ** 2 / 5  # far below data-independent


def test_gnmax_split_votes_fall_back_to_data_independent():
    sigma = 40.0
    log_q = log_q_gnmax(SPLIT, sigma)
    assert log_q == pytest.approx(math.log(0.5 + 8 * 0.5 * math.erfc(125 / 80)), rel=1e-9)
    np.testing.assert_allclose(rdp_gnmax(log_q, sigma, ORDERS), ORDERS / sigma ** 2)


def test_threshold_check():
    sigma1 = 150.0
    # At the threshold the check is a fair coin: no data-dependent gain, RDP = λ/(2σ1²).
    np.testing.assert_allclose(rdp_threshold(200, 200, sigma1, ORDERS), ORDERS / (2 * sigma1 ** 2))
    # Far from the threshold, the outcome is nearly certain and the RDP much smaller.
    assert np.all(rdp_threshold(250, 0, 20.0, ORDERS[:20]) < ORDERS[:20] / (2 * 20.0 ** 2) / 10)


def test_perform_analysis_agreeing_teachers():
    preds = np.zeros((250, 100), dtype=np.int64)  # all 250 teachers vote 0 on 100 queries
    dependent, independent = perform_analysis(preds, np.arange(100), 0.05, 1e-5)
    assert dependent < independent  # the seed's assertion
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(20.0), 200))
    assert independent == pytest.approx(acc.get_epsilon(1e-5))
    split = np.concatenate([np.zeros((125, 100)), np.ones((125, 100))]).astype(np.int64)
    assert perform_analysis(split, np.arange(100), 0.05, 1e-5)[0] > dependent


def test_analyze_data_independent_is_dp_accounting_composition():
    counts = np.tile(UNANIMOUS, (50, 1))
    labels = np.array([0] * 30 + [-1] * 20)
    agg = ConfidentGNMax(200, 150.0, 40.0)
    report = analyze(agg, counts, labels, 1e-5)
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(150.0), 50))
    acc.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(40.0 / math.sqrt(2)), 30))
    assert report.data_independent_eps == pytest.approx(acc.get_epsilon(1e-5))
    assert report.data_dependent_eps < report.data_independent_eps
    assert (report.num_queries, report.num_answered) == (50, 30)
    gn = analyze(GNMax(40.0), counts, np.zeros(50, dtype=np.int64), 1e-5)
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(40.0 / math.sqrt(2)), 50))
    assert gn.data_independent_eps == pytest.approx(acc.get_epsilon(1e-5))


def test_analysis_rejects_bad_input():
    with pytest.raises(ValueError, match='delta'):
        analyze(LNMax(0.1), np.tile(UNANIMOUS, (2, 1)), np.zeros(2, dtype=np.int64), 0.0)
    with pytest.raises(ValueError, match='differ in length'):
        analyze(LNMax(0.1), np.tile(UNANIMOUS, (2, 1)), np.zeros(3, dtype=np.int64), 1e-5)
