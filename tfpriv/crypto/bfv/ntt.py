"""Negacyclic NTT over RNS primes, vectorized over (primes, batch, n) int64 arrays.

For a prime p = 1 mod 2n with psi a primitive 2n-th root of unity, the
negacyclic NTT a_hat_j = sum_i a_i psi^((2j+1) i) turns the product in
Z_p[x] / (x^n + 1) into a pointwise product. We use the in-place Cooley-Tukey
forward transform with powers of psi in bit-reversed order (output in
bit-reversed order) and the Gentleman-Sande inverse (input bit-reversed, output
natural), as in Longa and Naehrig, "Speeding up the number theoretic transform
for faster ideal lattice-based cryptography" (CANS 2016), Algorithms 1 and 2.
Each of the log2 n stages is a handful of NumPy operations on the whole
(L, batch, n) array: no Python loop per coefficient or per polynomial.

Primes are below 2^31, so a product of two residues is below 2^62 and fits int64.

Exact integer products (used by threshold decryption, whose key shares are
residues mod p_i): if the integer result r has |r| < P / 2 - n 2^bits (P the
product of the primes), `RnsNtt.lift` adds M = n 2^bits (so the value lies in
[0, P)) and recombines the residues with Garner's mixed-radix CRT; the low 64
bits of the exact integer (wrapping uint64) are masked to `bits`. The scheme's
products by a ternary polynomial use the faster float FFT of `fft.py`.
"""

from __future__ import annotations

import functools
from typing import Sequence, Tuple

import numpy as np


def _primitive_root_2n(p: int, n: int) -> int:
    """A primitive 2n-th root of unity mod p (p prime, p = 1 mod 2n): psi^n = -1."""
    exponent = (p - 1) // (2 * n)
    candidates = (pow(g, exponent, p) for g in range(2, p))
    return next(psi for psi in candidates if pow(psi, n, p) == p - 1)


def _bit_reverse(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    idx = np.arange(n)
    rev = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return rev


def _powers(base: int, n: int, p: int) -> np.ndarray:
    out = np.empty(n, dtype=np.int64)
    acc = 1
    for i in range(n):
        out[i] = acc
        acc = acc * base % p
    return out


class RnsNtt:
    """Negacyclic NTTs of length n modulo each of the given primes."""

    def __init__(self, n: int, primes: Sequence[int]):
        self.n = n
        self.primes = tuple(int(p) for p in primes)
        for p in self.primes:
            if p >= 2**31 or (p - 1) % (2 * n):
                raise ValueError(f'prime {p} must be < 2^31 and = 1 mod 2n = {2 * n}')
        rev = _bit_reverse(n)
        forward, inverse = [], []
        for p in self.primes:
            psi = _primitive_root_2n(p, n)
            forward.append(_powers(psi, n, p)[rev])
            inverse.append(_powers(pow(psi, -1, p), n, p)[rev])
        self.p = np.array(self.primes, dtype=np.int64).reshape(-1, 1, 1)
        self._psi = np.stack(forward)
        self._psi_inv = np.stack(inverse)
        self._n_inv = np.array([pow(n, -1, p) for p in self.primes],
                               dtype=np.int64).reshape(-1, 1, 1)
        # Garner: inverse of p_j modulo p_i for j < i, and prefix products mod 2^64.
        self._garner = [[pow(self.primes[j], -1, self.primes[i]) for j in range(i)]
                        for i in range(len(self.primes))]
        prefix, acc = [], 1
        for p in self.primes:
            prefix.append(np.uint64(acc % 2**64))
            acc *= p
        self._prefix = prefix
        self.modulus_product = acc

    def forward(self, a: np.ndarray) -> np.ndarray:
        """NTT of residues a (L, batch, n) in [0, p); output bit-reversed, in [0, p)."""
        a = a.copy()
        L, b, n = a.shape
        p = self.p.reshape(L, 1, 1, 1)
        m, t = 1, n
        while m < n:
            t //= 2
            view = a.reshape(L, b, m, 2 * t)
            w = self._psi[:, m:2 * m].reshape(L, 1, m, 1)
            u = view[..., :t].copy()
            v = view[..., t:] * w
            v %= p
            np.add(u, v, out=view[..., :t])
            u += p
            u -= v
            view[..., t:] = u
            np.remainder(a, self.p, out=a)
            m *= 2
        return a

    def inverse(self, a: np.ndarray) -> np.ndarray:
        """Inverse NTT of bit-reversed a (L, batch, n) in [0, p); output natural, in [0, p)."""
        a = a.copy()
        L, b, n = a.shape
        p = self.p.reshape(L, 1, 1, 1)
        m, t = n, 1
        while m > 1:
            h = m // 2
            view = a.reshape(L, b, h, 2 * t)
            w = self._psi_inv[:, h:m].reshape(L, 1, h, 1)
            u = view[..., :t].copy()
            v = view[..., t:].copy()
            s = u + v
            s %= p
            view[..., :t] = s
            u += p
            u -= v
            u *= w
            u %= p
            view[..., t:] = u
            t *= 2
            m = h
        a *= self._n_inv
        a %= self.p
        return a

    def residues(self, x: np.ndarray) -> np.ndarray:
        """Signed int64 x (batch, n) -> residues (L, batch, n) in [0, p)."""
        return np.remainder(x[None], self.p)

    def to_pow2(self, residues: np.ndarray, bits: int) -> np.ndarray:
        """Garner CRT of residues of an integer in [0, P), reduced mod 2^bits (uint64)."""
        digits = []
        for i, p in enumerate(self.primes):
            x = residues[i]
            for j, inv in enumerate(self._garner[i]):
                x = (x - digits[j]) % p * inv % p
            digits.append(x)
        total = np.zeros(residues.shape[1:], dtype=np.uint64)
        for digit, prefix in zip(digits, self._prefix):
            total += digit.astype(np.uint64) * prefix
        return total & np.uint64((1 << bits) - 1)

    def lift(self, residues: np.ndarray, bits: int) -> np.ndarray:
        """Residues of integers r with |r| < P / 2 - n 2^bits -> r mod 2^bits (uint64).

        Adds M = n 2^bits (= 0 mod 2^bits) so that r + M lies in [0, P), then CRT.
        """
        offset = np.array([(self.n << bits) % p for p in self.primes],
                          dtype=np.int64).reshape(-1, 1, 1)
        return self.to_pow2((residues + offset) % self.p, bits)

    def centred_residues(self, big: np.ndarray, bits: int) -> np.ndarray:
        """Residues of uint64 values mod 2^bits lifted to (-2^(bits-1), 2^(bits-1)]."""
        centred = big.astype(np.int64)
        centred[centred >= np.int64(1 << (bits - 1))] -= np.int64(1 << bits)
        return self.residues(centred)


@functools.lru_cache(maxsize=8)
def context(n: int, primes: Tuple[int, ...]) -> RnsNtt:
    """Cached NTT tables for (n, primes)."""
    return RnsNtt(n, primes)


def negacyclic_schoolbook(a: Sequence[int], b: Sequence[int]) -> list:
    """Reference O(n^2) product in Z[x] / (x^n + 1) with Python integers (tests only)."""
    n = len(a)
    out = [0] * n
    for i in range(n):
        for j in range(n):
            k = i + j
            if k < n:
                out[k] += int(a[i]) * int(b[j])
            else:
                out[k - n] -= int(a[i]) * int(b[j])
    return out
