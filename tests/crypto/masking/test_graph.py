"""The SecAgg+ Harary graph: k-regular, symmetric, on a random permutation."""

import itertools

import numpy as np
import pytest

from tfpriv.crypto.masking.graph import harary_graph
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
