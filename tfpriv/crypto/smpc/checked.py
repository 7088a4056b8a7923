"""A network that checks the form of every message before the parties combine them.

In a broadcast round every computing party sends the same kind of message:
the same number of arrays, each of the shape and dtype that the protocol step
fixes (every honest party computes it from its own share of the same shape).
`VerifyingNetwork` has each receiver compare every incoming message with its
own outgoing one and raises `MalformedMessageError`, naming the sender, when
they differ, instead of letting NumPy broadcast a wrong shape into a
plausible-looking but wrong model. With three or more parties the sender that
disagrees with the majority is named; with two, both are.

What this cannot catch: a well-formed message with wrong values. Additive
sharing with a dealer is secure against semi-honest parties only; detecting
such deviations needs information-theoretic MACs (SPDZ, Damgård et al.,
CRYPTO 2012). The training checks what it reveals for plausibility instead
(`training.py`: counts must be integers in [0, N], losses finite).
"""

from __future__ import annotations

import collections
from typing import List, Optional, Sequence

import numpy as np

from tfpriv.crypto.smpc import Cluster, Encoding, Network
from tfpriv.crypto.smpc.dealer import Dealer
from tfpriv.crypto.smpc.party import Combiner
from tfpriv.errors import MalformedMessageError
from tfpriv.rng import RandomSource


def _form(message) -> tuple:
    """The (shape, dtype) of each array of a message, or a description of what it is."""
    if not isinstance(message, (tuple, list)):
        return ('not a tuple of arrays: ' + type(message).__name__,)
    return tuple((np.shape(a), a.dtype.str) if isinstance(a, (np.ndarray, np.generic))
                 else ('not an array: ' + type(a).__name__,) for a in message)


class VerifyingNetwork(Network):
    """`Network` whose broadcasts refuse messages of the wrong form (see the module docstring)."""

    def __init__(self, num_parties: int):
        super().__init__()
        self.num_parties = num_parties

    def broadcast(self, contributions: Sequence[Sequence[np.ndarray]],
                  combiners: Sequence[Combiner]) -> List[np.ndarray]:
        if len(contributions) != self.num_parties:
            raise MalformedMessageError(f'a broadcast round needs one message from each of the '
                                        f'{self.num_parties} parties, got {len(contributions)}')
        forms = [_form(message) for message in contributions]
        if len(set(forms)) == 1 and len(forms[0]) == len(combiners):
            return super().broadcast(contributions, combiners)
        majority, votes = collections.Counter(forms).most_common(1)[0]
        if votes * 2 > len(forms) and len(majority) == len(combiners):
            culprits = [i for i, form in enumerate(forms) if form != majority]
            reference = majority
        else:
            culprits, reference = list(range(len(forms))), None
        raise MalformedMessageError(self._describe(culprits, forms, reference, self._operation))

    @staticmethod
    def _describe(culprits: List[int], forms: list, reference: Optional[tuple],
                  operation: Optional[str]) -> str:
        sent = '; '.join(f'party{i} sent {forms[i]}' for i in culprits)
        wanted = f', the others sent {reference}' if reference is not None else ''
        return (f'malformed message in a broadcast round of {operation or "a protocol step"}: '
                f'{sent}{wanted}; stopping rather than computing a wrong result')


def verified_cluster(num_parties: int, encoding: Encoding = Encoding(),
                     rng: Optional[RandomSource] = None,
                     network: Optional[VerifyingNetwork] = None,
                     check_overflow: bool = False) -> Cluster:
    """A `Cluster` whose parties and dealer talk through a `VerifyingNetwork`.

    `network` (a `VerifyingNetwork` subclass instance) replaces the default,
    e.g. one that injects faults in tests; `check_overflow` is `Cluster`'s.
    """
    rng = RandomSource() if rng is None else rng
    cluster = Cluster(num_parties, encoding, rng=rng, check_overflow=check_overflow)
    cluster.network = network if network is not None else VerifyingNetwork(cluster.num_parties)
    cluster.dealer = Dealer(cluster.num_parties, cluster.network, rng)
    return cluster
