"""Client dropouts inside a federated round: sampled clients whose update never arrives.

A client sampled for a round may go offline before its update reaches the aggregate
(`FedConfig.dropout_rate` p: each sampled client drops independently with probability
p, drawn up front from the run's seed, so a dropout never depends on a client's data).
What "dropping" means depends on where the protocol can lose a client:

* `secagg` (SecAgg+, `tfpriv.crypto.masking`): the client advertises its keys and
  Shamir-shares its mask secrets, then goes offline before sending its masked input
  (`Dropouts(after_share=...)`). Its pairwise masks are already in its neighbours'
  inputs; the server rebuilds its mask key s_u from t of its neighbours' shares and
  removes them, so the survivors' sum is unmasked (Bonawitz et al. 2017, Sec. 4).
* `shamir`: the client is announced but never sends its shares
  (`Faults(silent_clients=...)`); the holders only add what arrived and the server
  divides by the weight of the clients that sent.
* `plain`, `smpc` and `rlwe`: a client only takes part by sending (SMPC's parties are
  three servers; RLWE's dealer-free key is set up per round by the clients online), so
  a dropped client is simply absent from the round's protocol.

Every aggregator returns the weighted mean over the survivors. `aggregate` is the one
entry point; an aggregator with its own dropout handling (`DistributedDpAggregator`,
which must also count the noise shares that arrived) exposes `aggregate_with_dropouts`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tfpriv.crypto.secagg import AggregationStats, Faults, SecureAggregator
from tfpriv.rng import RandomSource


def draw(schedule: Sequence[np.ndarray], rate: float, rng: RandomSource) -> List[np.ndarray]:
    """Per round, a bool mask over the sampled clients: True = drops (iid Bernoulli(rate),
    rate in [0, 1), checked by `fedavg.check_dp`)."""
    return [rng.uniform01(len(ids)) < rate for ids in schedule]


def in_protocol(aggregator: SecureAggregator) -> bool:
    """True if the protocol itself must see a dropped client (it took part before dropping)."""
    return aggregator.name in ('secagg', 'shamir')


@contextlib.contextmanager
def _injected(aggregator: SecureAggregator, dropped: Tuple[int, ...]) -> Iterator[None]:
    """For this round only: the protocol loses the clients `dropped` (see the module docstring)."""
    if aggregator.name == 'secagg':
        from tfpriv.crypto.masking.protocol import Dropouts  # pylint: disable=import-outside-toplevel
        saved = aggregator.config
        aggregator.config = dataclasses.replace(saved, dropouts=Dropouts(after_share=dropped))
        attribute = 'config'
    else:
        saved = aggregator.faults
        aggregator.faults = dataclasses.replace(saved, silent_clients=dropped)
        attribute = 'faults'
    try:
        yield
    finally:
        setattr(aggregator, attribute, saved)


def aggregate(aggregator: SecureAggregator, client_updates: Sequence[Sequence[np.ndarray]],
              weights: Optional[Sequence[float]], dropped: Optional[Sequence[bool]]
              ) -> Tuple[List[np.ndarray], AggregationStats]:
    """The weighted mean over the clients that did not drop, through `aggregator`.

    `client_updates[i]` and `weights[i]` are sampled client i's; a dropped client's
    entry is never summed (what it holds is irrelevant). Raises ValueError if every
    client dropped.
    """
    mask = np.zeros(len(client_updates), bool) if dropped is None else np.asarray(dropped, bool)
    if mask.shape != (len(client_updates),):
        raise ValueError(f'dropped must have one entry per client ({len(client_updates)}), '
                         f'got shape {mask.shape}')
    if mask.all():
        raise ValueError('every sampled client dropped: nothing to aggregate')
    if hasattr(aggregator, 'aggregate_with_dropouts'):
        return aggregator.aggregate_with_dropouts(client_updates, weights, mask)
    if not mask.any():
        return aggregator.aggregate(client_updates, weights)
    if in_protocol(aggregator):
        kept = np.ones(len(client_updates)) if weights is None else np.asarray(weights, float)
        with _injected(aggregator, tuple(int(i) for i in np.flatnonzero(mask))):
            return aggregator.aggregate(client_updates, np.where(mask, 0.0, kept))
    survivors = np.flatnonzero(~mask)
    return aggregator.aggregate([client_updates[i] for i in survivors],
                                None if weights is None else [weights[i] for i in survivors])
