"""`RlweAggregator`: federated averaging under BFV with a dealer-free threshold key.

One round, simulated in-process with the messages serialized to count bytes:
1. Key setup without a dealer (`multiparty.setup_keys`; Mouchet et al.,
   PoPETs 2021): each of the k clients draws its own secret-key share s_i
   and publishes a public-key share over a common random polynomial; the
   server sums them into the collective pk. Each client Shamir re-shares s_i
   among the clients (threshold T), so any T of them can decrypt. The
   server never holds s or any share of it.
2. Client i checks |update| <= bound, encodes it in fixed point
   (`encoding.Encoder`, precision f) and sends Enc_pk(update), compressed by
   modulus switching when the noise budget allows it (see below).
3. The server uses integer weights such as example counts exactly (W_i = c_i
   divided by their gcd), turns fractional weights into W_i = round(w_i 2^b)
   (b = `weight_bits`), and computes sum_i W_i ct_i homomorphically
   (products by public scalars, then additions; modulo 2^d when compressed).
4. T clients send partial decryptions of that aggregate with smudging noise;
   the server combines them and divides by 2^f sum_i W_i.
The result is the weighted average with the weights W_i / sum W_i (exact for
integer weights; each within 2^-(b+1) / sum W_i of w_i for fractional ones) up
to fixed-point error k 2^-(f+1) W_max / sum W.
Everything the server received is kept in `transcript` (a
`multiparty.ServerView`); the threat model is in `multiparty`'s docstring.

Compression vs smudging: smudging needs q/(2t) to exceed the aggregate noise
by 2^kappa. Modulus switching to at most 62 bits adds too much noise for
kappa = 40 with the default t = 2^30, so with `compress_updates=None` (auto) the
aggregator compresses only when `choose_widths` finds widths that still leave
room for the smudging, and otherwise sends full RNS residues.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import List, Optional, Tuple, Union

import numpy as np

from tfpriv.crypto.rlwe import bfv, modswitch, multiparty, serialize
from tfpriv.crypto.rlwe.encoding import Encoder
from tfpriv.crypto.rlwe.params import Params, preset
from tfpriv.crypto.rlwe.threshold import DEFAULT_KAPPA
from tfpriv.crypto.secagg import AggregationStats, SecureAggregator, UpdateSpec, check_updates
from tfpriv.errors import FixedPointRangeError
from tfpriv.progress import Progress, each
from tfpriv.rng import RandomSource


@dataclasses.dataclass
class _Round:
    """State of one round: the key material of the simulated clients (`holders`, never
    kept by the server) and what the server holds (`key`, `view`)."""

    spec: UpdateSpec
    weights: np.ndarray
    threshold: int
    holders: List[multiparty.KeyHolder]
    key: multiparty.CollectiveKey
    view: multiparty.ServerView
    setup: multiparty.SetupCost
    setup_seconds: float
    widths: Optional[Tuple[int, int]]


class RlweAggregator(SecureAggregator):
    """Weighted FedAvg of updates encrypted under BFV; any T of the k clients decrypt."""

    name = 'rlwe'

    def __init__(self, params: Union[str, Params] = 'n4096', precision: int = 16,
                 bound: float = 4.0, weight_bits: int = 10, threshold_fraction: float = 0.5,
                 compress_updates: Optional[bool] = None, kappa: int = DEFAULT_KAPPA,
                 rng: Optional[RandomSource] = None, progress: Optional[Progress] = None):
        """
        Args:
          params: a preset name or `Params` (128-bit presets only unless built insecure).
          precision: fixed-point fractional bits f.
          bound: public bound B on |update values|; a larger value is refused.
          weight_bits: b, bits of W_i = round(w_i 2^b) for fractional weights (integer
            weights are used exactly).
          threshold_fraction: T = floor(fraction k) + 1 clients are needed to decrypt.
          compress_updates: True/False to force; None compresses when smudging still fits.
          kappa: statistical security of the smudging, in bits.
          rng: randomness (OS CSPRNG by default).
          progress: `tfpriv.progress` hook, told ('clients', i, k) as each client encrypts.
        """
        self.params = preset(params) if isinstance(params, str) else params
        if not isinstance(self.params, Params):
            raise TypeError(f'params must be a preset name or Params, got {type(params).__name__}')
        if not math.isfinite(bound) or bound <= 0:
            raise ValueError(f'bound must be positive and finite, got {bound}')
        if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) \
                or not 0 <= weight_bits <= 24:
            raise ValueError(f'weight_bits must be an int in [0, 24], got {weight_bits!r}')
        if not 0 <= threshold_fraction < 1:
            raise ValueError(f'threshold_fraction must be in [0, 1), got {threshold_fraction}')
        self.encoder = Encoder(self.params, precision)
        self.bound, self.weight_bits = float(bound), weight_bits
        self.threshold_fraction, self.compress_updates = threshold_fraction, compress_updates
        self.kappa, self.rng = kappa, rng if rng is not None else RandomSource()
        self.transcript: Optional[multiparty.ServerView] = None  # the last round's
        self.progress = progress

    def _integer_weights(self, raw, normalized: np.ndarray) -> np.ndarray:
        """The given weights exactly (divided by their gcd) when they are integers, such as
        example counts; else round(w_i 2^b) for fractional weights."""
        raw = None if raw is None else np.asarray(raw, dtype=np.float64)
        if raw is None:
            weights = np.ones(len(normalized), dtype=np.int64)
        elif np.all(raw == np.rint(raw)) and raw.sum() < 2**62:
            weights = raw.astype(np.int64)
            weights //= max(int(np.gcd.reduce(weights)), 1)
        else:
            weights = np.rint(normalized * 2.0**self.weight_bits).astype(np.int64)
        if weights.sum() == 0:
            raise ValueError(f'all weights round to 0 at weight_bits = {self.weight_bits}: '
                             'raise weight_bits')
        units = self.encoder.fixed.units(self.bound)
        if int(weights.sum()) * units > self.encoder.fixed.max_int:
            raise FixedPointRangeError(
                f'the weighted sum could reach {int(weights.sum()) * units} > '
                f'{self.encoder.fixed.max_int} (t = {self.params.t}): lower precision '
                f'({self.encoder.fixed.precision}) or bound ({self.bound:g}), or pass '
                f'fractional weights (quantized to weight_bits = {self.weight_bits})')
        return weights

    def _widths(self, key: multiparty.CollectiveKey, weights: np.ndarray,
                threshold: int) -> Optional[Tuple[int, int]]:
        if self.compress_updates is False:
            return None
        fresh = key.fresh_noise(self.encoder.fixed.units(self.bound))
        reserve = self.kappa + math.log2(threshold) + 2
        try:
            return modswitch.choose_widths(self.params, fresh, len(weights), int(weights.max()),
                                          reserve, key.secret_norm2)
        except ValueError:
            if self.compress_updates:
                raise
            return None

    def _setup(self, spec: UpdateSpec, weights: np.ndarray) -> _Round:
        """Stage 1: dealer-free key setup among the k clients (threshold T)."""
        start, k = time.perf_counter(), len(weights)
        threshold = int(math.floor(self.threshold_fraction * k)) + 1
        holders, key, view, cost = multiparty.setup_keys(self.params, k, threshold, self.rng)
        return _Round(spec, weights, threshold, holders, key, view, cost,
                      time.perf_counter() - start, self._widths(key, weights, threshold))

    def _client_message(self, state: _Round, i: int, update) -> bytes:
        """Stage 2 (client i): bound check, fixed-point encoding, encryption, serialization."""
        vector = state.spec.flatten(update)
        largest = float(np.max(np.abs(vector)))
        if largest > self.bound:
            raise FixedPointRangeError(f'client {i} has an update value of magnitude {largest:g} above '
                             f'the public bound {self.bound:g}: raise `bound`')
        ct = state.key.encrypt(self.encoder.encode(vector), self.rng)
        if state.widths is not None:
            ct = modswitch.compress(ct, *state.widths, state.key.secret_norm2)
        return serialize.dumps(ct)

    def _weighted_sum(self, state: _Round) -> bfv.Ciphertext:
        """Stage 3 (server): sum_i W_i ct_i over the received messages."""
        total = None
        for message, weight in zip(state.view.ciphertexts, state.weights):
            received = serialize.loads(message, self.params, self.encoder.fixed.units(self.bound),
                                       key_parties=state.key.num_parties)
            if state.widths is not None:
                term = received.scale(int(weight))
                total = term if total is None else total + term
            else:
                term = bfv.mul_scalar(received, int(weight))
                total = term if total is None else bfv.add(total, term)
        if state.widths is None:
            return total
        return modswitch.decompress(total, state.key.secret_norm2)

    def aggregate(self, client_updates, weights=None):
        """Weighted average of the updates (see the module doc for the protocol).

        Raises:
          ValueError: bad or empty updates or weights, a value above `bound`, or parameters
            that leave no room for the weighted sum or the smudging noise.
        """
        start, self.transcript = time.perf_counter(), None  # (frees the last round's)
        spec, normalized = check_updates(client_updates, weights)
        if spec.size == 0:
            raise ValueError('the updates hold no values: there is nothing to encrypt')
        state = self._setup(spec, self._integer_weights(weights, normalized))
        for i in each(self.progress, 'clients', range(len(client_updates))):
            state.view.ciphertexts.append(self._client_message(state, i, client_updates[i]))
        aggregate = self._weighted_sum(state)
        plain = multiparty.decrypt(aggregate, state.holders[:state.threshold], state.threshold,
                                   state.view, self.kappa, self.rng)
        average = self.encoder.decode(plain, spec.size, float(state.weights.sum()))
        self.transcript = state.view
        return spec.unflatten(average), self._stats(state, aggregate,
                                                    time.perf_counter() - start)

    def _stats(self, state: _Round, aggregate: bfv.Ciphertext, seconds: float
               ) -> AggregationStats:
        k, upload = len(state.weights), sum(len(m) for m in state.view.ciphertexts)
        partials = state.view.partial_decryptions
        partial_bytes = sum(p.size * multiparty.RESIDUE_BYTES for p in partials.values())
        setup_bytes = k * state.setup.bytes_per_holder
        return AggregationStats(
            self.name, k, messages=k * (k + 1) + len(partials),
            bytes_per_client=(upload + setup_bytes) / k,
            bytes_total=upload + setup_bytes + partial_bytes, seconds=seconds,
            extra={'threshold': float(state.threshold),
                   'smudging_bits': float(state.view.smudging_bits),
                   'compressed': float(state.widths is not None),
                   'noise_budget_bits': aggregate.noise.budget_bits(self.params),
                   'bytes_per_weight': upload / k / max(state.spec.size, 1),
                   'setup_bytes_per_client': float(state.setup.bytes_per_holder),
                   'setup_seconds': state.setup_seconds})
