"""Signed fixed-point encoding of float tensors into Z_m, with a headroom check.

A real x is encoded as the integer round(x 2^f) mod m, f = `precision` bits;
decoding lifts an element v of Z_m to the centred representative in
(-m/2, m/2] and divides by 2^f. Encoding is additive: the sum of encodings
decodes to the sum of the rounded values as long as the true integer sum stays
strictly inside (-m/2, m/2); past that it wraps around and decodes to garbage
of the opposite sign. `FixedPoint.check_headroom` proves, before any data is
encoded, that a planned sum of k bounded terms cannot wrap, and otherwise says
the largest k or the largest precision that would fit.

The encoder is generic in the modulus m (any integer in [3, 2^62]): Shamir
sharing uses a prime p < 2^31, the RLWE scheme its plaintext modulus t. Values
are int64 NumPy arrays in [0, m).

Rounding is to nearest, so one encode/decode round trip is off by at most
2^-(f+1), and a sum of k encodings by at most k 2^-(f+1).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence, Union

import numpy as np

_MAX_MODULUS = 2**62
_MAX_PRECISION = 62


@dataclasses.dataclass(frozen=True)
class FixedPoint:
    """Encoding of reals as round(x 2^precision) mod `modulus`, centred around 0."""

    modulus: int
    precision: int

    def __post_init__(self):
        for name in ('modulus', 'precision'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f'{name} must be an int, got {type(value).__name__}')
        if not 3 <= self.modulus <= _MAX_MODULUS:
            raise ValueError(f'modulus must be in [3, 2^62], got {self.modulus}')
        if not 0 <= self.precision <= _MAX_PRECISION:
            raise ValueError(f'precision must be in [0, {_MAX_PRECISION}] bits, '
                             f'got {self.precision}')

    @property
    def scale(self) -> float:
        return float(2**self.precision)

    @property
    def max_int(self) -> int:
        """Largest |integer| that decodes correctly: floor((m - 1) / 2)."""
        return (int(self.modulus) - 1) // 2

    @property
    def max_abs(self) -> float:
        """Largest |x| one encoding can hold."""
        return self.max_int / self.scale

    def units(self, bound: float, precision: int = None) -> int:
        """The largest |round(x 2^f)| for |x| <= bound (f = `precision`, default ours)."""
        f = self.precision if precision is None else precision
        return int(np.floor(float(bound) * 2.0**f + 0.5))

    def encode(self, values: np.ndarray) -> np.ndarray:
        """round(values 2^f) mod m as int64 in [0, m).

        Raises:
          ValueError: NaN/inf values, or a value whose magnitude exceeds `max_abs`.
        """
        values = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError('cannot encode NaN or infinite values')
        largest = float(np.max(np.abs(values))) if values.size else 0.0
        if self.units(largest) > self.max_int:
            raise ValueError(
                f'value of magnitude {largest:g} does not fit: with precision {self.precision} '
                f'bits and modulus {self.modulus} the limit is {self.max_abs:g}; '
                f'{self._precision_advice([largest])}')
        return np.mod(np.rint(values * self.scale).astype(np.int64), np.int64(self.modulus))

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """Centred lift to (-m/2, m/2] divided by 2^f, as float64."""
        encoded = np.asarray(encoded)
        if not np.issubdtype(encoded.dtype, np.integer):
            raise TypeError(f'encoded values must be integers, got dtype {encoded.dtype}')
        encoded = encoded.astype(np.int64, copy=False)
        if encoded.size and (encoded.min() < 0 or encoded.max() >= self.modulus):
            raise ValueError(f'encoded values must lie in [0, {self.modulus})')
        signed = np.where(encoded > self.max_int, encoded - np.int64(self.modulus), encoded)
        return signed.astype(np.float64) / self.scale

    def largest_precision(self, bounds: Sequence[float]) -> int:
        """The largest f such that terms with |x_i| <= bounds[i] sum without wrapping; -1 if none."""
        for f in range(_MAX_PRECISION, -1, -1):
            if sum(self.units(b, f) for b in bounds) <= self.max_int:
                return f
        return -1

    def _precision_advice(self, bounds: Sequence[float]) -> str:
        precision = self.largest_precision(bounds)
        if precision < 0:
            return 'no precision fits: lower the bound or use a larger modulus'
        return f'use precision <= {precision} bits'

    def check_headroom(self, num_terms: int, bound: Union[float, Sequence[float]]) -> None:
        """Raises unless a sum of `num_terms` encodings of |x_i| <= bound_i cannot wrap.

        The sum is safe iff sum_i round(bound_i 2^f) <= floor((m - 1) / 2).

        Args:
          num_terms: k, the number of encodings that will be added.
          bound: one bound for every term, or k per-term bounds (e.g. w_i B when
            clients pre-multiply their update by their weight w_i).

        Raises:
          ValueError: the sum could wrap; the message gives the largest k (for a
            common bound) and the largest precision that fit.
        """
        if isinstance(num_terms, bool) or not isinstance(num_terms, (int, np.integer)) \
                or num_terms < 1:
            raise ValueError(f'num_terms must be a positive int, got {num_terms!r}')
        bounds = np.broadcast_to(np.asarray(bound, dtype=np.float64), (num_terms,)) \
            if np.ndim(bound) == 0 else np.asarray(bound, dtype=np.float64)
        if bounds.shape != (num_terms,):
            raise ValueError(f'expected one bound or {num_terms} bounds, got shape {bounds.shape}')
        if not np.all(np.isfinite(bounds)) or np.any(bounds < 0):
            raise ValueError(f'bounds must be finite and non-negative, got {bound}')
        needed = sum(self.units(b) for b in bounds)
        if needed <= self.max_int:
            return
        advice = self._precision_advice(bounds)
        if np.ndim(bound) == 0:
            per_term = self.units(float(bound))
            advice = (f'at most {self.max_int // per_term} terms of this bound fit, or '
                      + advice)
        raise ValueError(
            f'summing {num_terms} fixed-point values bounded by {bound} at precision '
            f'{self.precision} needs up to {needed} but modulus {self.modulus} only represents '
            f'magnitudes up to {self.max_int}: {advice}')
