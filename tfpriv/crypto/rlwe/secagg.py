"""`RlweAggregator`: federated averaging under BFV with threshold decryption.

One round, simulated in-process with the messages serialized to count bytes:
1. Key setup (once per round here): a dealer draws (s, pk), Shamir-shares s
   among the k clients with threshold T (`threshold.share_secret_key`) and
   forgets s. Every client receives pk.
2. Client i checks |update| <= bound, encodes it in fixed point
   (`encoding.Encoder`, precision f) and sends Enc_pk(update), compressed by
   modulus switching when the noise budget allows it (see below).
3. The server uses integer weights such as example counts exactly (W_i = c_i
   divided by their gcd), turns fractional weights into W_i = round(w_i 2^b)
   (b = `weight_bits`), and computes sum_i W_i ct_i homomorphically
   (products by public scalars, then additions; modulo 2^d when compressed).
4. T clients send partial decryptions with smudging noise; the server combines
   them and divides by 2^f sum_i W_i.
The result is the weighted average with the weights W_i / sum W_i (exact for
integer weights; each within 2^-(b+1) / sum W_i of w_i for fractional ones) up
to fixed-point error k 2^-(f+1) W_max / sum W.

Compression vs smudging: smudging needs q/(2t) to exceed the aggregate noise
by 2^kappa. Modulus switching to at most 62 bits adds too much noise for
kappa = 40 with the default t = 2^30, so with `compress_updates=None` (auto) the
aggregator compresses only when `choose_widths` finds widths that still leave
room for the smudging, and otherwise sends full RNS residues.
"""

from __future__ import annotations

import math
import time
from typing import Optional, Union

import numpy as np

from tfpriv.crypto.rlwe import bfv, keys, modswitch, serialize, threshold
from tfpriv.crypto.rlwe.encoding import Encoder
from tfpriv.crypto.rlwe.params import Params, preset
from tfpriv.crypto.secagg import AggregationStats, SecureAggregator, check_updates
from tfpriv.errors import FixedPointRangeError
from tfpriv.rng import RandomSource


class RlweAggregator(SecureAggregator):
    """Weighted FedAvg of updates encrypted under BFV; any T of the k clients decrypt."""

    name = 'rlwe'

    def __init__(self, params: Union[str, Params] = 'n4096', precision: int = 16,
                 bound: float = 4.0, weight_bits: int = 10, threshold_fraction: float = 0.5,
                 compress_updates: Optional[bool] = None, kappa: int = threshold.DEFAULT_KAPPA,
                 rng: Optional[RandomSource] = None):
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

    def _widths(self, fresh: bfv.Noise, weights: np.ndarray, parties: int):
        if self.compress_updates is False:
            return None
        reserve = self.kappa + math.log2(parties) + 2
        try:
            return modswitch.choose_widths(self.params, fresh, len(weights),
                                          int(weights.max()), reserve)
        except ValueError:
            if self.compress_updates:
                raise
            return None

    def aggregate(self, client_updates, weights=None):
        """Weighted average of the updates (see the module doc for the protocol).

        Raises:
          ValueError: bad updates or weights, a value above `bound`, or parameters
            that leave no room for the weighted sum or the smudging noise.
        """
        start = time.perf_counter()
        spec, normalized = check_updates(client_updates, weights)
        k = len(client_updates)
        integer_weights = self._integer_weights(weights, normalized)
        parties = int(math.floor(self.threshold_fraction * k)) + 1
        secret, public = keys.keygen(self.params, self.rng)
        shares = threshold.share_secret_key(secret, parties, k, self.rng)
        del secret
        units = self.encoder.fixed.units(self.bound)
        widths = self._widths(bfv.fresh_noise(self.params, units), integer_weights, parties)
        upload, total = 0, None
        for i, update in enumerate(client_updates):
            vector = spec.flatten(update)
            largest = float(np.max(np.abs(vector))) if vector.size else 0.0
            if largest > self.bound:
                raise ValueError(f'client {i} has an update value of magnitude {largest:g} above '
                                 f'the public bound {self.bound:g}: raise `bound`')
            ct = bfv.encrypt(public, self.encoder.encode(vector), self.rng)
            if widths is not None:
                ct = modswitch.compress(ct, *widths)
            message = serialize.dumps(ct)
            upload += len(message)
            received = serialize.loads(message, self.params, units)
            if widths is not None:
                term = received.scale(int(integer_weights[i]))
            else:
                term = bfv.mul_scalar(received, int(integer_weights[i]))
            total = term if total is None else (total + term if widths is not None
                                                else bfv.add(total, term))
        aggregate = modswitch.decompress(total) if widths is not None else total
        bits = threshold.smudging_bits(self.params, aggregate.noise, parties, self.kappa)
        xs = [share.x for share in shares[:parties]]
        partials = {share.x: threshold.partial_decrypt(share, aggregate, xs, bits, self.rng)
                    for share in shares[:parties]}
        plain = threshold.combine(aggregate, partials, parties, bits)
        average = self.encoder.decode(plain, spec.size, float(integer_weights.sum()))
        partial_bytes = sum(p.astype(np.uint32).nbytes for p in partials.values())
        stats = AggregationStats(
            self.name, k, messages=k + parties, bytes_per_client=upload / k,
            bytes_total=upload + partial_bytes, seconds=time.perf_counter() - start,
            extra={'threshold': float(parties), 'smudging_bits': float(bits),
                   'compressed': float(widths is not None),
                   'noise_budget_bits': aggregate.noise.budget_bits(self.params),
                   'bytes_per_weight': upload / k / max(spec.size, 1)})
        return spec.unflatten(average), stats
