"""The secure-aggregation interface shared by every protocol in tfpriv.

A secure aggregator turns the model updates of many clients into their weighted
average without the server ever holding one client's update in the clear. The
Shamir (`tfpriv.crypto.shamir.secagg`), SMPC (`tfpriv.crypto.smpc`) and RLWE
(`tfpriv.crypto.rlwe`) protocols all implement `SecureAggregator`, in the
spirit of a Flower strategy: the federated loop only ever calls

    average, stats = aggregator.aggregate(client_updates, weights)

where `client_updates[i]` is a list of NumPy arrays as returned by
`keras.Model.get_weights()` and `weights[i]` is client i's weight (its number of
examples). `average` has the same shapes and dtypes as one update. `stats` is
an `AggregationStats` record of what the protocol cost.

`PlainAggregator` is the insecure reference that the others are tested against.

`SCHEMES` names every scheme and `registry()` maps each name to its class with
explicit imports: a scheme that fails to import raises `SchemeImportError`
naming it, it is never dropped silently. `Faults` describes simulated failures
(dropped or lying parties) and is given to an aggregator's constructor, so
`aggregate` has the same signature for every scheme.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np

from tfpriv import checks
from tfpriv.errors import SchemeImportError

Update = List[np.ndarray]
Corruption = Callable[[np.ndarray], np.ndarray]
SCHEMES = ('plain', 'shamir', 'smpc', 'rlwe', 'secagg')


@dataclasses.dataclass
class AggregationStats:
    """Cost of one aggregation.

    Attributes:
      scheme: protocol name (`plain`, `shamir`, `smpc`, `rlwe`).
      num_clients: updates submitted.
      num_dropped: clients or share-holders that dropped out and were tolerated.
      messages: messages sent by all parties together.
      bytes_per_client: mean bytes one client sent.
      bytes_total: bytes sent by all parties together.
      seconds: wall-clock time of `aggregate`.
      extra: protocol-specific figures (e.g. noise budget left, rounds).
    """

    scheme: str
    num_clients: int
    num_dropped: int = 0
    messages: int = 0
    bytes_per_client: float = 0.0
    bytes_total: int = 0
    seconds: float = 0.0
    extra: Dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Faults:
    """Failures to simulate in every round, by index (for tests and demonstrations).

    Attributes:
      dropped_holders: share-holders that never send their sum.
      corrupt: share-holders that send a wrong sum: a sequence of indices (each
        adds a uniformly random non-zero offset to every element), or a mapping
        index -> function from the correct sum (int64 field elements) to the one sent.
      silent_clients: clients that drop before sending their shares.
      offline_clients: clients that go offline right after sending them.
    """

    dropped_holders: Sequence[int] = ()
    corrupt: Union[Sequence[int], Mapping[int, Corruption]] = ()
    silent_clients: Sequence[int] = ()
    offline_clients: Sequence[int] = ()

    @staticmethod
    def indices(name: str, values: Sequence[int], limit: int) -> Tuple[int, ...]:
        """`values` as sorted distinct ints in [0, limit), else a ValueError naming `name`."""
        chosen = sorted({int(v) for v in values})
        if any(not 0 <= v < limit for v in chosen):
            raise ValueError(f'{name} must be indices in [0, {limit}), got {chosen}')
        return tuple(chosen)


@dataclasses.dataclass(frozen=True)
class UpdateSpec:
    """Shapes and dtypes of one update, to flatten it and restore it."""

    shapes: Tuple[Tuple[int, ...], ...]
    dtypes: Tuple[np.dtype, ...]

    @property
    def size(self) -> int:
        return int(sum(int(np.prod(s, dtype=np.int64)) for s in self.shapes))

    @classmethod
    def of(cls, update: Sequence[np.ndarray]) -> 'UpdateSpec':
        arrays = [np.asarray(a) for a in update]
        return cls(tuple(a.shape for a in arrays), tuple(a.dtype for a in arrays))

    def flatten(self, update: Sequence[np.ndarray]) -> np.ndarray:
        """Concatenate an update into one float64 vector (checked against the spec)."""
        if UpdateSpec.of(update).shapes != self.shapes:
            raise ValueError(f'update shapes {UpdateSpec.of(update).shapes} differ from '
                             f'the expected {self.shapes}')
        if not self.shapes:
            return np.zeros(0)
        return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in update])

    def unflatten(self, vector: np.ndarray) -> Update:
        """Split a flat vector back into arrays of the spec's shapes and dtypes."""
        vector = np.asarray(vector)
        if vector.shape != (self.size,):
            raise ValueError(f'expected a vector of {self.size} values, got shape {vector.shape}')
        out, start = [], 0
        for shape, dtype in zip(self.shapes, self.dtypes):
            stop = start + int(np.prod(shape, dtype=np.int64))
            out.append(vector[start:stop].reshape(shape).astype(dtype))
            start = stop
        return out


