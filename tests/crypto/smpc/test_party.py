"""`smpc.party`: who holds which share, what the network counts, and a seeded cluster."""

import numpy as np
import pytest

from tfpriv.crypto.smpc import Cluster, Encoding, SharedTensor
from tfpriv.crypto.smpc.party import Network
from tfpriv.rng import RandomSource


def test_parties_and_clients_are_named_and_three_parties_by_default():
    cluster = Cluster(rng=RandomSource(seed=1))
    assert cluster.num_parties == 3
    assert [repr(p) for p in cluster.parties] == ["Party('party0')", "Party('party1')",
                                                  "Party('party2')"]
    assert repr(cluster.client('alice')) == "Party('alice')"


def test_traffic_outside_a_named_operation_is_counted_as_other_and_the_outermost_name_wins():
    network = Network()
    network.deliver(senders=2, nbytes_each=8)
    with network.operation('relu'):
        with network.operation('multiply'):
            network.broadcast([[np.zeros(3, np.uint64)]] * 3, [np.add])
    assert sorted(network.by_operation) == ['other', 'relu']
    assert (network.by_operation['other'].messages, network.by_operation['other'].bytes) == (2, 16)
    relu = network.by_operation['relu']
    assert (relu.rounds, relu.messages, relu.bytes) == (1, 6, 6 * 24)  # n (n - 1) copies of 24 B


def test_a_dropped_handle_is_gone_from_every_party_and_dropping_again_is_harmless():
    cluster = Cluster(2, rng=RandomSource(seed=2))
    handle = cluster.store([np.ones(2, np.uint64), np.zeros(2, np.uint64)])
    cluster.drop(handle)
    cluster.drop(handle)
    for party in cluster.parties:
        with pytest.raises(KeyError):
            party.share(handle)


def test_a_seeded_cluster_reproduces_every_share_including_the_dealers_triples():
    """Same seed, same computation: each party's share of x * y is the same word in both runs
    (the product's shares come from the dealer's Beaver triple); another seed differs."""
    def product_shares(seed):
        cluster = Cluster(3, rng=RandomSource(seed=seed))
        x = SharedTensor.share(cluster, np.array([1.5, -2.0]))
        y = SharedTensor.share(cluster, np.array([3.0, 0.25]))
        return [share.copy() for share in (x * y)._shares()]  # pylint: disable=protected-access

    first, again, other = product_shares(3), product_shares(3), product_shares(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, c) for a, c in zip(first, other))


@pytest.mark.parametrize('kwargs,error,message', [
    ({'num_parties': 2.5}, TypeError, r'^num_parties must be an int, got float 2\.5$'),
    ({'num_parties': 1}, ValueError,
     r'^additive sharing needs at least 2 computing parties, got 1$'),
    ({'encoding': 'f16'}, TypeError, r'^encoding must be an Encoding, got str$'),
])
def test_bad_cluster_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        Cluster(**kwargs)
    assert Cluster(2, encoding=Encoding(), rng=RandomSource(seed=5)).num_parties == 2
