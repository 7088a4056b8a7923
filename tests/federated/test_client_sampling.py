"""A federated round's client sample against the exact law its accountant assumes (issue #20).

`tfpriv.dp.accounting.fedavg_event` analyses a fixed-size round as a uniform sample of m of
the K clients without replacement, drawn afresh each round (`fedavg.sample_clients`), and a
Poisson round as each client joining independently with probability C
(`fedavg.poisson_clients`, checked in `test_distributed_dp.py`). The reference laws here
are combinatorial and come from SciPy, not from the code under test:
- m of K without replacement: each of the C(K, m) subsets with probability 1 / C(K, m);
- independent rounds: the overlap of two consecutive rounds is Hypergeometric(K, m, m)
  (given one round, the next one's overlap with it has that law whatever the first was,
  so the overlaps of a run are i.i.d.);
- `partition.permutation`, which draws both the fixed-size sample and the iid partition:
  each of the n! orders with probability 1 / n!.

Tolerance: Pearson's χ² against the χ²(cells − 1) law, two-sided at p = 1e-6 per tail. A
statistic above the upper quantile is a wrong law (a fixed or repeated sample, draws with
replacement, a skewed client); one below the lower quantile is too regular to be random
(a sampler that cycles through the subsets). With every cell's expectation >= 100 here the
χ² approximation is accurate far beyond these quantiles.
"""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from tfpriv.federated import fedavg, partition
from tfpriv.rng import RandomSource

K, M, ROUNDS = 6, 2, 6000  # 15 subsets, 400 expected each
P_TAIL = 1e-6


def _chi2_two_sided(observed: np.ndarray, expected: np.ndarray) -> float:
    """Pearson's statistic, asserted within the two-sided 1 - 2e-6 range of χ²(cells - 1)."""
    observed, expected = np.asarray(observed, float), np.asarray(expected, float)
    assert observed.sum() == pytest.approx(expected.sum(), rel=1e-12)
    dof = observed.size - 1
    statistic = float(((observed - expected) ** 2 / expected).sum())
    low, high = stats.chi2.ppf(P_TAIL, dof), stats.chi2.isf(P_TAIL, dof)
    assert low < statistic < high, (statistic, low, high, observed)
    return statistic


@pytest.fixture(scope='module')
def schedule():
    return fedavg.sample_clients(K, M, ROUNDS, RandomSource(seed=11))


def test_fixed_size_rounds_are_m_distinct_clients(schedule):
    assert schedule.shape == (ROUNDS, M)
    assert np.issubdtype(schedule.dtype, np.integer)
    assert schedule.min() >= 0 and schedule.max() < K
    assert all(len(set(row)) == M for row in schedule.tolist())


def test_fixed_size_rounds_are_uniform_over_all_m_subsets(schedule):
    subsets = {s: i for i, s in enumerate(itertools.combinations(range(K), M))}
    assert len(subsets) == math.comb(K, M) == 15
    counts = np.bincount([subsets[tuple(sorted(row))] for row in schedule.tolist()],
                         minlength=len(subsets))
    _chi2_two_sided(counts, np.full(len(subsets), ROUNDS / len(subsets)))


def test_consecutive_rounds_overlap_hypergeometrically(schedule):
    """P(overlap = 0, 1, 2) = 6/15, 8/15, 1/15 for K = 6, m = 2: a repeated or a
    deliberately disjoint next round is far off."""
    overlaps = [len(set(a) & set(b)) for a, b in zip(schedule[:-1].tolist(), schedule[1:].tolist())]
    pmf = stats.hypergeom(K, M, M).pmf(np.arange(M + 1))
    assert pmf == pytest.approx([6 / 15, 8 / 15, 1 / 15], rel=1e-12)
    _chi2_two_sided(np.bincount(overlaps, minlength=M + 1), pmf * len(overlaps))


def test_every_client_joins_m_over_k_of_the_rounds(schedule):
    """The accountant's sampling rate m / K, per client."""
    joined = np.bincount(schedule.ravel(), minlength=K)
    _chi2_two_sided(joined, np.full(K, ROUNDS * M / K))


def test_permutation_is_uniform_over_all_orders():
    rng = RandomSource(seed=12)
    orders = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    draws = 12_000  # 500 expected per order
    counts = np.bincount([orders[tuple(partition.permutation(rng, 4).tolist())]
                          for _ in range(draws)], minlength=len(orders))
    _chi2_two_sided(counts, np.full(len(orders), draws / len(orders)))


@pytest.mark.parametrize('sampling', ['fixed', 'poisson'])
def test_the_schedule_follows_the_configured_sampling(sampling):
    """`schedule_clients` draws what `client_sampling` names, and one shuffle seed per sampled
    client, an int64 spread over [0, 2^31). The DP noise divides by `expected_clients`:
    m = round(C K) = 5 (fixed) or C K = 4.6 (Poisson) for K = 20, C = 0.23."""
    config = fedavg.FedConfig(clients=20, rounds=400, client_fraction=0.23,
                              client_sampling=sampling)
    schedule, seeds = fedavg.schedule_clients(config, 20, RandomSource(seed=13))
    sizes = np.array([len(ids) for ids in schedule])
    assert len(schedule) == len(seeds) == 400
    assert all(len(s) == n and s.dtype == np.int64 for s, n in zip(seeds, sizes))
    every = np.concatenate([np.ravel(s) for s in seeds])
    assert every.min() >= 0 and every.max() < 2**31
    assert every.min() < 2**27 and every.max() > 2**31 - 2**27  # not a narrower range
    expected = fedavg.expected_clients(config, 20)
    if sampling == 'fixed':
        assert expected == 5.0 and set(sizes.tolist()) == {5}
        return
    assert expected == pytest.approx(4.6, rel=1e-12)
    # Binomial(20, 0.23): mean 4.6, variance 3.542; the mean of 400 rounds has sd 0.094
    assert abs(sizes.mean() - 4.6) < 5 * math.sqrt(20 * 0.23 * 0.77 / 400)
    assert sizes.min() < 5 < sizes.max()


@pytest.mark.parametrize('fraction, clients, m', [(0.01, 20, 1), (0.23, 20, 5), (0.5, 7, 4),
                                                  (1.0, 7, 7)])
def test_clients_per_round_is_round_c_k_and_at_least_one(fraction, clients, m):
    assert fedavg.clients_per_round(fraction, clients) == m
