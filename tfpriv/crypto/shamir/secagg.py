"""Secure aggregation of federated model updates with Shamir secret sharing.

Protocol (one round, k clients, n share-holders, threshold t; in the spirit of
the share-the-update schemes of Ben-Or, Goldwasser and Wigderson 1988 and the
"BGW-style" secure aggregation surveyed by Bonawitz et al. 2017):

1. Weights are public, as in FedAvg, where the server needs example counts:
   the server announces the normalized weight w_i = c_i / sum_j c_j of every
   client and a public bound B on |update values|.
2. Client i checks |u_i| <= B, fixed-point encodes w_i u_i into GF(p)
   (`FixedPoint`, `precision` bits) and Shamir-splits the vector among the n
   holders (`field.split_field`): one message per holder.
3. Holder j adds the shares it received (lazily, one `% p` at the end) and
   sends its sum to the server: a share of sum_i w_i u_i, because sharing is
   linear.
4. The server reconstructs from any m >= t holders' sums. With m > t it decodes
   them as a Reed-Solomon codeword (`reed_solomon.decode`): up to
   floor((m - t) / 2) holders that send wrong sums are corrected and named.
   It divides by W = sum of the weights of the clients whose shares arrived
   (public: the holders know who sent), so clients that dropped before sending
   are simply left out of the average.

Dropouts: up to n - t holders may drop before step 3. Clients are only needed
in step 2: one that drops after sending is still counted, and no recovery round
is needed (unlike pairwise-mask schemes).

Weighting without revealing: the client pre-multiplies its own update by w_i
before encoding, so the protocol only ever reconstructs the weighted sum. The
normalizer sum_j c_j is public, which also bounds the sum: |sum_i w_i u_i| <= B,
so the headroom check is sum_i round(w_i B 2^f) <= (p - 1) / 2, i.e. about
B 2^f + k / 2 <= 2^30 for p = 2^31 - 1 (defaults f = 20, B = 512).

Security: each holder sees one share of each update, uniformly random; any
t - 1 colluding holders (plus the server) learn nothing about any update. The
server learns the weighted sum, as intended, plus which clients and holders
took part. Holders are assumed not to collude in groups of t. The simulation
runs every party in one process; the data each party handles is kept apart in
the code so the message counts are those of a real deployment.

Error: each client's rounding adds at most 2^-(f+1), so the average is off by at
most k 2^-(f+1) / W, plus the final cast to the update's dtype.
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from tfpriv.crypto.shamir import field, reed_solomon
from tfpriv.crypto.fixed_point import FixedPoint
from tfpriv.crypto.secagg import AggregationStats, SecureAggregator, check_updates
from tfpriv.rng import RandomSource

_MESSAGE_HEADER_BYTES = 32  # round id, sender, receiver, x-coordinate, length


class ShamirAggregator(SecureAggregator):
    """Weighted FedAvg over n Shamir share-holders; tolerates n - t dropped holders.

    After `aggregate`, `traffic` maps each party (`client 3`, `holder 0`) to the
    (messages, bytes) it sent in that round.
    """

    name = 'shamir'

    def __init__(self, num_holders: int = 5, threshold: int = 3, precision: int = 20,
                 bound: float = 512.0, modulus: int = field.DEFAULT_PRIME,
                 robust: bool = True, rng: Optional[RandomSource] = None):
        """
        Args:
          num_holders: n, share-holders (servers that add shares).
          threshold: t, holders needed to reconstruct; t - 1 learn nothing.
          precision: fixed-point fractional bits.
          bound: public bound B on |update values|; a larger update is refused.
          modulus: prime p < 2^31 of the field.
          robust: decode with error correction when more than t holders answer.
          rng: randomness for the shares; default OS CSPRNG.
        """
        modulus = field.check_modulus(modulus)
        if isinstance(num_holders, bool) or not isinstance(num_holders, (int, np.integer)) \
                or not 1 <= num_holders < modulus:
            raise ValueError(f'num_holders must be an int in [1, {modulus}), got {num_holders!r}')
        if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) \
                or not 1 <= threshold <= num_holders:
            raise ValueError(f'threshold must be an int in [1, num_holders] = '
                             f'[1, {num_holders}], got {threshold!r}')
        if not np.isfinite(bound) or bound <= 0:
            raise ValueError(f'bound must be positive and finite, got {bound}')
        self.num_holders, self.threshold = int(num_holders), int(threshold)
        self.encoder = FixedPoint(modulus, precision)
        self.encoder.check_headroom(1, bound)
        self.bound, self.modulus, self.robust = float(bound), modulus, robust
        self.rng = rng if rng is not None else RandomSource()
        self.traffic: Dict[str, Tuple[int, int]] = {}

    def _indices(self, name: str, values: Sequence[int], limit: int) -> set:
        chosen = {int(v) for v in values}
        if any(not 0 <= v < limit for v in chosen):
            raise ValueError(f'{name} must be indices in [0, {limit}), got {sorted(chosen)}')
        return chosen

    def _client_shares(self, index: int, update: np.ndarray, weight: float) -> np.ndarray:
        """Client side: bound check, w_i u_i encoded and split into n rows."""
        largest = float(np.max(np.abs(update))) if update.size else 0.0
        if largest > self.bound:
            raise ValueError(f'client {index} has an update value of magnitude {largest:g} '
                             f'above the public bound {self.bound:g}: raise `bound` (and lower '
                             f'`precision` if the headroom check then fails)')
        return field.split_field(self.encoder.encode(weight * update), self.threshold,
                                 self.num_holders, self.modulus, self.rng)

    def aggregate(self, client_updates, weights=None, *, dropped_holders: Sequence[int] = (),
                  corrupted_holders: Sequence[int] = (),
                  clients_dropped_before_sending: Sequence[int] = (),
                  clients_dropped_after_sending: Sequence[int] = ()):
        """Weighted average of the updates; see the module docstring for the protocol.

        The keyword arguments simulate faults by index: holders that never send
        their sum, holders that send a wrong sum, clients that never send their
        shares, and clients that go offline right after sending them.

        Raises:
          ValueError: bad updates/weights, a value above `bound`, a sum that could
            wrap (headroom), fewer than t holders left, or no client's shares arrived.
          reed_solomon.DecodingError: too many holders sent wrong sums.
        """
        start = time.perf_counter()
        spec, normalized = check_updates(client_updates, weights)
        k = len(client_updates)
        dropped = self._indices('dropped_holders', dropped_holders, self.num_holders)
        corrupted = self._indices('corrupted_holders', corrupted_holders, self.num_holders)
        silent = self._indices('clients_dropped_before_sending', clients_dropped_before_sending, k)
        offline = self._indices('clients_dropped_after_sending', clients_dropped_after_sending, k)
        senders = [i for i in range(k) if i not in silent]
        total_weight = float(normalized[senders].sum())
        if total_weight <= 0:
            raise ValueError('no client with a positive weight sent its shares: nothing to '
                             'aggregate')
        self.encoder.check_headroom(len(senders), [normalized[i] * self.bound for i in senders])
        holders = [j for j in range(self.num_holders) if j not in dropped]
        if len(holders) < self.threshold:
            raise ValueError(f'only {len(holders)} of {self.num_holders} share-holders answered; '
                             f'threshold {self.threshold} are needed (at most '
                             f'{self.num_holders - self.threshold} may drop)')

        # Steps 2-3: clients split, every holder adds what it received.
        sums = np.zeros((self.num_holders, spec.size), dtype=np.int64)
        for i in senders:
            sums += self._client_shares(i, spec.flatten(client_updates[i]), normalized[i])
        np.remainder(sums, self.modulus, out=sums)
        for j in corrupted:
            sums[j] = (sums[j] + field.random_elements(self.modulus - 1, (spec.size,), self.rng)
                       + 1) % self.modulus

        # Step 4: the server reconstructs from the holders that answered.
        xs = [j + 1 for j in holders]
        received = sums[holders]
        if self.robust and len(holders) > self.threshold:
            encoded, bad = reed_solomon.decode(xs, received, self.threshold, self.modulus,
                                               self.rng)
            if bad:
                logging.warning('Shamir aggregation: holders %s sent wrong sums and were '
                                'corrected', [x - 1 for x in bad])
        else:
            t = self.threshold
            encoded, bad = field.reconstruct_field(xs[:t], received[:t], self.modulus), ()
        average = spec.unflatten(self.encoder.decode(encoded) / total_weight)

        element_bytes = (self.modulus.bit_length() + 7) // 8
        message = _MESSAGE_HEADER_BYTES + element_bytes * spec.size
        self.traffic = {f'client {i}': ((self.num_holders, self.num_holders * message)
                                        if i in senders else (0, 0)) for i in range(k)}
        self.traffic.update({f'holder {j}': ((1, message) if j in holders else (0, 0))
                             for j in range(self.num_holders)})
        messages = sum(m for m, _ in self.traffic.values())
        total_bytes = sum(b for _, b in self.traffic.values())
        client_bytes = [self.traffic[f'client {i}'][1] for i in senders]
        stats = AggregationStats(
            self.name, k, num_dropped=len(silent) + len(offline) + len(dropped),
            messages=messages, bytes_per_client=float(np.mean(client_bytes)),
            bytes_total=total_bytes, seconds=time.perf_counter() - start,
            extra={'holders': float(self.num_holders), 'threshold': float(self.threshold),
                   'holders_answered': float(len(holders)), 'bad_holders': float(len(bad)),
                   'bytes_per_holder': float(message),
                   'bytes_per_weight_per_client': self.num_holders * message / max(spec.size, 1),
                   'max_abs_error': len(senders) * 2.0**-(self.encoder.precision + 1) / total_weight})
        return average, stats
