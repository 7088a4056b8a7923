"""Tests of SmpcAggregator against the insecure PlainAggregator."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.crypto.secagg import PlainAggregator, SecureAggregator
from tfpriv.crypto.smpc.secagg import SmpcAggregator
from tfpriv.rng import RandomSource


def _updates(rng, clients, scale=1.0):
    return [[(scale * rng.normal(size=(4, 3))).astype(np.float32),
             (scale * rng.normal(size=(3,))).astype(np.float32)] for _ in range(clients)]


@pytest.mark.parametrize('parties', [2, 3, 5])
@settings(max_examples=10, deadline=None)
@given(clients=st.integers(1, 6), seed=st.integers(0, 1000),
       scale=st.sampled_from([1e-3, 1.0, 1e4]))
def test_matches_plain_weighted_average(parties, clients, seed, scale):
    rng = np.random.default_rng(seed)
    updates = _updates(rng, clients, scale)
    weights = rng.uniform(0.0, 100.0, size=clients) + 0.1
    expected, _ = PlainAggregator().aggregate(updates, weights)
    got, stats = SmpcAggregator(parties, rng=RandomSource(seed=seed)).aggregate(updates, weights)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=clients * 2.0**-30 + 1e-6 * scale)
    assert stats.scheme == 'smpc' and stats.num_clients == clients
    size = 4 * 3 + 3
    assert stats.bytes_per_client == parties * 8 * size
    assert stats.bytes_total == (clients * parties + parties) * 8 * size
    assert stats.messages == clients * parties + parties
    assert stats.extra['rounds'] == 2 and stats.seconds > 0


def test_is_a_secure_aggregator_named_smpc():
    assert isinstance(SmpcAggregator(), SecureAggregator) and SmpcAggregator.name == 'smpc'


def test_equal_weights_by_default():
    updates = _updates(np.random.default_rng(0), 3)
    got, _ = SmpcAggregator(rng=RandomSource(seed=1)).aggregate(updates)
    np.testing.assert_allclose(got[0], np.mean([u[0] for u in updates], axis=0), atol=1e-6)


def test_bad_inputs_raise_clear_errors():
    updates = _updates(np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match='no client updates'):
        SmpcAggregator().aggregate([])
    with pytest.raises(ValueError, match='shapes'):
        SmpcAggregator().aggregate([updates[0], updates[1][:1]])
    with pytest.raises(ValueError, match='weights'):
        SmpcAggregator().aggregate(updates, [1.0, -1.0])
    with pytest.raises(ValueError, match='client 1: .*fixed-point range'):
        SmpcAggregator().aggregate([updates[0], [u * 1e10 for u in updates[1]]], [0.5, 0.5])
    with pytest.raises(ValueError, match='at least 2'):
        SmpcAggregator(num_parties=1)


def test_each_client_shares_with_its_own_randomness(monkeypatch):
    """Two clients with the same update: at every party their two shares differ in every
    coordinate (equal with probability 2^-64 each). Had the clients drawn the same random
    shares, parties 0..n-2 would hold equal shares and party n-1 two shares differing by the
    difference of the updates: one party could compare clients. The shares are read from
    what `SharedTensor.share` returned to the aggregator (recorded here)."""
    from tfpriv.crypto.smpc.tensor import SharedTensor
    shared = []
    real = SharedTensor.share.__func__

    def record(cls, *args, **kwargs):
        tensor = real(cls, *args, **kwargs)
        shared.append([np.array(s) for s in tensor._shares()])  # pylint: disable=protected-access
        return tensor

    monkeypatch.setattr(SharedTensor, 'share', classmethod(record))
    update = [np.linspace(-1.0, 1.0, 300)]
    SmpcAggregator(3, rng=RandomSource(seed=28)).aggregate([update, update])
    assert len(shared) == 2 and all(len(s) == 3 for s in shared)
    for first, second in zip(*shared):
        assert np.count_nonzero(first == second) == 0
