"""`RlweAggregator`: federated averaging over BFV ciphertexts.

One round, simulated in-process with the real message flow:
  1. Keys: a dealer draws (sk, pk) and, with `threshold=t`, Shamir-shares sk
     among the clients and forgets it; without a threshold a separate key
     holder (not the server) keeps sk.
  2. Client i scales its flat update by its public normalized weight w_i
     (pre-scaling, so the server never multiplies), encodes it in fixed point
     (precision chosen so the sum of all N clients' bounds w_i * bound fits in
     (-t/2, t/2), `FixedPoint.check_headroom`), encrypts it under pk,
     compresses c0 and sends the bytes (`serialize.to_bytes`). With
     `server_weights=True` clients encrypt the raw update instead and the
     server multiplies each ciphertext by the client's public integer weight
     (`scheme.mul_scalar`); the decrypted sum is divided by the weights' sum.
  3. The server parses and adds the ciphertexts. Before anything is encrypted
     the round is refused if the noise bounds (N fresh ones, times the server
     weights if any) could exceed Delta / 2.
  4. Decryption of the sum only: t clients send partial decryptions (with
     smudging), the server combines them; or the key holder decrypts.

What the server sees: the public key, the weights, the number of clients, the
ciphertexts (IND-CPA under RLWE, so nothing about an update) and, at the end,
the weighted average plus (threshold mode) the smudged aggregate noise.
What it cannot do: decrypt one client's ciphertext (it holds no key share, and
honest clients only partially decrypt the aggregate). Not covered: dropouts
between encryption and decryption beyond N - t parties, malicious clients
sending malformed plaintexts (no zero-knowledge proofs of bounds).
"""

from __future__ import annotations

import time
from typing import Optional, Union

import numpy as np

from tfpriv.crypto.bfv import scheme, serialize, threshold as thr
from tfpriv.crypto.bfv.encoding import Encoder
from tfpriv.crypto.bfv.params import BfvParams, preset
from tfpriv.crypto.fixed_point import FixedPoint
from tfpriv.crypto.secagg import AggregationStats, SecureAggregator, check_updates
from tfpriv.rng import RandomSource

_MAX_PRECISION = 40


def client_noise(params: BfvParams) -> float:
    """Noise bound of one fresh, compressed public-key ciphertext."""
    return scheme.fresh_noise(params) + 2.0 ** (params.log_q - params.c0_bits - 1)


