"""Client partitions on the real MNIST labels."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.federated import partition
from tfpriv.rng import RandomSource


def _is_partition(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == n and len(np.unique(joined)) == n


def test_iid_covers_everything_once(mnist):
    parts = partition.partition('iid', mnist.y_train, 100, RandomSource(seed=0))
    assert len(parts) == 100 and _is_partition(parts, 60000)
    assert {len(p) for p in parts} == {600}
    # IID clients see (almost) every digit
    assert min(len(np.unique(mnist.y_train[p])) for p in parts) >= 8


def test_pathological_is_mcmahan_200_shards_of_300(mnist):
    parts = partition.partition('pathological', mnist.y_train, 100, RandomSource(seed=0))
    assert len(parts) == 100 and _is_partition(parts, 60000)
    assert {len(p) for p in parts} == {600}
    labels_per_client = [len(np.unique(mnist.y_train[p])) for p in parts]
    # two label-sorted shards: at most 2 digits, except shards straddling a label boundary
    assert max(labels_per_client) <= 4 and np.mean(labels_per_client) < 2.5


def test_dirichlet_skew_grows_as_alpha_shrinks(mnist):
    y = mnist.y_train[:6000]

    def mean_classes(alpha):
        parts = partition.partition('dirichlet', y, 20, RandomSource(seed=1), alpha=alpha)
        assert _is_partition(parts, 6000) and min(map(len, parts)) > 0
        return np.mean([len(np.unique(y[p])) for p in parts])

    assert mean_classes(0.1) < mean_classes(100.0) - 3


def test_per_example_and_banks():
    parts = partition.partition('per-example', np.zeros(653), None, RandomSource(seed=0))
    assert len(parts) == 653 and all(len(p) == 1 for p in parts)
    banks = partition.partition('banks', np.zeros(653), 5, RandomSource(seed=0), alpha=1.0)
    assert len(banks) == 5 and _is_partition(banks, 653) and min(map(len, banks)) >= 1
    assert len({len(b) for b in banks}) > 1  # unequal sizes


def test_seeded_partitions_are_reproducible(mnist):
    a = partition.partition('dirichlet', mnist.y_train[:3000], 10, RandomSource(seed=7))
    b = partition.partition('dirichlet', mnist.y_train[:3000], 10, RandomSource(seed=7))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize('scheme, clients, error', [
    ('iid', 0, 'num_clients'), ('iid', 11, 'num_clients'), ('nope', 2, 'unknown partition'),
    ('pathological', 6, 'shards'), ('per-example', 3, 'one client per example')])
def test_bad_partitions_are_refused(scheme, clients, error):
    with pytest.raises(ValueError, match=error):
        partition.partition(scheme, np.arange(10) % 2, clients, RandomSource(seed=0))


@settings(max_examples=10, deadline=None)
@given(st.floats(0.2, 20.0))
def test_gamma_moments(alpha):
    g = partition.gamma(RandomSource(seed=3), alpha, 20000)
    assert np.all(g > 0)
    assert abs(g.mean() - alpha) < 0.1 * alpha + 0.02
    assert abs(g.var() - alpha) < 0.2 * alpha + 0.05


def test_client_dataset_holds_only_the_client_rows(mnist):
    idx = np.array([5, 17, 2, 40])
    ds = partition.client_dataset(mnist.x_train, mnist.y_train, idx, batch_size=3, epochs=2)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [3, 3, 2]
    assert np.array_equal(np.concatenate([b[1] for b in batches]),
                          np.tile(mnist.y_train[idx], 2))
