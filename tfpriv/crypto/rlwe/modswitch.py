"""Small ciphertexts: modulus switching of each component to a power of two.

Before sending, c0 and c1 are switched from q to 2^d0 and 2^d1:
z_k = round(2^{d_k} c_k / q) mod 2^{d_k} (exact RNS formula in `rns`). The
phase c0/q + c1 s/q (mod 1) changes by the rounding errors: at most 2^-(d0+1)
for c0 and ||s||_1 2^-(d1+1) for c1 s, with variances (q/2^d0)^2/12 and
||s||_2^2 (q/2^d1)^2/12 in units of q (||s||_2^2 <= n for a ternary key, N^2 n
for the sum of N holders' keys, `multiparty`), which `Noise` records (the same
idea as Kyber's ciphertext compression, and as BFV modulus switching to a
power-of-two modulus).
Compressed ciphertexts add (and scale by public integers) directly modulo 2^d,
so the server sums clients' messages without expanding them; `decompress`
lifts the result back to R_q (round(q z / 2^d), one more rounding) for
decryption. A seeded ciphertext keeps its seed instead of c1.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from tfpriv import checks
from tfpriv.crypto.rlwe.bfv import Ciphertext, Noise
from tfpriv.crypto.rlwe.keys import ring_of
from tfpriv.crypto.rlwe.params import Params
from tfpriv.crypto.rlwe.rns import MAX_POWER_OF_TWO_BITS


def rounding_variance(params: Params, bits0: int, bits1: Optional[int],
                      secret_norm2: Optional[int] = None) -> float:
    """Variance added by one rounding of c0 to bits0 and of c1 to bits1 (None: exact c1),
    for a key with ||s||_2^2 <= secret_norm2 (default n, a ternary key)."""
    q = float(params.q)
    variance = (q / 2.0**bits0) ** 2 / 12
    if bits1 is not None:
        norm2 = params.n if secret_norm2 is None else secret_norm2
        variance += norm2 * (q / 2.0**bits1) ** 2 / 12
    return variance


@dataclasses.dataclass(eq=False)
class CompressedCiphertext:
    """c0 modulo 2^bits0 and c1 modulo 2^bits1 (or the seed of c1), uint64 (B, n)."""

    params: Params
    z0: np.ndarray
    bits0: int
    noise: Noise
    z1: Optional[np.ndarray] = None
    bits1: Optional[int] = None
    seed: Optional[bytes] = None
    key_id: bytes = b''

    def _masked(self, value: np.ndarray, bits: int) -> np.ndarray:
        return value & np.uint64(2**bits - 1)

    def __add__(self, other: 'CompressedCiphertext') -> 'CompressedCiphertext':
        """Homomorphic addition modulo 2^d (both must be unseeded, same widths and shape)."""
        if not isinstance(other, CompressedCiphertext) or other.params != self.params \
                or (other.bits0, other.bits1) != (self.bits0, self.bits1) \
                or other.z0.shape != self.z0.shape or other.key_id != self.key_id:
            raise ValueError('compressed ciphertexts differ in parameters, key, widths or shape')
        if self.z1 is None or other.z1 is None:
            raise ValueError('seeded ciphertexts have different c1 and cannot be added '
                             'compressed: decompress them first')
        return CompressedCiphertext(self.params, self._masked(self.z0 + other.z0, self.bits0),
                                    self.bits0, self.noise + other.noise,
                                    self._masked(self.z1 + other.z1, self.bits1), self.bits1,
                                    key_id=self.key_id)

    def scale(self, scalar: int) -> 'CompressedCiphertext':
        """Homomorphic product by a public integer (modulo 2^d; noise grows by |scalar|)."""
        scalar = checks.integer('scalar', scalar)
        if self.z1 is None:
            raise ValueError('cannot scale a seeded ciphertext compressed: decompress it first')
        factor = np.uint64(scalar % 2**64)
        return CompressedCiphertext(self.params, self._masked(self.z0 * factor, self.bits0),
                                    self.bits0, self.noise.scaled(abs(scalar), scalar**2),
                                    self._masked(self.z1 * factor, self.bits1), self.bits1,
                                    key_id=self.key_id)


def _check_bits(bits: int) -> int:
    return checks.integer('compressed width', bits, 1, MAX_POWER_OF_TWO_BITS)


def compress(ct: Ciphertext, bits0: int, bits1: int,
             secret_norm2: Optional[int] = None) -> CompressedCiphertext:
    """Switches c0 to modulus 2^bits0 and c1 to 2^bits1 (a seeded c1 stays its seed);
    `secret_norm2` bounds ||s||_2^2 of the key (default n, a ternary key)."""
    bits0, bits1 = _check_bits(bits0), _check_bits(bits1)
    ring = ring_of(ct.params)
    z0 = ring.scale_round(ct.c0, 2**bits0).view(np.uint64)
    if ct.seed is not None:
        noise = ct.noise.with_variance(rounding_variance(ct.params, bits0, None))
        return CompressedCiphertext(ct.params, z0, bits0, noise, seed=ct.seed, key_id=ct.key_id)
    z1 = ring.scale_round(ct.c1, 2**bits1).view(np.uint64)
    noise = ct.noise.with_variance(rounding_variance(ct.params, bits0, bits1, secret_norm2))
    return CompressedCiphertext(ct.params, z0, bits0, noise, z1, bits1, key_id=ct.key_id)


def decompress(cct: CompressedCiphertext, secret_norm2: Optional[int] = None) -> Ciphertext:
    """Lifts back to R_q: c_k = round(q z_k / 2^{d_k}) (adds one more rounding to the noise,
    for a key with ||s||_2^2 <= secret_norm2, default n)."""
    ring = ring_of(cct.params)
    c0 = ring.lift(cct.z0, 2**cct.bits0)
    if cct.z1 is None:
        noise = cct.noise.with_variance(rounding_variance(cct.params, cct.bits0, None))
        return Ciphertext(cct.params, c0, noise, seed=cct.seed, key_id=cct.key_id)
    noise = cct.noise.with_variance(rounding_variance(cct.params, cct.bits0, cct.bits1,
                                                      secret_norm2))
    return Ciphertext(cct.params, c0, noise, ring.lift(cct.z1, 2**cct.bits1),
                      key_id=cct.key_id)


def choose_widths(params: Params, fresh: Noise, terms: int, scalar: int = 1,
                  reserve_bits: float = 0.0,
                  secret_norm2: Optional[int] = None) -> Tuple[int, int]:
    """The smallest byte-aligned (bits0, bits1 = bits0 + 8) such that a weighted sum of
    `terms` compressed fresh ciphertexts (public scalars up to `scalar`) still
    decrypts with `reserve_bits` of noise budget to spare.

    Raises:
      ValueError: not even 62-bit components leave that budget.
    """
    for bits0 in list(range(8, MAX_POWER_OF_TWO_BITS - 7, 8)) + [MAX_POWER_OF_TWO_BITS - 8]:
        bits1 = bits0 + 8
        rounding = rounding_variance(params, bits0, bits1, secret_norm2)
        one = fresh.with_variance(rounding)
        total = one.scaled(scalar, scalar * scalar)
        total = Noise(total.variance * terms, total.rounding * terms, total.plain * terms)
        total = total.with_variance(rounding)
        if total.budget_bits(params) >= reserve_bits:
            return bits0, bits1
    raise ValueError(f'no compressed width up to {MAX_POWER_OF_TWO_BITS} bits leaves '
                     f'{reserve_bits} bits of noise budget for {terms} terms with '
                     f'scalars up to {scalar}: send uncompressed ciphertexts or use a smaller t')
