"""Tests of tfpriv.crypto.shamir.secagg.ShamirAggregator."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.crypto.shamir import reed_solomon
from tfpriv.crypto.secagg import Faults, PlainAggregator, SecureAggregator
from tfpriv.crypto.shamir.secagg import ShamirAggregator
from tfpriv.rng import RandomSource
from tests.crypto.reference import polynomial_mod_p


def _updates(num_clients, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [[(scale * rng.normal(size=(6, 5))).astype(np.float32),
             (scale * rng.normal(size=5)).astype(np.float32)] for _ in range(num_clients)]


def _max_diff(a, b):
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b))


def _tolerance(stats):
    return stats.extra['max_abs_error'] + 1e-6  # plus the float32 cast


def test_default_aggregate_matches_plain_weighted_average():
    updates, weights = _updates(4), [100, 50, 0, 7]
    aggregator = ShamirAggregator(rng=RandomSource(seed=1))
    assert isinstance(aggregator, SecureAggregator) and aggregator.name == 'shamir'
    average, stats = aggregator.aggregate(updates, weights)
    reference, _ = PlainAggregator().aggregate(updates, weights)
    assert [a.shape for a in average] == [(6, 5), (5,)]
    assert [a.dtype for a in average] == [np.float32, np.float32]
    assert _max_diff(average, reference) <= _tolerance(stats)
    assert stats.scheme == 'shamir' and stats.num_clients == 4 and stats.num_dropped == 0
    assert stats.messages == 4 * 5 + 5
    element_bytes = 4
    assert stats.extra['bytes_per_holder'] == 32 + element_bytes * 35
    assert stats.bytes_per_client == 5 * stats.extra['bytes_per_holder']
    assert stats.bytes_total == 4 * stats.bytes_per_client + 5 * stats.extra['bytes_per_holder']
    assert aggregator.traffic['client 2'] == (5, stats.bytes_per_client)
    assert aggregator.traffic['holder 4'] == (1, stats.extra['bytes_per_holder'])
    average, _ = ShamirAggregator().aggregate(updates)  # defaults: equal weights, OS CSPRNG
    assert _max_diff(average, PlainAggregator().aggregate(updates)[0]) <= 1e-4


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_dropouts_within_tolerance(data):
    n, t = data.draw(st.integers(1, 7).flatmap(lambda n: st.tuples(st.just(n),
                                                                     st.integers(1, n))))
    k = data.draw(st.integers(1, 6))
    dropped = data.draw(st.lists(st.integers(0, n - 1), max_size=n - t, unique=True))
    silent = data.draw(st.lists(st.integers(0, k - 1), max_size=k - 1, unique=True))
    offline = data.draw(st.lists(st.integers(0, k - 1), max_size=k, unique=True))
    weights = data.draw(st.lists(st.integers(1, 1000), min_size=k, max_size=k))
    updates = _updates(k, seed=k)
    faults = Faults(dropped_holders=dropped, silent_clients=silent, offline_clients=offline)
    aggregator = ShamirAggregator(n, t, rng=RandomSource(seed=2), faults=faults)
    average, stats = aggregator.aggregate(updates, weights)
    senders = [i for i in range(k) if i not in silent]
    reference, _ = PlainAggregator().aggregate([updates[i] for i in senders],
                                               [weights[i] for i in senders])
    assert _max_diff(average, reference) <= _tolerance(stats)
    assert stats.extra['holders_answered'] == n - len(dropped)
    assert stats.num_dropped == len(dropped) + len(silent) + len(offline)
    assert all(aggregator.traffic[f'client {i}'] == (0, 0) for i in silent)


def test_too_many_dropped_holders_raise():
    aggregator = ShamirAggregator(5, 3, rng=RandomSource(seed=3),
                                  faults=Faults(dropped_holders=[0, 1, 4]))
    with pytest.raises(ValueError, match='only 2 of 5 share-holders answered; threshold 3'):
        aggregator.aggregate(_updates(2))


def test_corrupted_holder_is_corrected_and_counted():
    updates = _updates(3)
    aggregator = ShamirAggregator(7, 3, rng=RandomSource(seed=4), faults=Faults(corrupt=[1, 5]))
    average, stats = aggregator.aggregate(updates, [1, 2, 3])
    assert _max_diff(average, PlainAggregator().aggregate(updates, [1, 2, 3])[0]) \
        <= _tolerance(stats)
    assert stats.extra['bad_holders'] == 2
    aggregator = ShamirAggregator(7, 3, rng=RandomSource(seed=4),
                                  faults=Faults(corrupt=[0, 1, 5]))
    with pytest.raises(reed_solomon.DecodingError, match='more than 2 of the 7'):
        aggregator.aggregate(updates)


def test_each_holder_receives_a_share_on_a_polynomial_of_degree_exactly_t_minus_1():
    """One client of weight 1, n = 5 holders, t = 3. What each holder sends (read unchanged
    through the `corrupt` hook) is P(j + 1) per coordinate, for a polynomial P over GF(p) with
    P(0) the client's encoding rint(u 2^f) mod p (computed here) and degree exactly t - 1:
    coefficients of degree >= t are 0, and the top one is uniform, so 0 with probability 1/p
    per coordinate (at most one of the 35 allowed). Solved in Python integers
    (`tests/crypto/reference.py`). Shares of a lower degree (threshold 1: every holder gets the
    encoded update itself) would let fewer than t holders read the update."""
    n, t, f = 5, 3, 20
    seen = {}

    def keep(j):
        def record(row):
            seen[j] = row.copy()
            return row
        return record

    aggregator = ShamirAggregator(n, t, precision=f, rng=RandomSource(seed=21),
                                  faults=Faults(corrupt={j: keep(j) for j in range(n)}))
    update = _updates(1, seed=22)
    average, stats = aggregator.aggregate(update, [3.0])
    assert stats.extra['bad_holders'] == 0 and sorted(seen) == list(range(n))
    assert _max_diff(average, update[0]) <= _tolerance(stats)
    p = aggregator.modulus
    flat = np.concatenate([np.ravel(a).astype(np.float64) for a in update[0]])
    encoded = [int(v) % p for v in np.rint(flat * 2.0**f).astype(np.int64)]
    top = []
    for i, secret in enumerate(encoded):
        coefficients = polynomial_mod_p([j + 1 for j in range(n)], [seen[j][i] for j in range(n)], p)
        assert coefficients[0] == secret and coefficients[t:] == [0] * (n - t)
        top.append(coefficients[t - 1])
    assert len(top) == 35 and sum(c == 0 for c in top) <= 1


def test_each_client_draws_its_own_sharing_polynomials(monkeypatch):
    """Two clients with the same update, n = 5, t = 3: for every coordinate the polynomials
    their shares lie on (solved from the rows each client sends, recorded from
    `field.split_field` as the aggregator calls it) have the same constant term and
    different coefficients of degree 1 and 2 (equal with probability 1/p each; at most one
    coincidence allowed among the 2 x 40). Shared randomness would make holder j's two
    shares differ by the difference of the encodings (0 here): one holder could compare
    two clients' updates."""
    from tfpriv.crypto.shamir import field
    sent = []
    real = field.split_field

    def record(*args, **kwargs):
        rows = real(*args, **kwargs)
        sent.append(np.array(rows))
        return rows

    monkeypatch.setattr(field, 'split_field', record)
    aggregator = ShamirAggregator(5, 3, rng=RandomSource(seed=29))
    update = [np.linspace(-1.0, 1.0, 40)]
    aggregator.aggregate([update, update])
    assert len(sent) == 2 and sent[0].shape == (5, 40)
    xs, p = [1, 2, 3, 4, 5], aggregator.modulus
    same = 0
    for i in range(40):
        first, second = (polynomial_mod_p(xs, rows[:, i].tolist(), p) for rows in sent)
        assert first[0] == second[0]
        same += sum(a == b for a, b in zip(first[1:3], second[1:3]))
    assert same <= 1


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_parties=3, threshold=4), 'threshold must be'),
    (dict(threshold=0), 'threshold must be'),
    (dict(num_parties=0), 'num_parties must be'),
    (dict(faults=Faults(dropped_holders=[5])), r'dropped_holders must be indices in \[0, 5\)'),
    (dict(faults=Faults(corrupt=[-1])), r'corrupt must be indices in \[0, 5\)'),
    (dict(modulus=2**32 + 15), 'prime'),
    (dict(bound=float('nan')), 'bound must be finite'),
    (dict(bound=-1.0), 'bound must be > 0'),
    (dict(bound=1e6, precision=20), 'use precision <= 10 bits'),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ShamirAggregator(**kwargs)


