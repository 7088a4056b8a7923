"""Secure aggregation of federated model updates with Shamir secret sharing.

Protocol (one round, k clients, n = `num_parties` share-holders, threshold t; in the spirit of
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

import dataclasses
import time
from typing import Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
from absl import logging

from tfpriv import checks
from tfpriv.crypto.fixed_point import FixedPoint
from tfpriv.crypto.secagg import (AggregationStats, Faults, SecureAggregator, UpdateSpec,
                                  check_updates)
from tfpriv.crypto.shamir import field, reed_solomon
from tfpriv.errors import DecodingError, FixedPointRangeError
from tfpriv.progress import Progress, each
from tfpriv.rng import Prg, RandomSource, as_prg

_MESSAGE_HEADER_BYTES = 32  # round id, sender, receiver, x-coordinate, length


@dataclasses.dataclass
class _Round:
    """What one aggregation knows, stage by stage."""

    spec: UpdateSpec
    normalized: np.ndarray  # public weights w_i, summing to 1
    senders: List[int]  # clients whose shares arrived
    holders: List[int]  # share-holders that answer
    sums: Optional[np.ndarray] = None  # (n, size): what each holder sends
    encoded: Optional[np.ndarray] = None  # the reconstructed sum_i w_i u_i in GF(p)
    bad: Tuple[int, ...] = ()  # x-coordinates of holders found wrong

    @property
    def total_weight(self) -> float:
        return float(self.normalized[self.senders].sum())


class ShamirAggregator(SecureAggregator):
    """Weighted FedAvg over n Shamir share-holders; tolerates n - t dropped holders.

    After `aggregate`, `traffic` maps each party (`client 3`, `holder 0`) to the
    (messages, bytes) it sent in that round.
    """

    name = 'shamir'

    def __init__(self, num_parties: int = 5, threshold: int = 3, precision: int = 20,
                 bound: float = 512.0, modulus: int = field.DEFAULT_PRIME,
                 robust: bool = True, rng: Union[RandomSource, Prg, None] = None,
                 faults: Faults = Faults(), progress: Optional[Progress] = None):
        """
        Args:
          num_parties: n, share-holders (servers that add shares).
          threshold: t, holders needed to reconstruct; t - 1 learn nothing.
          precision: fixed-point fractional bits.
          bound: public bound B on |update values|; a larger update is refused.
          modulus: prime p < 2^31 of the field.
          robust: decode with error correction when more than t holders answer.
          rng: randomness for the shares (`RandomSource` or `Prg`); default OS CSPRNG.
          faults: failures to simulate in every round (tests); default none.
          progress: `tfpriv.progress` hook, told ('clients', i, k) as each sending
            client's shares are added (silent clients are not counted).
        """
        modulus = field.check_modulus(modulus)
        self.num_parties = checks.integer('num_parties', num_parties, 1, modulus - 1)
        self.threshold = checks.integer('threshold', threshold, 1, self.num_parties)
        self.bound = checks.number('bound', bound, minimum=0.0, strict_minimum=True)
        self.encoder = FixedPoint(modulus, precision)
        self.encoder.check_headroom(1, bound)
        self.modulus, self.robust, self.prg = modulus, robust, as_prg(rng)
        if not isinstance(faults, Faults):
            raise TypeError(f'faults must be a Faults, got {type(faults).__name__}')
        self.faults, self.progress = faults, progress
        Faults.indices('dropped_holders', faults.dropped_holders, self.num_parties)
        Faults.indices('corrupt', list(faults.corrupt), self.num_parties)
        self.traffic: Dict[str, Tuple[int, int]] = {}

    def _client_shares(self, index: int, update: np.ndarray, weight: float) -> np.ndarray:
        """Client side: bound check, w_i u_i encoded and split into n rows."""
        largest = float(np.max(np.abs(update))) if update.size else 0.0
        if largest > self.bound:
            raise FixedPointRangeError(f'client {index} has an update value of magnitude {largest:g} '
                             f'above the public bound {self.bound:g}: raise `bound` (and lower '
                             f'`precision` if the headroom check then fails)')
        return field.split_field(self.encoder.encode(weight * update), self.threshold,
                                 self.num_parties, self.modulus, self.prg)

    def aggregate(self, client_updates, weights=None):
        """Weighted average of the updates; see the module docstring for the protocol.

        Faults given to the constructor are simulated in every round.

        Raises:
          ValueError: bad updates/weights, a value above `bound`, a sum that could
            wrap (headroom), fewer than t holders left, or no client's shares arrived.
          DecodingError: too many holders sent wrong sums.
        """
        start = time.perf_counter()
        state = self._plan(client_updates, weights)
        self._share(state, client_updates)
        self._reconstruct(state)
        average = state.spec.unflatten(self.encoder.decode(state.encoded) / state.total_weight)
        return average, self._stats(state, len(client_updates), time.perf_counter() - start)

    def _plan(self, client_updates, weights) -> _Round:
        """Checks the inputs, the faults and the headroom; who sends, who answers."""
        spec, normalized = check_updates(client_updates, weights)
        k = len(client_updates)
        silent = Faults.indices('silent_clients', self.faults.silent_clients, k)
        Faults.indices('offline_clients', self.faults.offline_clients, k)
        senders = [i for i in range(k) if i not in silent]
        if float(normalized[senders].sum()) <= 0:
            raise ValueError('no client with a positive weight sent its shares: nothing to '
                             'aggregate')
        self.encoder.check_headroom(len(senders), [normalized[i] * self.bound for i in senders])
        holders = [j for j in range(self.num_parties) if j not in self.faults.dropped_holders]
        if len(holders) < self.threshold:
            raise ValueError(f'only {len(holders)} of {self.num_parties} share-holders '
                             f'answered; threshold {self.threshold} are needed (at most '
                             f'{self.num_parties - self.threshold} may drop)')
        return _Round(spec, normalized, senders, holders)

    def _share(self, state: _Round, client_updates) -> None:
        """Steps 2-3: clients split, every holder adds what it received (faults applied)."""
        sums = np.zeros((self.num_parties, state.spec.size), dtype=np.int64)
        for i in each(self.progress, 'clients', state.senders):
            sums += self._client_shares(i, state.spec.flatten(client_updates[i]),
                                        state.normalized[i])
        np.remainder(sums, self.modulus, out=sums)
        corrupt = self.faults.corrupt
        for j in corrupt:
            if isinstance(corrupt, Mapping):
                sums[j] = np.asarray(corrupt[j](sums[j].copy()), dtype=np.int64)
            else:
                offset = self.prg.uniform_mod(self.modulus - 1, state.spec.size) + 1
                sums[j] = (sums[j] + offset) % self.modulus
        state.sums = sums

    def _reconstruct(self, state: _Round) -> None:
        """Step 4: the server decodes the answering holders' sums (correcting wrong ones)."""
        xs = [j + 1 for j in state.holders]
        received = state.sums[state.holders]
        if self.robust and len(xs) > self.threshold:
            state.encoded, state.bad = reed_solomon.decode(xs, received, self.threshold,
                                                           self.modulus, self.prg)
            if state.bad:
                logging.warning('Shamir aggregation: holders %s sent wrong sums and were '
                                'corrected', [x - 1 for x in state.bad])
        else:
            t = self.threshold
            _, invalid = reed_solomon.out_of_field(received[:t], self.modulus)
            if invalid:
                raise DecodingError(f'holders {[state.holders[i] for i in invalid]} sent values '
                                    f'outside [0, {self.modulus}) and only {len(xs)} holders '
                                    f'answered: nothing to correct them with')
            state.encoded = field.reconstruct_field(xs[:t], received[:t], self.modulus)

    def _stats(self, state: _Round, k: int, seconds: float) -> AggregationStats:
        """Costs of the round; also fills `traffic`."""
        size = state.spec.size
        message = _MESSAGE_HEADER_BYTES + (self.modulus.bit_length() + 7) // 8 * size
        self.traffic = {f'client {i}': ((self.num_parties, self.num_parties * message)
                                        if i in state.senders else (0, 0)) for i in range(k)}
        self.traffic.update({f'holder {j}': ((1, message) if j in state.holders else (0, 0))
                             for j in range(self.num_parties)})
        dropped = (k - len(state.senders) + len(set(self.faults.offline_clients))
                   + self.num_parties - len(state.holders))
        return AggregationStats(
            self.name, k, num_dropped=dropped,
            messages=sum(m for m, _ in self.traffic.values()),
            bytes_per_client=float(self.num_parties * message),
            bytes_total=sum(b for _, b in self.traffic.values()), seconds=seconds,
            extra={'holders': float(self.num_parties), 'threshold': float(self.threshold),
                   'holders_answered': float(len(state.holders)),
                   'bad_holders': float(len(state.bad)), 'bytes_per_holder': float(message),
                   'bytes_per_weight_per_client': self.num_parties * message / max(size, 1),
                   'max_abs_error': len(state.senders) * 2.0**-(self.encoder.precision + 1)
                   / state.total_weight})