def check_updates(client_updates: Sequence[Sequence[np.ndarray]],
                  weights: Optional[Sequence[float]] = None) -> Tuple[UpdateSpec, np.ndarray]:
    """Validates a round's inputs; returns the common spec and weights normalized to sum 1.

    Raises:
      ValueError: no clients, updates of different shapes, non-finite values, or
        weights that are negative, non-finite, all zero or of the wrong length.
    """
    if len(client_updates) == 0:
        raise ValueError('no client updates to aggregate')
    spec = UpdateSpec.of(client_updates[0])
    for i, update in enumerate(client_updates):
        other = UpdateSpec.of(update)
        if other.shapes != spec.shapes:
            raise ValueError(f'client {i} sent shapes {other.shapes}, client 0 sent {spec.shapes}')
        for array in update:
            if not np.all(np.isfinite(array)):
                raise ValueError(f'client {i} sent NaN or infinite values')
    if weights is None:
        weights = np.ones(len(client_updates))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(client_updates),):
        raise ValueError(f'expected {len(client_updates)} weights, got shape {weights.shape}')
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f'weights must be finite, non-negative and not all zero, got {weights}')
    return spec, weights / weights.sum()


class SecureAggregator(abc.ABC):
    """A protocol that averages client updates without revealing any one of them."""

    name: str = 'abstract'

    @abc.abstractmethod
    def aggregate(self, client_updates: Sequence[Sequence[np.ndarray]],
                  weights: Optional[Sequence[float]] = None) -> Tuple[Update, AggregationStats]:
        """Returns the weighted average of `client_updates` and the protocol's costs.

        Args:
          client_updates: one list of arrays per client, all of the same shapes.
          weights: one non-negative weight per client (e.g. its example count);
            `None` means equal weights.
        """


class PlainAggregator(SecureAggregator):
    """The insecure reference: the server sees every update and averages them."""

    name = 'plain'

    def aggregate(self, client_updates, weights=None):
        start = time.perf_counter()
        spec, normalized = check_updates(client_updates, weights)
        total = sum(w * spec.flatten(u) for w, u in zip(normalized, client_updates))
        size = 8 * spec.size
        stats = AggregationStats(self.name, len(client_updates), messages=len(client_updates),
                                 bytes_per_client=float(size),
                                 bytes_total=size * len(client_updates),
                                 seconds=time.perf_counter() - start)
        return spec.unflatten(total), stats


# One loader per scheme, each an explicit import (the scheme modules import this
# interface module, so they are imported on first use rather than at the top).
def _plain() -> Type[SecureAggregator]:
    return PlainAggregator


def _shamir() -> Type[SecureAggregator]:
    from tfpriv.crypto.shamir.secagg import ShamirAggregator  # pylint: disable=g-import-not-at-top
    return ShamirAggregator


def _smpc() -> Type[SecureAggregator]:
    from tfpriv.crypto.smpc.secagg import SmpcAggregator  # pylint: disable=g-import-not-at-top
    return SmpcAggregator


def _rlwe() -> Type[SecureAggregator]:
    from tfpriv.crypto.rlwe.secagg import RlweAggregator  # pylint: disable=g-import-not-at-top
    return RlweAggregator


def _masking() -> Type[SecureAggregator]:
    from tfpriv.crypto.masking.secagg import MaskingAggregator  # pylint: disable=g-import-not-at-top
    return MaskingAggregator


_LOADERS: Dict[str, Callable[[], Type[SecureAggregator]]] = {
    'plain': _plain, 'shamir': _shamir, 'smpc': _smpc, 'rlwe': _rlwe, 'secagg': _masking}
# Schemes whose protocol is fixed to the round's number of clients at construction.
PER_ROUND_SCHEMES = ('secagg',)


def scheme_class(name: str) -> Type[SecureAggregator]:
    """The aggregator class of scheme `name` (one of `SCHEMES`).

    Raises:
      ValueError: an unknown name.
      SchemeImportError: the scheme's module failed to import (never skipped silently).
    """
    checks.choice('scheme', name, SCHEMES)
    try:
        return _LOADERS[name]()
    except ImportError as error:
        raise SchemeImportError(f'secure-aggregation scheme {name!r} failed to import '
                                f'({type(error).__name__}: {error}); fix the installation '
                                f'rather than choosing another scheme') from error


def registry() -> Dict[str, Type[SecureAggregator]]:
    """Every scheme by name, in the order of `SCHEMES` (raises like `scheme_class`)."""
    return {name: scheme_class(name) for name in SCHEMES}