@pytest.mark.parametrize('updates, weights, kwargs, match', [
    ([], None, {}, 'no client updates'),
    (_updates(2)[:1] + [[np.ones((2, 2)), np.ones(5)]], None, {}, 'client 1 sent shapes'),
    ([[np.full((6, 5), np.nan), np.ones(5)]], None, {}, 'NaN'),
    (_updates(2), [1.0, -1.0], {}, 'non-negative'),
    (_updates(2), [1.0], {}, 'expected 2 weights'),
    (_updates(2, scale=1000.0), None, {}, 'above the public bound 512'),
    (_updates(2), None, dict(faults=Faults(silent_clients=[0, 1])), 'no client'),
    (_updates(2), [0, 1], dict(faults=Faults(silent_clients=[1])), 'positive weight'),
    (_updates(2), None, dict(faults=Faults(offline_clients=[2])),
     r'offline_clients must be indices in \[0, 2\)'),
])
def test_bad_aggregate_arguments(updates, weights, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShamirAggregator(rng=RandomSource(seed=5), **kwargs).aggregate(updates, weights)


def test_headroom_error_names_what_fits():
    # B 2^f is exactly the largest magnitude; the clients' rounding (+1/2 each) overflows it.
    aggregator = ShamirAggregator(bound=(2**30 - 1) / 2**20, precision=20,
                                  rng=RandomSource(seed=6))
    with pytest.raises(ValueError, match='use precision <= 19 bits'):
        aggregator.aggregate(_updates(2))


def test_real_keras_model_weights():
    """Several clients' copies of the project's MLP, perturbed as after local training:
    the Shamir average equals the plain weighted average within the fixed-point error."""
    from tfpriv.model import build_model
    model = build_model('mlp', (28, 28, 1), 10)
    base = model.get_weights()
    rng = np.random.default_rng(7)
    clients = [[w + rng.normal(scale=0.01, size=w.shape).astype(w.dtype) for w in base]
               for _ in range(3)]
    weights = [600, 1200, 300]
    average, stats = ShamirAggregator(5, 3, rng=RandomSource(seed=8)).aggregate(clients, weights)
    reference, _ = PlainAggregator().aggregate(clients, weights)
    assert [a.shape for a in average] == [w.shape for w in base]
    assert _max_diff(average, reference) <= _tolerance(stats)
    model.set_weights(average)
    assert stats.extra['bytes_per_weight_per_client'] == pytest.approx(5 * 4, rel=1e-3)


def test_out_of_field_sums_are_corrected_and_named(caplog):
    """Issue #17: a holder sending a value >= p or negative is a wrong share to correct
    (and name), like any other, not a reason to abort the round."""
    updates, p = _updates(3), 2**31 - 1
    faults = Faults(corrupt={2: lambda v: v + p, 4: lambda v: -v - 1})
    aggregator = ShamirAggregator(7, 3, rng=RandomSource(seed=9), faults=faults)
    with caplog.at_level('WARNING'):
        average, stats = aggregator.aggregate(updates, [1, 2, 3])
    assert _max_diff(average, PlainAggregator().aggregate(updates, [1, 2, 3])[0]) \
        <= _tolerance(stats)
    assert stats.extra['bad_holders'] == 2 and 'holders [2, 4] sent wrong sums' in caplog.text
    exact = ShamirAggregator(3, 3, rng=RandomSource(seed=9),
                             faults=Faults(corrupt={1: lambda v: v + p}))
    with pytest.raises(reed_solomon.DecodingError, match=r'holders \[1\] sent values outside'):
        exact.aggregate(updates)
    values = np.zeros((5, 4), dtype=np.int64)
    values[3] = p  # reed_solomon.decode itself: row 3 (x = 4) is out of the field
    secret, bad = reed_solomon.decode(range(1, 6), values, 2, p)
    assert bad == (4,) and not secret.any()
