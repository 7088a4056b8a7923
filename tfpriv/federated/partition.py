"""Splitting a centralized data set into federated clients.

A partition is a list of index arrays, one per client, into the training
arrays; nothing is copied until a client is sampled, when `client_dataset`
gathers that client's rows (a few hundred examples) into a `tf.data` pipeline.

Schemes:

* `iid`: a uniformly random permutation cut into K near-equal parts.
* `dirichlet`: label skew (Hsu, Qi, Brown, "Measuring the Effects of
  Non-Identical Data Distribution for Federated Visual Classification", 2019):
  for each class c, proportions p_c ~ Dir(α 1_K) split the examples of c among
  the K clients; small α gives clients few classes, α → ∞ tends to IID.
* `pathological`: McMahan et al., "Communication-Efficient Learning of Deep
  Networks from Decentralized Data" (AISTATS 2017), Sec. 3: sort by label,
  cut into K·s shards of n/(K·s) examples (200 shards of 300 for MNIST with
  K = 100, s = 2) and give each client s random shards.
* `per-example`: one client per example (Credit Approval: one per applicant).
* `banks`: quantity skew, a few institutions of unequal sizes: a random
  permutation cut at sizes ∝ q ~ Dir(α 1_K), each at least one example.

All randomness comes from `tfpriv.rng.RandomSource`; Dirichlet draws are
normalized Gamma(α) draws (Marsaglia and Tsang, "A Simple Method for
Generating Gamma Variables", ACM TOMS 2000, with the α < 1 boost
Gamma(α) = Gamma(α + 1) U^{1/α}).
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from tfpriv.rng import RandomSource

PARTITIONS = ('iid', 'dirichlet', 'pathological', 'per-example', 'banks')
_MAX_REDRAWS = 100


def permutation(rng: RandomSource, n: int) -> np.ndarray:
    """A uniformly random permutation of range(n) (argsort of i.i.d. uniforms)."""
    return np.argsort(rng.uniform01(n), kind='stable')


def gamma(rng: RandomSource, alpha: float, size: int) -> np.ndarray:
    """Gamma(alpha, 1) samples by Marsaglia-Tsang rejection (vectorized)."""
    if alpha <= 0:
        raise ValueError(f'alpha must be > 0, got {alpha}')
    if alpha < 1:
        return gamma(rng, alpha + 1.0, size) * rng.uniform01(size) ** (1.0 / alpha)
    d = alpha - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    out = np.empty(size)
    todo = np.arange(size)
    while todo.size:
        x = rng.normal(todo.size)
        v = (1.0 + c * x) ** 3
        u = rng.uniform01(todo.size)
        safe_v = np.where(v > 0, v, 1.0)
        ok = (v > 0) & (np.log(u) < 0.5 * x * x + d - d * safe_v + d * np.log(safe_v))
        out[todo[ok]] = d * v[ok]
        todo = todo[~ok]
    return out


def dirichlet(rng: RandomSource, alpha: float, k: int) -> np.ndarray:
    """One draw from Dir(alpha 1_k)."""
    g = gamma(rng, alpha, k)
    return g / g.sum()


def _check_counts(n: int, num_clients: int) -> None:
    if not 1 <= num_clients <= n:
        raise ValueError(f'num_clients must be in [1, {n}] (the number of examples), '
                         f'got {num_clients}')


def iid(n: int, num_clients: int, rng: RandomSource) -> List[np.ndarray]:
    """K near-equal random parts."""
    _check_counts(n, num_clients)
    return [np.sort(part) for part in np.array_split(permutation(rng, n), num_clients)]


def dirichlet_label_skew(labels: np.ndarray, num_clients: int, alpha: float,
                         rng: RandomSource) -> List[np.ndarray]:
    """Label skew: class c's examples split among clients with proportions Dir(α)."""
    labels = np.asarray(labels)
    _check_counts(len(labels), num_clients)
    if alpha <= 0:
        raise ValueError(f'alpha must be > 0, got {alpha}')
    for _ in range(_MAX_REDRAWS):
        parts: List[List[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            members = members[permutation(rng, len(members))]
            cuts = (np.cumsum(dirichlet(rng, alpha, num_clients))[:-1] * len(members)).astype(int)
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].append(chunk)
        clients = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(c) for c in clients) > 0:
            return clients
    raise ValueError(f'Dirichlet(α={alpha}) left a client empty in {_MAX_REDRAWS} draws; '
                     'use fewer clients or a larger alpha')


def pathological(labels: np.ndarray, num_clients: int, rng: RandomSource,
                 shards_per_client: int = 2) -> List[np.ndarray]:
    """McMahan et al. 2017: sort by label, K·s shards, s random shards per client."""
    labels = np.asarray(labels)
    num_shards = num_clients * shards_per_client
    if shards_per_client < 1 or not 1 <= num_shards <= len(labels):
        raise ValueError(f'need 1 <= clients x shards_per_client <= {len(labels)} examples, '
                         f'got {num_clients} x {shards_per_client}')
    order = np.argsort(labels, kind='stable')
    size = len(labels) // num_shards
    shards = order[:size * num_shards].reshape(num_shards, size)
    picks = permutation(rng, num_shards).reshape(num_clients, shards_per_client)
    return [np.sort(shards[p].ravel()) for p in picks]


def per_example(n: int) -> List[np.ndarray]:
    """One client per example."""
    return [np.array([i]) for i in range(n)]


def banks(n: int, num_clients: int, alpha: float, rng: RandomSource) -> List[np.ndarray]:
    """Quantity skew: sizes ∝ Dir(α), at least one example each."""
    _check_counts(n, num_clients)
    sizes = 1 + np.floor(dirichlet(rng, alpha, num_clients) * (n - num_clients)).astype(int)
    sizes[np.argmax(sizes)] += n - sizes.sum()
    return [np.sort(p) for p in np.split(permutation(rng, n), np.cumsum(sizes)[:-1])]


def partition(scheme: str, labels: np.ndarray, num_clients: Optional[int], rng: RandomSource,
              alpha: float = 0.5, shards_per_client: int = 2) -> List[np.ndarray]:
    """Index arrays of each client's examples under `scheme` (one of `PARTITIONS`)."""
    n = len(labels)
    if scheme == 'per-example':
        if num_clients not in (None, n):
            raise ValueError(f'per-example makes one client per example: {n}, not {num_clients}')
        return per_example(n)
    if num_clients is None:
        raise ValueError(f'partition {scheme!r} needs a number of clients')
    if scheme == 'iid':
        return iid(n, num_clients, rng)
    if scheme == 'dirichlet':
        return dirichlet_label_skew(labels, num_clients, alpha, rng)
    if scheme == 'pathological':
        return pathological(labels, num_clients, rng, shards_per_client)
    if scheme == 'banks':
        return banks(n, num_clients, alpha, rng)
    raise ValueError(f'unknown partition {scheme!r}; choose one of {PARTITIONS}')


def client_dataset(x: np.ndarray, y: np.ndarray, indices: np.ndarray, batch_size: int,
                   epochs: int = 1, shuffle_seed: Optional[int] = None):
    """A `tf.data.Dataset` of one client's examples: gathered lazily, shuffled, E epochs, batches of B.

    Only the client's own rows are copied (`x[indices]`), never the whole set.
    """
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((x[indices], y[indices]))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(indices), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.repeat(epochs).batch(batch_size)
