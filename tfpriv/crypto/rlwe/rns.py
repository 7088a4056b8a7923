"""The ring R_q in residue-number-system form, and exact scaling between moduli.

An element of R_q is an int64 array of shape (L, B, n): residues modulo each
RNS prime p_i (q = prod p_i), B polynomials, n coefficients. q may be hundreds
of bits, yet no big integer is ever formed:

* `scale_round(x, T)` computes round(T x / q) mod T (decryption with T = t,
  modulus switching to T = 2^d). With y_i = [x_i (q/p_i)^-1]_{p_i}, CRT gives
  x = sum_i y_i q/p_i - k q for an integer k, hence
  T x / q = sum_i y_i T/p_i (mod T). Splitting T/p_i = I_i + F_i into integer
  and fractional parts, sum_i y_i I_i is exact integer arithmetic and
  sum_i y_i F_i < L 2^27 is a float64 sum with error below 2^-20 (Halevi,
  Polyakov & Shoup 2018, "An improved RNS variant of the BFV scheme", Sec. 2.3).
* `lift(z, T)` computes round(q z / T) mod p_i for z in [0, T) (encoding a
  plaintext, z = m, T = t; and undoing a modulus switch, T = 2^d). With
  h = floor(T/2) and rho = (q z + h) mod T = ((q mod T) z + h) mod T,
  round(q z / T) = (q z + h - rho) / T = (h - rho) T^-1 (mod p_i), because
  q z = 0 mod p_i and T is invertible mod p_i.

T is either a power of two up to 2^62 (uint64 arithmetic wraps modulo 2^64, a
multiple of T) or an integer below 2^31 (products stay below 2^62).
"""

from __future__ import annotations

import numpy as np

from tfpriv.crypto.rlwe.ntt import Ntt, shoup_companion, shoup_mul
from tfpriv.crypto.rlwe.params import Params

MAX_POWER_OF_TWO_BITS = 62


def _check_target(modulus: int) -> bool:
    """True if `modulus` is a power of two (<= 2^62); raises unless it is that or < 2^31."""
    power = modulus & (modulus - 1) == 0
    if modulus < 2 or (power and modulus > 2**MAX_POWER_OF_TWO_BITS) \
            or (not power and modulus >= 2**31):
        raise ValueError(f'target modulus must be a power of two <= 2^62 or below 2^31, '
                         f'got {modulus}')
    return power


