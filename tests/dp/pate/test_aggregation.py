"""Vote counting and the noisy aggregators (statistical checks at 5 standard errors)."""

import math

import numpy as np
import pytest
from scipy import stats

from tfpriv.dp.pate.aggregation import ConfidentGNMax, GNMax, LNMax, make_aggregator, vote_counts
from tfpriv.dp.pate.analysis import log_q_gnmax, q_lnmax
from tfpriv.rng import RandomSource

Z = 5.0
N = 20_000


def test_vote_counts():
    preds = np.array([[0, 1, 2], [0, 1, 1], [3, 1, 1]])  # 3 teachers, 3 queries
    expected = np.array([[2, 0, 0, 1], [0, 3, 0, 0], [0, 2, 1, 0]])
    np.testing.assert_array_equal(vote_counts(preds, 4), expected)
    with pytest.raises(ValueError, match=r'class labels in \[0, 4\)'):
        vote_counts(np.array([[4]]), 4)
    with pytest.raises(ValueError, match='2-D integer'):
        vote_counts(np.zeros(3, dtype=np.int64))


def _error_rate(aggregator, row):
    labels = aggregator(np.tile(row, (N, 1)))
    return np.mean(labels != np.argmax(row))


@pytest.mark.parametrize('row', [np.array([30, 22, 5, 0]), np.array([12, 10, 10, 8])])
def test_lnmax_errs_no_more_than_papernot_bound(row):
    gamma = 0.2
    rate = _error_rate(LNMax(gamma, RandomSource(1)), row)
    bound = q_lnmax(row, gamma)
    assert rate <= bound + Z * math.sqrt(bound * (1 - bound) / N)
    assert rate > 0  # the noise is really there


def test_gnmax_error_rate_matches_two_class_closed_form():
    # With two classes, Pr[argmax ≠ j*] = Pr[N(0, 2σ²) > Δ] = ½ erfc(Δ/(2σ)) exactly (Prop. 7 is tight).
    sigma, row = 5.0, np.array([20, 12])
    p = 0.5 * math.erfc(8 / (2 * sigma))
    rate = _error_rate(GNMax(sigma, RandomSource(2)), row)
    assert abs(rate - p) < Z * math.sqrt(p * (1 - p) / N)
    assert math.exp(log_q_gnmax(row, sigma)) == pytest.approx(p)


def test_confident_gnmax_threshold_pass_rate():
    threshold, sigma1 = 25.0, 4.0
    row = np.array([27, 3, 0])
    labels = ConfidentGNMax(threshold, sigma1, 2.0, RandomSource(3))(np.tile(row, (N, 1)))
    p = stats.norm.sf((threshold - 27) / sigma1)
    answered = labels != -1
    assert abs(answered.mean() - p) < Z * math.sqrt(p * (1 - p) / N)
    assert set(np.unique(labels)) <= {-1, 0, 1, 2}
    assert np.mean(labels[answered] == 0) > 0.99


def test_make_aggregator_and_bad_parameters():
    assert isinstance(make_aggregator('lnmax', 0.1), LNMax)
    assert isinstance(make_aggregator('confident-gnmax', 40, 200, 150), ConfidentGNMax)
    with pytest.raises(ValueError, match="'lnmax', 'gnmax' or 'confident-gnmax'"):
        make_aggregator('rnmax', 1.0)
    with pytest.raises(ValueError, match='noise_eps must be a positive'):
        LNMax(0.0)
    with pytest.raises(ValueError, match='sigma_threshold'):
        ConfidentGNMax(10, -1, 1)
    with pytest.raises(ValueError, match='counts must be'):
        GNMax(1.0)(np.array([1, 2, 3]))