def max_clients(params: BfvParams) -> int:
    """Most fresh compressed ciphertexts whose sum still decrypts (noise budget)."""
    return int((2.0 ** (params.delta_bits - 1) - 1) // client_noise(params))


class RlweAggregator(SecureAggregator):
    """Weighted average of client updates computed on BFV ciphertexts.

    Args:
      params: a `BfvParams` or preset name; default 'bfv-4096', or
        'bfv-4096-threshold' (more room for smudging) when `threshold` is set.
      bound: public bound on |update value|; larger values raise ValueError.
      threshold: t for threshold decryption among the clients (None: key holder).
      precision: fixed-point bits; default the largest that fits the round.
      server_weights: the server multiplies client i's ciphertext by its integer
        weight (plaintext scalar) and the result is divided by the weights' sum
        after decryption; noise grows with the sum of the weights. Default:
        clients pre-scale by their normalized weight (any real weights).
      rng: randomness (OS CSPRNG by default).
    """

    name = 'rlwe'

    def __init__(self, params: Union[None, str, BfvParams] = None, bound: float = 16.0,
                 threshold: Optional[int] = None, precision: Optional[int] = None,
                 server_weights: bool = False, rng: Optional[RandomSource] = None):
        if params is None:
            params = 'bfv-4096' if threshold is None else 'bfv-4096-threshold'
        self.params = preset(params) if isinstance(params, str) else params
        if not (np.isfinite(bound) and bound > 0):
            raise ValueError(f'bound must be a positive finite float, got {bound}')
        self.bound = float(bound)
        self.threshold = threshold
        self.precision = precision
        self.server_weights = server_weights
        self.rng = rng or RandomSource()

    def _precision(self, scaled_bounds: np.ndarray) -> int:
        fixed = FixedPoint(self.params.t, 0)
        precision = self.precision
        if precision is None:
            precision = min(fixed.largest_precision(scaled_bounds), _MAX_PRECISION)
            if precision < 0:
                raise ValueError(f'bound {self.bound} is too large for t = 2^'
                                 f'{self.params.plain_bits}')
        FixedPoint(self.params.t, precision).check_headroom(len(scaled_bounds), scaled_bounds)
        return precision

    def _weighting(self, weights, normalized: np.ndarray):
        """(integer server scalars, client pre-scaling factors) for this round."""
        if not self.server_weights:
            return np.ones(len(normalized), dtype=np.int64), normalized
        raw = np.ones(len(normalized)) if weights is None else np.asarray(weights, np.float64)
        if np.any(raw != np.round(raw)) or np.any(raw > 2**31):
            raise ValueError(f'server_weights=True multiplies ciphertexts by the weights, '
                             f'which must be integers below 2^31 (e.g. example counts), '
                             f'got {raw}')
        return raw.astype(np.int64), np.ones(len(normalized))

    def aggregate(self, client_updates, weights=None):
        start = time.perf_counter()
        spec, normalized = check_updates(client_updates, weights)
        num = len(client_updates)
        scalars, prescale = self._weighting(weights, normalized)
        if client_noise(self.params) * scalars.sum() >= 2.0 ** (self.params.delta_bits - 1):
            raise ValueError(f'{num} clients with server weights summing to {scalars.sum()} '
                             f'exceed the noise budget of these parameters: at most '
                             f'{max_clients(self.params)} unit-weight ciphertexts can be added')
        if self.threshold is not None and not 1 <= self.threshold <= num:
            raise ValueError(f'threshold must be in [1, {num}] clients, got {self.threshold}')
        scaled_bounds = prescale * scalars * self.bound
        precision = self._precision(scaled_bounds)
        sk, pk = scheme.keygen(self.params, self.rng)
        shares = None if self.threshold is None else \
            thr.share_key(sk, self.threshold, num, self.rng)
        messages = []
        for update, weight in zip(client_updates, prescale):
            encoder = Encoder(self.params, precision, float(weight * self.bound))
            plain = encoder.encode(weight * spec.flatten(update))
            ct = scheme.compress(scheme.encrypt(pk, plain, self.rng, encoder.units))
            messages.append(serialize.to_bytes(ct))
        total = None
        for message, scalar in zip(messages, scalars):
            ct = serialize.from_bytes(message, self.params)
            ct = ct if scalar == 1 else scheme.mul_scalar(ct, int(scalar))
            total = ct if total is None else scheme.add(total, ct)
        extra = {'noise_budget_bits': scheme.noise_budget_bits(total),
                 'precision_bits': float(precision)}
        sent = sum(len(m) for m in messages)
        if shares is None:
            plain = scheme.decrypt(sk, total)
        else:
            xs = [share.x for share in shares[:self.threshold]]
            partials = [thr.partial_decrypt(share, total, xs, self.rng)
                        for share in shares[:self.threshold]]
            plain = thr.combine(total, partials, self.threshold)
            sent += sum(p.values.nbytes for p in partials)
            extra['smudging_bits'] = thr.smudging_bits(total, self.threshold)
        average = FixedPoint(self.params.t, precision).decode(plain.reshape(-1)[:spec.size])
        if self.server_weights:
            average /= scalars.sum()
        stats = AggregationStats(self.name, num, messages=num + (self.threshold or 0),
                                 bytes_per_client=float(np.mean([len(m) for m in messages])),
                                 bytes_total=sent, seconds=time.perf_counter() - start,
                                 extra=extra)
        return spec.unflatten(average), stats
