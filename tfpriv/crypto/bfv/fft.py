"""Exact negacyclic products mod 2^K by a small polynomial, with the float64 FFT.

The hot products of the scheme (pk u in encryption, a s in key generation and
symmetric encryption, c1 s in decryption) multiply a polynomial with K-bit
coefficients by one with coefficients in {-1, 0, 1}. Instead of several RNS NTT
passes we split the K-bit operand (lifted to centred integers) into 24-bit limbs
and multiply each limb by the small polynomial with NumPy's FFT (pocketfft):
every exact limb product has coefficients below n 2^24 <= 2^38, far inside
float64's 53-bit mantissa, so rounding the FFT result recovers it exactly; the
limbs are then recombined with wrapping uint64 shifts and masked to K bits.
Plaintext polynomials with |coefficients| <= B use narrower limbs
(`limb_bits`), keeping every limb product below 2^38.

Negacyclic convolution by the "right-angle" folding (Crandall and Fagin 1994;
also used by TFHE): Z[x]/(x^n + 1) maps into C[x]/(x^(n/2) - i) by
a -> sum_j (a_j + i a_(j+n/2)) x^j, and the twist x = zeta y with
zeta = exp(i pi / n) turns that ring into cyclic convolution of length n/2, one
complex FFT of half the length per polynomial.

Error: the FFT product's absolute error is about eps log2(n) |a|_2 |b|_2
<= 2^-53 * 14 * n 2^24 < 2^-11 for n <= 16384, well below the 1/2 that rounding
tolerates; `multiply` still checks that every result lies within 1/8 of an
integer and raises otherwise, so a wrong product can never pass silently.
"""

from __future__ import annotations

import functools

import numpy as np

# Exact limb products need n 2^limb_bits |small|_inf <= 2^38 (n <= 2^14).
PRODUCT_BITS = 38
_MAX_N = 16384


def limb_bits(n: int, small_max: int = 1) -> int:
    """Largest limb width keeping n 2^limb |small|_inf <= 2^38 (24 for ternary at n = 16384)."""
    width = PRODUCT_BITS - (n - 1).bit_length() - (int(small_max) - 1).bit_length()
    width = min(width, PRODUCT_BITS - (_MAX_N - 1).bit_length())
    if width < 4:
        raise ValueError(f'|small| <= {small_max} is too large for exact FFT products')
    return width


class FftMultiplier:
    """Exact products in Z_(2^K)[x] / (x^n + 1) by polynomials with |coefficients| <= 1."""

    def __init__(self, n: int):
        if n > _MAX_N or n < 4:
            raise ValueError(f'FFT products are exact for 4 <= n <= {_MAX_N}, got {n}')
        self.n, self.half = n, n // 2
        self._twist = np.exp(1j * np.pi * np.arange(self.half) / n)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Real (..., n) -> the FFT of the folded, twisted (..., n/2) complex sequence."""
        folded = (x[..., :self.half] + 1j * x[..., self.half:]) * self._twist
        return np.fft.fft(folded, axis=-1)

    def limbs(self, big: np.ndarray, bits: int, width: int = 24) -> np.ndarray:
        """Transforms of the `width`-bit limbs of big (uint64 mod 2^bits, centred)."""
        centred = big.astype(np.int64)
        centred[centred >= np.int64(1 << (bits - 1))] -= np.int64(1 << bits)
        count = -(-bits // width)
        parts = [(centred >> np.int64(width * k)) & np.int64((1 << width) - 1)
                 for k in range(count - 1)]
        parts.append(centred >> np.int64(width * (count - 1)))  # signed top limb
        return self.transform(np.stack(parts).astype(np.float64))

    def multiply(self, big_hat: np.ndarray, small_hat: np.ndarray, bits: int,
                 width: int = 24) -> np.ndarray:
        """sum_k 2^(width k) (limb_k * small) mod 2^bits as uint64 (..., n)."""
        folded = np.fft.ifft(big_hat * small_hat, axis=-1) * np.conj(self._twist)
        product = np.concatenate([folded.real, folded.imag], axis=-1)
        rounded = np.rint(product)
        if np.max(np.abs(product - rounded), initial=0.0) > 0.125:
            raise ArithmeticError('FFT product lost exactness (operand out of range)')
        limbs = rounded.astype(np.int64).astype(np.uint64)
        total = limbs[0]
        for k in range(1, limbs.shape[0]):
            total = total + (limbs[k] << np.uint64(width * k))
        return total & np.uint64((1 << bits) - 1)


@functools.lru_cache(maxsize=8)
def multiplier(n: int) -> FftMultiplier:
    return FftMultiplier(n)
