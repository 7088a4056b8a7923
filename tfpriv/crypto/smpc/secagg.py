"""Secure aggregation by additive secret sharing among n computing parties.

Each client scales its flattened update by its normalized weight, encodes it
in fixed point and sends one additive share to each computing party (one
round). The parties add the shares they hold, locally, and send their sums to
the server (one round), which learns sum_i w_i u_i and nothing else: any
n - 1 parties see only uniform words. This is the seed notebooks' "encrypted
gradient averaging" (PySyft's `.share(bob, alice)` then `.get()`), with no
dealer needed since there are no products.

Precision: 32 fractional bits by default (no products are computed, so the
truncation headroom does not apply), so each client adds a rounding error of
at most 2^-33 and values up to 2^30 in magnitude are allowed.

Unlike the Shamir protocol this one does not tolerate a computing party that
drops out: all n shares are needed to reveal the sum.
"""

from __future__ import annotations

import time
from typing import Optional

from tfpriv.crypto.secagg import AggregationStats, SecureAggregator, check_updates
from tfpriv.crypto.smpc.party import Cluster
from tfpriv.crypto.smpc.ring import Encoding
from tfpriv.crypto.smpc.tensor import SharedTensor
from tfpriv.errors import FixedPointRangeError
from tfpriv.progress import Progress, each
from tfpriv.rng import RandomSource


class SmpcAggregator(SecureAggregator):
    """Weighted averaging of client updates by additive sharing among `num_parties` parties.

    Args:
      num_parties: computing parties (>= 2); all must stay online.
      precision: fixed-point precision of the shared updates.
      rng: randomness for the shares; default the OS CSPRNG.
      progress: `tfpriv.progress` hook, told ('clients', i, k) as each client shares.
    """

    name = 'smpc'

    def __init__(self, num_parties: int = 3, precision: int = 32,
                 rng: Optional[RandomSource] = None, progress: Optional[Progress] = None):
        self._encoding = Encoding(precision)
        Cluster(num_parties, self._encoding)  # validates num_parties now
        self.num_parties = num_parties
        self._rng = RandomSource() if rng is None else rng
        self.progress = progress

    def aggregate(self, client_updates, weights=None):
        start = time.perf_counter()
        spec, normalized = check_updates(client_updates, weights)
        cluster = Cluster(self.num_parties, self._encoding, self._rng)
        total = None
        for i in each(self.progress, 'clients', range(len(client_updates))):
            weight, update = normalized[i], client_updates[i]
            client = cluster.client(f'client{i}')
            try:
                shared = SharedTensor.share(cluster, weight * spec.flatten(update), owner=client)
            except FixedPointRangeError as error:
                raise FixedPointRangeError(f'client {i}: {error}') from None
            total = shared if total is None else total + shared
        average = total.reveal(to=cluster.client('server'))
        traffic = cluster.network.online
        stats = AggregationStats(
            self.name, len(client_updates), messages=traffic.messages,
            bytes_per_client=float(self.num_parties * 8 * spec.size), bytes_total=traffic.bytes,
            seconds=time.perf_counter() - start,
            extra={'rounds': 2.0, 'parties': float(self.num_parties),
                   'precision': float(self._encoding.precision)})
        return spec.unflatten(average), stats
