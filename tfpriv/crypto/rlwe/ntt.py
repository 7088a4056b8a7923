"""Negacyclic number-theoretic transform over RNS primes, vectorized over batches.

For a prime p = 1 mod 2n with a primitive 2n-th root psi, the NTT maps a in
Z_p[x]/(x^n + 1) to its evaluations at the odd powers psi^(2k+1), so that the
negacyclic product becomes a pointwise product (Longa & Naehrig 2016, "Speeding
up the NTT", Alg. 1 and 2: psi is merged into the Cooley-Tukey twiddles).

Layout. Arrays have shape (L, B, n): L RNS primes, B polynomials. Every stage is
a handful of whole-array NumPy ufuncs; there is no Python loop per coefficient,
per polynomial or per prime. The stages use the constant-geometry (Pease)
form: stage s reads the pairs (j, j + n/2) and writes the butterfly outputs to
(2j, 2j + 1), so every read and write runs over long unit- or two-strided rows
and the twiddles of stage s are one row psi_rev[2^s + (j mod 2^s)] broadcast
over the batch. The output is in the bit-reversed order of the in-place
algorithm; `inverse` undoes the stages in reverse, so the order never matters
to callers, who only multiply pointwise in between.

Arithmetic. Values are uint64. A product by a fixed twiddle w uses Shoup's
trick with 32-bit precomputation w' = floor(w 2^32 / p): for a < 2^32,
r = a w - floor(a w' / 2^32) p lies in [0, 2p) and every product fits 64 bits.
The forward butterflies (X + wY, X - wY + 2p) never reduce: after s stages a
value is below (2s + 1) p, which stays below 2^32 because p < 2^27 (checked by
`Params`). The inverse (Gentleman-Sande) butterflies keep the sum in [0, 2p)
with one branch-free conditional subtraction, min(x, x - 2p) in wrapping uint64.
The 1/n scaling is merged into the last inverse stage.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_U32 = np.uint64(32)
_BLOCK_ELEMENTS = 1 << 17  # coefficients per prime processed at once (cache-sized)


def _primitive_root_2n(p: int, n: int) -> int:
    """A primitive 2n-th root of unity mod p (p = 1 mod 2n)."""
    for g in range(2, p):
        psi = pow(g, (p - 1) // (2 * n), p)
        if pow(psi, n, p) == p - 1:
            return psi
    raise ValueError(f'no primitive {2 * n}-th root of unity mod {p}')


def _bit_reverse(i: int, bits: int) -> int:
    return int(format(i, f'0{bits}b')[::-1], 2) if bits else 0


def shoup_companion(w: np.ndarray, p: np.ndarray) -> np.ndarray:
    """floor(w 2^32 / p) for w in [0, p), the precomputation of `shoup_mul`."""
    return (w.astype(np.uint64) << _U32) // p.astype(np.uint64)


def shoup_mul(a: np.ndarray, w: np.ndarray, w_shoup: np.ndarray, p: np.ndarray,
              out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """a w mod p into `out`, result in [0, 2p); requires a < 2^32 (uint64 arrays)."""
    np.multiply(a, w_shoup, out=scratch)
    scratch >>= _U32
    scratch *= p
    np.multiply(a, w, out=out)
    out -= scratch
    return out


class Ntt:
    """Forward and inverse negacyclic NTT of size n modulo each of the given primes."""

    def __init__(self, n: int, primes: Sequence[int]):
        self.n, self.primes = n, tuple(int(p) for p in primes)
        self.logn = n.bit_length() - 1
        num = len(self.primes)
        self.p = np.array(self.primes, dtype=np.uint64).reshape(num, 1, 1)
        self.two_p = 2 * self.p
        half = n // 2
        psi_rev = np.empty((num, n), dtype=np.uint64)
        psi_inv_rev = np.empty((num, n), dtype=np.uint64)
        n_inv = np.empty((num, 1, 1), dtype=np.uint64)
        for row, p in enumerate(self.primes):
            psi = _primitive_root_2n(p, n)
            powers = [pow(psi, _bit_reverse(i, self.logn), p) for i in range(n)]
            psi_rev[row] = powers
            psi_inv_rev[row] = [pow(x, -1, p) for x in powers]
            n_inv[row] = pow(n, -1, p)
        j = np.arange(half)
        self._w, self._w_inv = [], []
        for s in range(self.logn):
            index = (1 << s) + (j & ((1 << s) - 1))
            w = psi_rev[:, index].reshape(num, 1, half)
            w_inv = psi_inv_rev[:, index].reshape(num, 1, half)
            if s == 0:  # merge 1/n into the last inverse stage
                w_inv = w_inv * n_inv % self.p
            self._w.append((w, shoup_companion(w, self.p)))
            self._w_inv.append((w_inv, shoup_companion(w_inv, self.p)))
        self._n_inv = (n_inv, shoup_companion(n_inv, self.p))
        one = np.ones_like(n_inv)
        self._one = (one, shoup_companion(one, self.p))

    def _blocks(self, batch: int):
        size = max(1, _BLOCK_ELEMENTS // self.n)
        for start in range(0, batch, size):
            yield slice(start, min(batch, start + size))

    def _check(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        if a.ndim != 3 or a.shape[0] != len(self.primes) or a.shape[2] != self.n:
            raise ValueError(f'expected residues of shape ({len(self.primes)}, batch, {self.n}), '
                             f'got {a.shape}')
        return a

    def forward(self, a: np.ndarray, reduce: bool = True) -> np.ndarray:
        """NTT of residues a (L, B, n) in [0, p); returns uint64 in [0, p) or, if not
        `reduce`, in [0, (2 log2 n + 1) p) (fine as input to a Shoup product)."""
        a = self._check(a)
        out = np.empty(a.shape, dtype=np.uint64)
        for block in self._blocks(a.shape[1]):
            result = self._forward_block(a[:, block].astype(np.uint64))
            if reduce:
                result = self._reduce(result)
            out[:, block] = result
        return out

    def inverse(self, a: np.ndarray) -> np.ndarray:
        """Inverse NTT of a (L, B, n) with values in [0, 2p); returns uint64 in [0, p)."""
        a = self._check(a)
        out = np.empty(a.shape, dtype=np.uint64)
        for block in self._blocks(a.shape[1]):
            out[:, block] = self._inverse_block(a[:, block].astype(np.uint64))
        return out

    def _reduce(self, a: np.ndarray) -> np.ndarray:
        """a mod p for a < 2^32: a Shoup product by 1, then one conditional subtraction."""
        out, scratch = np.empty_like(a), np.empty_like(a)
        shoup_mul(a, self._one[0], self._one[1], self.p, out, scratch)
        np.subtract(out, self.p, out=scratch)
        return np.minimum(out, scratch, out=out)

    def _forward_block(self, src: np.ndarray) -> np.ndarray:
        half = self.n // 2
        dst = np.empty_like(src)
        scratch = np.empty(src.shape[:2] + (half,), dtype=np.uint64)
        v = np.empty_like(scratch)
        for w, w_shoup in self._w:
            x, y = src[..., :half], src[..., half:]
            shoup_mul(y, w, w_shoup, self.p, v, scratch)
            pairs = dst.reshape(src.shape[:2] + (half, 2))
            np.add(x, v, out=pairs[..., 0])
            np.add(x, self.two_p, out=scratch)
            np.subtract(scratch, v, out=pairs[..., 1])
            src, dst = dst, src
        return src

    def _inverse_block(self, src: np.ndarray) -> np.ndarray:
        half = self.n // 2
        dst = np.empty_like(src)
        scratch = np.empty(src.shape[:2] + (half,), dtype=np.uint64)
        diff = np.empty_like(scratch)
        for s in range(self.logn - 1, -1, -1):
            pairs = src.reshape(src.shape[:2] + (half, 2))
            even, odd = pairs[..., 0], pairs[..., 1]
            low, high = dst[..., :half], dst[..., half:]
            np.add(even, self.two_p, out=diff)
            diff -= odd
            w, w_shoup = self._w_inv[s]
            if s:
                np.add(even, odd, out=low)
                np.subtract(low, self.two_p, out=scratch)
                np.minimum(low, scratch, out=low)
            else:
                np.add(even, odd, out=high)
                shoup_mul(high, self._n_inv[0], self._n_inv[1], self.p, low, scratch)
            shoup_mul(diff, w, w_shoup, self.p, high, scratch)
            src, dst = dst, src
        np.subtract(src, self.p, out=dst)
        np.minimum(src, dst, out=src)
        return src