class Ring:
    """R_q = Z_q[x]/(x^n + 1) in RNS form for `params`, with its NTT."""

    def __init__(self, params: Params):
        self.n, self.primes, self.q = params.n, params.primes, params.q
        self.ntt = Ntt(params.n, params.primes)
        self.p = np.array(self.primes, dtype=np.int64).reshape(-1, 1, 1)
        q_hat_inv = [pow(self.q // p, -1, p) for p in self.primes]
        self._q_hat_inv = np.array(q_hat_inv, dtype=np.int64).reshape(-1, 1, 1)

    # --- basic arithmetic on residues in [0, p) ------------------------------------------

    def from_signed(self, values: np.ndarray) -> np.ndarray:
        """Residues (L, *shape) of small signed integers `values`."""
        values = np.asarray(values, dtype=np.int64)
        return np.remainder(values[None], self.p.reshape((-1,) + (1,) * values.ndim))

    def _fold(self, x: np.ndarray) -> np.ndarray:
        """x mod p for int64 x in (-p, 2p): branch-free min(x, x - p) on the unsigned view."""
        x = x.view(np.uint64)
        p = self.p.view(np.uint64)
        x += p
        low = x - p
        np.minimum(x, low, out=x)
        np.subtract(x, p, out=low)
        np.minimum(x, low, out=x)
        return x.view(np.int64)

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._fold(np.add(a, b, dtype=np.int64))

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._fold(np.subtract(a, b, dtype=np.int64))

    def add_small(self, a: np.ndarray, small: np.ndarray) -> np.ndarray:
        """a + small mod p for |small| < p broadcast over the RNS axis."""
        return self._fold(np.add(a, small[None], dtype=np.int64))

    def neg(self, a: np.ndarray) -> np.ndarray:
        return self._fold(self.p - a)

    def mul_scalar(self, a: np.ndarray, scalar: int) -> np.ndarray:
        """a * scalar mod q for any Python int scalar."""
        factors = np.array([int(scalar) % p for p in self.primes], dtype=np.int64)
        return a * factors.reshape(-1, 1, 1) % self.p

    def to_ntt(self, a: np.ndarray) -> np.ndarray:
        """NTT of residues, int64 in [0, p)."""
        return self.ntt.forward(a).view(np.int64)

    def from_ntt(self, a_hat: np.ndarray) -> np.ndarray:
        """Inverse NTT of residues in [0, 2p), int64 in [0, p)."""
        return self.ntt.inverse(a_hat).view(np.int64)

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Negacyclic product of residue arrays (broadcast over the batch axis)."""
        return self.from_ntt(self.to_ntt(a) * self.to_ntt(b) % self.p)

    def fixed(self, a: np.ndarray) -> 'FixedOperand':
        """Precomputes the NTT of a polynomial that multiplies many others."""
        return FixedOperand(self, a)

    # --- exact scaling between q and another modulus T ------------------------------------

    def scale_round(self, x: np.ndarray, modulus: int) -> np.ndarray:
        """round(T x / q) mod T for residues x (L, ...) in [0, p), as int64 in [0, T)."""
        power = _check_target(modulus)
        y = x * self._q_hat_inv.reshape((-1,) + (1,) * (x.ndim - 1)) \
            % self.p.reshape((-1,) + (1,) * (x.ndim - 1))
        whole = np.zeros(x.shape[1:], dtype=np.uint64)
        frac = np.zeros(x.shape[1:], dtype=np.float64)
        for row, p in enumerate(self.primes):
            integer, remainder = divmod(modulus, p)
            if integer:
                whole += y[row].astype(np.uint64) * np.uint64(integer % modulus)
                if not power:
                    whole %= np.uint64(modulus)
            frac += y[row] * (remainder / p)
        whole += np.rint(frac).astype(np.uint64)
        whole = whole & np.uint64(modulus - 1) if power else whole % np.uint64(modulus)
        return whole.astype(np.int64)

    def lift(self, z: np.ndarray, modulus: int) -> np.ndarray:
        """round(q z / T) mod p_i for z in [0, T); residues (L, *z.shape) int64."""
        power = _check_target(modulus)
        z = np.asarray(z).astype(np.uint64)
        half = modulus // 2
        rho = z * np.uint64(self.q % modulus) + np.uint64(half)
        rho = rho & np.uint64(modulus - 1) if power else rho % np.uint64(modulus)
        diff = np.int64(half) - rho.astype(np.int64)
        out = np.empty((len(self.primes),) + z.shape, dtype=np.int64)
        for row, p in enumerate(self.primes):
            out[row] = diff % p * pow(modulus, -1, p) % p
        return out


class FixedOperand:
    """A polynomial in NTT form with Shoup companions, for fast repeated products."""

    def __init__(self, ring: Ring, a: np.ndarray):
        self.ring = ring
        self.hat = ring.ntt.forward(a)
        self.companion = shoup_companion(self.hat, ring.ntt.p)

    def times_ntt(self, b_hat: np.ndarray) -> np.ndarray:
        """Pointwise product with an NTT-domain array b_hat (values < 2^32): [0, 2p), uint64."""
        out = np.empty(np.broadcast_shapes(b_hat.shape, self.hat.shape), dtype=np.uint64)
        scratch = np.empty_like(out)
        return shoup_mul(b_hat.view(np.uint64), self.hat, self.companion, self.ring.ntt.p,
                         out, scratch)

    def times(self, b: np.ndarray) -> np.ndarray:
        """Negacyclic product with residues b (L, B, n), int64 in [0, p)."""
        return self.ring.from_ntt(self.times_ntt(self.ring.ntt.forward(b, reduce=False)))
