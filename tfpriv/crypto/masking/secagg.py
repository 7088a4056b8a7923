"""`MaskingAggregator`: SecAgg+ (Bonawitz et al. 2017 with the graph of Bell et al. 2020).

The fourth `SecureAggregator` of tfpriv, next to Shamir, SMPC and RLWE: clients
mask their quantized update with pairwise masks that cancel in the sum and a
self mask the server removes once the round is over, so each client sends about
one quantized update (ceil(b / 8) bytes per weight) plus O(k) small messages,
and any t of each client's k neighbours can unmask after dropouts. See
`protocol.py` for the stages and the threat model, `quantize.py` for the
encoding and its error bound.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from tfpriv import checks
from tfpriv.crypto.masking import protocol
from tfpriv.crypto.masking.graph import check_neighbours, default_neighbours
from tfpriv.crypto.masking.protocol import Dropouts, RoundState
from tfpriv.crypto.masking.quantize import Quantizer
from tfpriv.crypto.secagg import AggregationStats, SecureAggregator, check_updates
from tfpriv.progress import Progress
from tfpriv.rng import RandomSource


class MaskingAggregator(SecureAggregator):
    """Weighted FedAvg by pairwise and self masking; tolerates dropouts at every stage.

    After `aggregate`, `last_round` holds the round's `RoundState`: the graph,
    the sets U1..U4, every message the server received (`last_round.view`) and
    the bytes each client sent.
    """

    name = 'secagg'

    def __init__(self, num_parties: int, neighbours: Optional[int] = None,
                 threshold: Optional[int] = None, bits: int = 32, precision: int = 20,
                 bound: float = 512.0, rounding: str = 'stochastic',
                 dropouts: Optional[Dropouts] = None, rng: Optional[RandomSource] = None,
                 progress: Optional[Progress] = None):
        """
        Args:
          num_parties: n, the clients of every round.
          neighbours: k, each client's neighbours: an even number (sparse Harary
            graph) or n - 1 (complete graph); default `default_neighbours(n)`, SecAgg+'s
            2 ceil(log2 n) (the complete graph up to n = 7).
          threshold: t, neighbours' shares needed to unmask a client, in
            (k/2, k] so honest answers never give the server both b_u and s_u;
            default floor(k/2) + 1 (then k - t neighbours of each client may drop).
          bits: b, the modulus is 2^b (8 to 64).
          precision: fractional bits f of the fixed-point encoding.
          bound: public bound B on |update values|; a larger value is refused.
          rounding: 'stochastic' (unbiased) or 'deterministic' (nearest).
          dropouts: clients to drop after each stage (fault injection).
          rng: randomness of keys, seeds, shares and rounding; default OS CSPRNG.
          progress: `tfpriv.progress` hook, told ('clients: keys', i, n), then
            'clients: shares', 'clients: masked inputs' and 'clients: replies' over
            the clients still online at each stage.

        Raises:
          FixedPointRangeError: n clients' encodings could wrap modulo 2^b.
        """
        num_parties = checks.integer('num_parties', num_parties, minimum=3)
        neighbours = check_neighbours(num_parties, default_neighbours(num_parties)
                                      if neighbours is None else neighbours)
        threshold = checks.integer('threshold', neighbours // 2 + 1 if threshold is None
                                   else threshold, minimum=neighbours // 2 + 1,
                                   maximum=neighbours)
        quantizer = Quantizer(bits, precision, bound, rounding)
        quantizer.check_headroom(num_parties)
        dropouts = Dropouts() if dropouts is None else dropouts
        if not isinstance(dropouts, Dropouts):
            raise TypeError(f'dropouts must be a Dropouts, got {type(dropouts).__name__}')
        dropouts.check(num_parties)
        self.config = protocol.Config(num_parties, threshold, neighbours, quantizer, dropouts)
        self.rng = rng if rng is not None else RandomSource()
        self.last_round: Optional[RoundState] = None
        self.progress = progress

    def aggregate(self, client_updates, weights=None):
        """Weighted average of the n updates over the clients whose masked input arrived.

        Raises:
          ValueError: bad updates or weights, not n updates, or a value above `bound`.
          DropoutError: fewer than t shares survive for a client that must be unmasked.
        """
        start = time.perf_counter()
        spec, normalized = check_updates(client_updates, weights)
        if len(client_updates) != self.config.num_parties:
            raise ValueError(f'expected num_parties={self.config.num_parties} client updates, '
                             f'got {len(client_updates)}')
        state = protocol.run(self.config, [spec.flatten(u) for u in client_updates], normalized,
                             self.rng, self.progress)
        self.last_round = state
        return spec.unflatten(state.average), self._stats(state, time.perf_counter() - start)

    def _stats(self, state: RoundState, seconds: float) -> AggregationStats:
        config = state.config
        senders = list(state.submitted)  # the clients whose masked input arrived
        client_seconds = [state.clients[u].seconds for u in senders]
        weight = sum(state.clients[u].weight for u in state.submitted)
        error = (len(state.submitted) * config.quantizer.max_error_units
                 * 2.0**-config.quantizer.precision / weight)
        return AggregationStats(
            self.name, config.num_parties, num_dropped=len(config.dropouts.indices),
            messages=state.messages, bytes_per_client=float(np.mean(state.sent[senders])),
            bytes_total=int(state.sent.sum()), seconds=seconds,
            extra={'neighbours': float(config.neighbours), 'threshold': float(config.threshold),
                   'bits': float(config.quantizer.bits),
                   'bytes_per_weight_per_client': float(np.mean(state.sent[senders]))
                   / max(state.size, 1),
                   'client_seconds_mean': float(np.mean(client_seconds)),
                   'client_seconds_median': float(np.median(client_seconds)),
                   'client_seconds_max': float(np.max(client_seconds)),
                   'client_cpu_seconds_median': float(np.median(
                       [state.clients[u].cpu_seconds for u in senders])),
                   **{f'client_cpu_seconds_median_{stage}': float(np.median(
                       [state.clients[u].stage_cpu_seconds.get(stage, 0.0) for u in senders]))
                      for stage in protocol.STAGE_NAMES},
                   'server_seconds': state.server_seconds,
                   'server_cpu_seconds': state.server_cpu_seconds,
                   'inputs_summed': float(len(state.submitted)),
                   'max_abs_error': error})
