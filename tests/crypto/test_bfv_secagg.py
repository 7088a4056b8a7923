"""RlweAggregator against the plaintext reference, with and without threshold decryption."""

import numpy as np
import pytest

from tfpriv.crypto.bfv.params import preset
from tfpriv.crypto.bfv.secagg import RlweAggregator, max_clients
from tfpriv.crypto.secagg import PlainAggregator, SecureAggregator
from tfpriv.rng import RandomSource


def _updates(num, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(5,)),
             rng.normal(size=(2, 3, 4)).astype(np.float32)] for _ in range(num)]


@pytest.mark.parametrize('threshold', [None, 2])
def test_weighted_average_matches_plain(threshold):
    updates, weights = _updates(4), [10, 1, 5, 0.5]
    expected, _ = PlainAggregator().aggregate(updates, weights)
    agg = RlweAggregator('bfv-4096', bound=8.0, threshold=threshold, rng=RandomSource(30))
    assert isinstance(agg, SecureAggregator) and agg.name == 'rlwe'
    got, stats = agg.aggregate(updates, weights)
    assert [(a.shape, a.dtype) for a in got] == [(a.shape, a.dtype) for a in expected]
    precision = stats.extra['precision_bits']
    for a, b in zip(got, expected):
        tolerance = 4 * 2.0 ** -(precision + 1) + 1e-6 * (a.dtype == np.float32)
        assert np.max(np.abs(a.astype(np.float64) - b)) <= tolerance
    assert stats.num_clients == 4 and stats.extra['noise_budget_bits'] > 0
    assert stats.bytes_per_client <= 11 * 4096 + 200


def test_threshold_default_preset_smudges_more():
    updates = [[np.random.default_rng(i).normal(size=50)] for i in range(10)]
    expected, _ = PlainAggregator().aggregate(updates)
    agg = RlweAggregator(threshold=6, rng=RandomSource(35))
    assert agg.params == preset('bfv-4096-threshold')
    got, stats = agg.aggregate(updates)
    assert np.max(np.abs(got[0] - expected[0])) < 1e-5
    assert stats.extra['smudging_bits'] > 14


def test_server_side_integer_weights():
    updates, weights = _updates(3, seed=1), [3, 1, 7]
    expected, _ = PlainAggregator().aggregate(updates, weights)
    agg = RlweAggregator('bfv-4096', bound=8.0, server_weights=True, rng=RandomSource(33))
    got, stats = agg.aggregate(updates, weights)
    for a, b in zip(got, expected):
        assert np.max(np.abs(a.astype(np.float64) - b)) <= 1e-5
    with pytest.raises(ValueError, match='integers'):
        agg.aggregate(updates, [1.5, 1, 1])
    with pytest.raises(ValueError, match='noise budget'):
        agg.aggregate(updates, [10**6, 1, 1])


def test_many_clients_up_to_the_limit():
    params = preset('toy', insecure=True)
    limit = max_clients(params)
    updates = [[np.full(3, 0.25)]] * 40
    got, stats = RlweAggregator(params, bound=1.0, rng=RandomSource(31)).aggregate(updates)
    assert np.allclose(got[0], 0.25, atol=40 * 2.0 ** -(stats.extra['precision_bits'] + 1))
    with pytest.raises(ValueError, match='noise budget'):
        RlweAggregator(params, bound=1.0).aggregate([[np.zeros(1)]] * (limit + 1))


def test_bad_inputs_are_refused():
    agg = RlweAggregator('bfv-4096', bound=1.0, rng=RandomSource(32))
    with pytest.raises(ValueError, match='NaN'):
        agg.aggregate([[np.array([np.nan])], [np.array([0.0])]])
    with pytest.raises(ValueError, match='shapes'):
        agg.aggregate([[np.zeros(2)], [np.zeros(3)]])
    with pytest.raises(ValueError, match='bound'):
        agg.aggregate([[np.array([5.0])], [np.array([0.0])]])
    with pytest.raises(ValueError, match='threshold'):
        RlweAggregator('bfv-4096', threshold=3).aggregate([[np.zeros(1)]] * 2)
    with pytest.raises(ValueError, match='128-bit|insecure'):
        RlweAggregator('toy')


def test_keras_model_weights_round_trip():
    from tfpriv.model import build_model
    model = build_model('mlp', (28, 28, 1))
    base = model.get_weights()
    rng = np.random.default_rng(3)
    updates = [[w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in base]
               for _ in range(3)]
    expected, _ = PlainAggregator().aggregate(updates, [1, 2, 3])
    got, stats = RlweAggregator(threshold=2, rng=RandomSource(34)).aggregate(updates, [1, 2, 3])
    assert [(a.shape, a.dtype) for a in got] == [(w.shape, w.dtype) for w in base]
    assert max(np.max(np.abs(a - b)) for a, b in zip(got, expected)) < 1e-5
    model.set_weights(got)
