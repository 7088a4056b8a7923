"""The SecAgg+ communication graph: a k-regular Harary graph on a random ordering.

Bell et al. 2020 ("Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead", CCS) replace the complete graph of Bonawitz et al. 2017 by a sparse
graph of degree k = O(log n): client u agrees pairwise masks with, and shares its
secrets among, its k neighbours only. As in Flower's SecAgg+, the graph here is
the Harary graph H_{k,n} (k even: node i is joined to i +- 1, ..., i +- k/2
mod n), the k-connected graph with the fewest edges, laid on a uniformly random
permutation of the clients drawn by the server, so that which clients are
neighbours cannot be chosen by them. k = n - 1 is the complete graph of the
original protocol. The default degree is k = 2 ceil(log2 n), the O(log n) of
SecAgg+ (each client then masks with, and shares its secrets among, 12 of the
round's 50 clients instead of 49), or the complete graph when that is not smaller.
H_{k,n} is k-connected: as long as fewer than k clients are corrupt or dropped, the
honest survivors' graph stays connected, so their pairwise masks only cancel in
the sum of all their inputs (the server cannot isolate one of them).
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from tfpriv import checks
from tfpriv.rng import RandomSource

Graph = Tuple[Tuple[int, ...], ...]


def default_neighbours(num_parties: int) -> int:
    """k = 2 ceil(log2 n) (even, SecAgg+'s O(log n) degree), or n - 1 if not smaller."""
    num_parties = checks.integer('num_parties', num_parties, minimum=3)
    return min(2 * math.ceil(math.log2(num_parties)), num_parties - 1)


def check_neighbours(num_parties: int, neighbours: int) -> int:
    """k as an int in [2, n - 1], even unless it is n - 1 (the complete graph)."""
    neighbours = checks.integer('neighbours', neighbours, minimum=2, maximum=num_parties - 1)
    if neighbours < num_parties - 1 and neighbours % 2:
        raise ValueError(f'neighbours must be even (the Harary graph H_(k,n) joins k/2 clients '
                         f'on each side) or num_parties - 1 = {num_parties - 1} (complete '
                         f'graph), got {neighbours}')
    return neighbours


def harary_graph(num_parties: int, neighbours: int, rng: RandomSource) -> Graph:
    """Neighbour lists of H_{k,n} on a random permutation of the n clients.

    Returns:
      n sorted tuples; entry u lists the k neighbours of client u (never u).
    """
    neighbours = check_neighbours(num_parties, neighbours)
    if neighbours == num_parties - 1:
        return tuple(tuple(v for v in range(num_parties) if v != u) for u in range(num_parties))
    # Sorting 64-bit uniform keys gives a uniform permutation (ties have probability < n^2 2^-64).
    order = np.argsort(rng.uint64(num_parties), kind='stable')
    position = np.empty(num_parties, dtype=np.int64)
    position[order] = np.arange(num_parties)
    half = range(1, neighbours // 2 + 1)
    offsets = list(half) + [-d for d in half]
    return tuple(tuple(sorted(int(order[(position[u] + d) % num_parties]) for d in offsets))
                 for u in range(num_parties))
