"""The SecAgg+ Harary graph: k-regular, symmetric, on a random permutation."""

import itertools

import numpy as np
import pytest

from tfpriv.crypto.masking.graph import default_neighbours, harary_graph
from tfpriv.rng import RandomSource


def components_after_removing(graph, removed):
    """Number of connected components of graph minus `removed` (a breadth-first search here)."""
    left = set(range(len(graph))) - set(removed)
    count = 0
    while left:
        count += 1
        frontier = [left.pop()]
        while frontier:
            u = frontier.pop()
            for v in graph[u]:
                if v in left:
                    left.remove(v)
                    frontier.append(v)
    return count


@pytest.mark.parametrize('n, k', [(10, 4), (11, 6), (12, 10), (100, 14), (7, 6)])
def test_regular_symmetric_without_self_loops(n, k):
    graph = harary_graph(n, k, RandomSource(seed=n))
    assert all(len(set(nbrs)) == k and u not in nbrs for u, nbrs in enumerate(graph))
    assert all(u in graph[v] for u, nbrs in enumerate(graph) for v in nbrs)


def test_harary_graph_is_k_connected():
    """H_{k,n} stays connected after removing any k - 1 vertices (checked exhaustively)."""
    graph = harary_graph(10, 4, RandomSource(seed=3))
    assert all(components_after_removing(graph, removed) == 1
               for removed in itertools.combinations(range(10), 3))


def test_complete_graph_for_n_minus_1():
    graph = harary_graph(5, 4, RandomSource(seed=0))
    assert graph == tuple(tuple(v for v in range(5) if v != u) for u in range(5))


def test_permutation_is_random():
    """Over seeds, client 0's neighbours vary: each other client is a neighbour w.p. k/(n-1)."""
    counts = np.zeros(20)
    trials = 300
    for seed in range(trials):
        counts[list(harary_graph(20, 4, RandomSource(seed=seed))[0])] += 1
    p = 4 / 19
    sigma = np.sqrt(trials * p * (1 - p))  # binomial standard deviation, ~7.1
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] - trials * p) <= 5 * sigma)


@pytest.mark.parametrize('n', [4, 6, 7])
def test_n_minus_1_neighbours_is_the_complete_graph_for_odd_and_even_degree(n):
    """k = n - 1 is allowed even when odd (n even), and every client then neighbours all others:
    a Harary construction with k/2 = floor((n-1)/2) on each side would give only n - 2."""
    graph = harary_graph(n, n - 1, RandomSource(seed=n))
    assert graph == tuple(tuple(v for v in range(n) if v != u) for u in range(n))


@pytest.mark.parametrize('n, k, message', [
    (10, 0, 'neighbours must be >= 2'), (10, -2, 'neighbours must be >= 2'),
    (10, 1, 'neighbours must be >= 2'), (10, 5, 'neighbours must be even'),
    (7, 5, r'neighbours must be even .* or num_parties - 1 = 6 \(complete graph\), got 5'),
    (10, 10, 'neighbours must be <= 9'),
])
def test_a_degree_that_is_not_the_security_parameter_asked_for_is_refused(n, k, message):
    """The degree k is the security parameter: k = 0 would leave each input with no pairwise
    mask, and an odd k < n - 1 would be silently rounded down to k - 1 by H_(k,n)."""
    with pytest.raises(ValueError, match=message):
        harary_graph(n, k, RandomSource(seed=0))


@pytest.mark.parametrize('n, k', [(3, 2), (7, 6), (8, 6), (10, 8), (16, 8), (17, 10), (50, 12),
                                  (100, 14), (1000, 20)])
def test_default_degree_is_two_ceil_log2_n_or_the_complete_graph(n, k):
    """k = 2 ceil(log2 n) (worked by hand: log2 50 = 5.64 -> 12), capped at n - 1; the
    aggregator builds that graph when no degree is given."""
    from tfpriv.crypto.masking.secagg import MaskingAggregator  # pylint: disable=g-import-not-at-top
    assert default_neighbours(n) == k
    assert MaskingAggregator(n).config.neighbours == k


def test_default_graph_for_fifty_clients_survives_any_eleven_removed():
    """H_{12,50} is 12-connected: removing 11 clients (corrupt or dropped) never splits the rest,
    so the pairwise masks still tie every honest survivor's input to the others' (sampled
    removals; a greedy attack removes the 11 clients nearest to one victim)."""
    graph = harary_graph(50, default_neighbours(50), RandomSource(seed=5))
    rng = np.random.default_rng(0)
    victim_neighbours = sorted(graph[0])[:11]
    removals = [victim_neighbours] + [rng.choice(50, 11, replace=False) for _ in range(300)]
    assert all(components_after_removing(graph, removed) == 1 for removed in removals)
    assert components_after_removing(graph, graph[0]) == 2  # all 12 neighbours: 0 is cut off
