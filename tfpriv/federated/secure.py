"""Secure aggregation inside a TFF FedAvg round.

TFF cannot call a Python protocol from inside a federated computation, so a
round with secure aggregation is split at the aggregation, the one place
where client values move to the server:

1. `client_round` (a `tff.federated_computation`, run by the TFF runtime or
   its remote workers): broadcast the global weights, run TFF's client work
   (`tff.learning.templates.build_model_delta_client_work`: E local epochs of
   the client optimizer) and return each client's `ClientResult(update,
   update_weight)` still placed at CLIENTS, plus aggregated train metrics.
2. The client-placed results go straight into the client role of the
   `SecureAggregator` (`tfpriv.crypto.secagg`): each client fixed-point
   encodes its own weighted delta and secret-shares or encrypts it; only
   shares / ciphertexts leave the client. The share-holders (or the server,
   for RLWE ciphertexts) combine them and reveal only Σ_i w_i Δ_i.
3. `finalizer.next` (TFF's `build_apply_optimizer_finalizer`, at SERVER) applies
   the server optimizer to that average delta.

So the server-placed part of the round only ever receives the aggregate; an
individual update is never placed at SERVER. The example counts used as
weights are public, as in plain FedAvg. The simulation runs every role in one
Python process (the updates are Python values between steps 1 and 2, in the
client role's hands); message and byte counts are those the protocol would
send, reported by `AggregationStats`.

The schemes come from the registry of `tfpriv.crypto.secagg` (`SCHEMES`,
`scheme_class`): a scheme that fails to import raises `SchemeImportError`.
"""

from __future__ import annotations

import inspect
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tfpriv.crypto.secagg import (PER_ROUND_SCHEMES, SCHEMES, AggregationStats, SecureAggregator,
                                  registry, scheme_class)
from tfpriv.federated import dropouts
from tfpriv.rng import RandomSource

CHOICES = ('none',) + tuple(name for name in SCHEMES if name != 'plain')


def available_schemes() -> List[str]:
    """The secure-aggregation schemes (every registered one; a broken one raises)."""
    return [name for name in registry() if name != 'plain']


def make_aggregator(name: str, rng: Optional[RandomSource] = None,
                    num_parties: Optional[int] = None, bound: Optional[float] = None,
                    precision: Optional[int] = None,
                    neighbours: Optional[int] = None) -> SecureAggregator:
    """An aggregator by name (`plain` is the insecure reference); `num_parties`, the
    clients of every round, is needed by the schemes in `PER_ROUND_SCHEMES` (SecAgg+);
    `bound` (public bound on |update values|) and `precision` (fixed-point fractional
    bits) and `neighbours` (SecAgg+'s graph degree) override the scheme's defaults where it
    has them (None: the default)."""
    if name not in SCHEMES:
        raise ValueError(f'unknown secure aggregation {name!r}; choose one of {CHOICES}')
    cls = scheme_class(name)
    if name == 'plain':
        return cls()
    options = {k: v for k, v in (('bound', bound), ('precision', precision),
                                 ('neighbours', neighbours)) if v is not None}
    unsupported = [k for k in options if k not in inspect.signature(cls).parameters]
    if unsupported:
        raise ValueError(f'secure aggregation {name!r} has no {unsupported[0]} to set')
    if name in PER_ROUND_SCHEMES:
        if num_parties is None:
            raise ValueError(f'secure aggregation {name!r} needs num_parties (clients per round)')
        return cls(num_parties, rng=rng, **options)
    return cls(rng=rng, **options)


class SecureRound:
    """A FedAvg round whose aggregation is a `SecureAggregator` (see the module docstring).

    State is `(model_weights, finalizer_state)`; both are nests of NumPy arrays.
    """

    def __init__(self, model_fn, client_optimizer_fn, server_optimizer_fn,
                 aggregator: SecureAggregator, element_spec):
        import tensorflow_federated as tff
        self.aggregator = aggregator
        weights_type = tff.learning.models.weights_type_from_model(model_fn)
        self._client_work = tff.learning.templates.build_model_delta_client_work(
            model_fn, client_optimizer_fn, tff.learning.ClientWeighting.NUM_EXAMPLES)
        self._finalizer = tff.learning.templates.build_apply_optimizer_finalizer(
            server_optimizer_fn, weights_type)
        client_work = self._client_work
        data_type = client_work.next.type_signature.parameter[2].member

        @tff.federated_computation(tff.FederatedType(weights_type, tff.SERVER),
                                   tff.FederatedType(data_type, tff.CLIENTS))
        def client_round(weights, data):
            output = client_work.next(client_work.initialize(), tff.federated_broadcast(weights),
                                      data)
            return output.result, output.measurements

        self._client_round = client_round
        self._initial_weights = tff.learning.models.ModelWeights.from_model(model_fn())

    def initialize(self):
        weights = self._initial_weights
        return weights, self._finalizer.initialize()

    @staticmethod
    def get_model_weights(state):
        return state[0]

    def next(self, state, client_data, dropped: Optional[Sequence[bool]] = None
             ) -> Tuple[object, dict, AggregationStats]:
        """One round: TFF client work, secure aggregation, TFF server finalizer.

        `dropped[i]`: sampled client i goes offline before its update reaches the sum
        (`dropouts`); only the others are trained (a dropped client's update is never used)
        and the aggregate is their mean.
        """
        weights, finalizer_state = state
        mask = np.zeros(len(client_data), bool) if dropped is None else np.asarray(dropped, bool)
        results, measurements = self._client_round(
            weights, [d for d, gone in zip(client_data, mask) if not gone])
        updates, counts = self._slots(results, mask)
        average, stats = dropouts.aggregate(self.aggregator, updates, counts, mask)
        output = self._finalizer.next(finalizer_state, weights, average)
        return (output.result, output.state), dict(measurements['train']), stats

    def _slots(self, results, mask: np.ndarray) -> Tuple[List[List[np.ndarray]], List[float]]:
        """One (update, example count) per sampled client: the survivors' TFF results in
        order, a zero update of count 0 in a dropped client's slot (never summed)."""
        survivors = iter(results)
        zeros = [np.zeros(np.shape(w), np.asarray(w).dtype) for w in self._initial_weights.trainable]
        updates, counts = [], []
        for gone in mask:
            result = None if gone else next(survivors)
            updates.append(zeros if gone else list(result.update))
            counts.append(0.0 if gone else float(result.update_weight))
        return updates, counts
