"""Parties, the in-process network between them, and the cluster that groups them.

A `Party` owns a private store of shares, addressed by handles: the only
place a share lives. Protocols run party by party: party i's new share is a
function of party i's own shares, its own messages from the dealer, and the
values that were *opened* (broadcast) in the round. Nothing else crosses
between parties, and every crossing goes through `Network`, which counts it:

  * `broadcast`: each computing party sends its contribution to every other
    one (n (n - 1) messages, one round); all of them combine the same
    contributions into the same public value, which is computed once here.
  * `deliver`: each share-holder sends its share to one receiver (a reveal to
    a named party), or an input owner sends one share to each party.
  * `offline`: the dealer's preprocessing messages, counted apart.

Traffic is attributed to the outermost named operation in progress (`relu`
includes the comparison and the multiplication it runs), so a user can see
what each layer costs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from tfpriv import checks
from tfpriv.rng import Prg, RandomSource
from tfpriv.crypto.smpc.ring import Encoding

Shares = List[np.ndarray]  # one array per computing party, index-aligned with the parties
Combiner = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass
class Traffic:
    """Communication of some protocol steps: sequential rounds, messages, bytes."""

    rounds: int = 0
    messages: int = 0
    bytes: int = 0

    def add(self, rounds: int, messages: int, nbytes: int) -> None:
        self.rounds += rounds
        self.messages += messages
        self.bytes += nbytes


class Network:
    """Counts the messages that parties exchange, per operation, online and offline."""

    def __init__(self):
        self.online = Traffic()
        self.offline = Traffic()
        self.by_operation: Dict[str, Traffic] = {}
        self._operation: Optional[str] = None

    @contextlib.contextmanager
    def operation(self, name: str) -> Iterator[None]:
        """Attributes the traffic inside the block to `name` (outermost name wins)."""
        if self._operation is not None:
            yield
            return
        self._operation = name
        try:
            yield
        finally:
            self._operation = None

    def _record(self, rounds: int, messages: int, nbytes: int) -> None:
        self.online.add(rounds, messages, nbytes)
        name = self._operation or 'other'
        self.by_operation.setdefault(name, Traffic()).add(rounds, messages, nbytes)

    def broadcast(self, contributions: Sequence[Sequence[np.ndarray]],
                  combiners: Sequence[Combiner]) -> List[np.ndarray]:
        """One round in which every party sends its arrays to all the others.

        Args:
          contributions: contributions[i] is the tuple of arrays party i sends.
          combiners: for each array, how receivers combine the n contributions
            (np.add for arithmetic shares, np.bitwise_xor for binary ones).

        Returns:
          the public combined arrays, the same for every party.
        """
        n = len(contributions)
        nbytes = sum(a.nbytes for a in contributions[0])
        self._record(1, n * (n - 1) * len(contributions[0]), (n - 1) * n * nbytes)
        return [functools.reduce(combine, parts)
                for combine, parts in zip(combiners, zip(*contributions))]

    def deliver(self, senders: int, nbytes_each: int) -> None:
        """One round in which `senders` parties each send `nbytes_each` bytes to one receiver."""
        self._record(1, senders, senders * nbytes_each)

    def offline_delivery(self, bundles: Sequence[Sequence[np.ndarray]]) -> None:
        """The dealer sends bundles[i] to party i (preprocessing, not online traffic)."""
        self.offline.add(1, len(bundles), sum(a.nbytes for bundle in bundles for a in bundle))


class Party:
    """One participant: a computing party holding shares, or a client (input owner, receiver)."""

    def __init__(self, name: str, rng: Optional[RandomSource] = None):
        self.name = name
        self.prg = Prg(rng)
        self._store: Dict[int, np.ndarray] = {}

    def __repr__(self) -> str:
        return f'Party({self.name!r})'

    def hold(self, handle: int, share: np.ndarray) -> None:
        self._store[handle] = share

    def share(self, handle: int) -> np.ndarray:
        """This party's own share under `handle` (what the party itself sees)."""
        return self._store[handle]

    def drop(self, handle: int) -> None:
        self._store.pop(handle, None)


class Cluster:
    """n >= 2 computing parties, their dealer and network, and a fixed-point encoding.

    Args:
      num_parties: computing parties that hold shares (n >= 2; any n works).
      encoding: fixed-point encoding of reals (default 16 fractional bits).
      rng: randomness for every party's and the dealer's PRG keys; default the
        OS CSPRNG. `RandomSource(seed=...)` makes a run reproducible (insecure).
      check_overflow: before each product, securely bound the operands so that the
        result cannot leave the fixed-point range (|a|, |b| < 2^31 words for two
        shared operands, element-wise; tighter for dot products) and raise
        `FixedPointRangeError` otherwise (costs two comparisons per operand value;
        opens only the out-of-range flags, all 0 when the computation is valid).
        Off by default: an overflowing product otherwise wraps around silently.
    """

    def __init__(self, num_parties: int = 3, encoding: Encoding = Encoding(),
                 rng: Optional[RandomSource] = None, check_overflow: bool = False):
        from tfpriv.crypto.smpc.dealer import Dealer  # pylint: disable=g-import-not-at-top
        num_parties = checks.integer('num_parties', num_parties)
        if num_parties < 2:
            raise ValueError(f'additive sharing needs at least 2 computing parties, '
                             f'got {num_parties}')
        if not isinstance(encoding, Encoding):
            raise TypeError(f'encoding must be an Encoding, got {type(encoding).__name__}')
        self.encoding = encoding
        self.check_overflow = bool(check_overflow)
        self._rng = RandomSource() if rng is None else rng
        self.network = Network()
        self.parties = [Party(f'party{i}', self._rng) for i in range(int(num_parties))]
        self.dealer = Dealer(len(self.parties), self.network, self._rng)
        self._handles = itertools.count()

    @property
    def num_parties(self) -> int:
        return len(self.parties)

    def client(self, name: str) -> Party:
        """A party outside the computation: an input owner or a result receiver."""
        return Party(name, self._rng)

    def store(self, shares: Shares) -> int:
        """Gives shares[i] to party i; returns the handle they are filed under."""
        handle = next(self._handles)
        for party, share in zip(self.parties, shares):
            party.hold(handle, share)
        return handle

    def shares(self, handle: int) -> Shares:
        """Each party's own share under `handle`, index-aligned (party i uses only entry i)."""
        return [party.share(handle) for party in self.parties]

    def drop(self, handle: int) -> None:
        for party in self.parties:
            party.drop(handle)
