"""Signed fixed-point encoding of float tensors into Z_m, with a headroom check.

The one fixed-point codec of tfpriv: Shamir sharing encodes into GF(p),
p < 2^31; RLWE into its plaintext modulus t; SMPC into the ring Z_2^64
(`tfpriv.crypto.smpc.ring.Encoding`, a `FixedPoint` with m = 2^64).

A real x is encoded as the integer round(x 2^f) mod m, f = `precision` bits;
decoding lifts an element v of Z_m to the centred representative and divides
by 2^f. Encoding is additive: the sum of encodings decodes to the sum of the
rounded values as long as the true integer sum stays within the limit
L = floor((m - 1) / 2) (or a smaller `limit`, e.g. 2^62 - 1 in Z_2^64 to leave
the SMPC truncation its headroom); past that it wraps around and decodes to
garbage of the opposite sign. `FixedPoint.check_headroom` proves, before any
data is encoded, that a planned sum of k bounded terms cannot wrap, and
otherwise says the largest k or the largest precision that would fit.

Values are int64 NumPy arrays in [0, m) for m <= 2^62, uint64 words for
m = 2^64 (whose wrap-around is the ring's reduction). Every range error is a
`tfpriv.errors.FixedPointRangeError`.

Rounding is to nearest, so one encode/decode round trip is off by at most
2^-(f+1), and a sum of k encodings by at most k 2^-(f+1).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Union

import numpy as np

from tfpriv import checks
from tfpriv.errors import FixedPointRangeError

RING_MODULUS = 2**64
_MAX_MODULUS = 2**62
_MAX_PRECISION = 62


@dataclasses.dataclass(frozen=True)
class FixedPoint:
    """Encoding of reals as round(x 2^precision) mod `modulus`, centred around 0.

    Attributes:
      modulus: m, in [3, 2^62] or exactly 2^64.
      precision: f, fractional bits in [0, 62].
      limit: largest |integer| an encoding may hold; default floor((m - 1) / 2).
    """

    modulus: int
    precision: int
    limit: Optional[int] = None

    def __post_init__(self):
        modulus = checks.integer('modulus', self.modulus)
        if not (3 <= modulus <= _MAX_MODULUS or modulus == RING_MODULUS):
            raise ValueError(f'modulus must be in [3, 2^62] or be 2^64, got {modulus}')
        checks.integer('precision', self.precision, 0, _MAX_PRECISION)
        if self.limit is not None:
            checks.integer('limit', self.limit, 1, (modulus - 1) // 2)

    @property
    def scale(self) -> float:
        return float(2**self.precision)

    @property
    def max_int(self) -> int:
        """Largest |integer| that decodes correctly: `limit`, default floor((m - 1) / 2)."""
        return (int(self.modulus) - 1) // 2 if self.limit is None else int(self.limit)

    @property
    def max_abs(self) -> float:
        """Largest |x| one encoding can hold."""
        return self.max_int / self.scale

    def units(self, bound: float, precision: int = None) -> int:
        """The largest |round(x 2^f)| for |x| <= bound (f = `precision`, default ours)."""
        f = self.precision if precision is None else precision
        return int(np.floor(float(bound) * 2.0**f + 0.5))

    def to_integers(self, values: np.ndarray) -> np.ndarray:
        """round(values 2^f) as int64, checked against the limit.

        Raises:
          ValueError: NaN/inf values.
          FixedPointRangeError: a rounded value whose magnitude exceeds `max_int`.
        """
        values = np.asarray(values, dtype=np.float64)
        scaled = np.asarray(values * self.scale)  # a 0-d input gives a NumPy scalar
        np.rint(scaled, out=scaled)
        # NumPy's min and max are NaN when a value is, and NaN fails both comparisons;
        # an integral float64 against a Python int compares exactly.
        low, high = (float(scaled.min()), float(scaled.max())) if scaled.size else (0.0, 0.0)
        if -self.max_int <= low and high <= self.max_int:
            return scaled.astype(np.int64)
        if not np.all(np.isfinite(values)):
            raise ValueError('cannot encode NaN or infinite values')
        magnitude = float(np.max(np.abs(values)))
        raise FixedPointRangeError(
            f'value of magnitude {magnitude:g} does not fit the fixed-point range: with '
            f'precision {self.precision} bits and modulus {self.modulus} the limit is '
            f'{self.max_abs:g}; {self._precision_advice([magnitude])}')

    def encode(self, values: np.ndarray) -> np.ndarray:
        """round(values 2^f) mod m: int64 in [0, m), or uint64 words for m = 2^64 (see
        `to_integers` for the errors)."""
        ints = self.to_integers(values)
        if self.modulus == RING_MODULUS:
            return ints.view(np.uint64)
        # |ints| <= max_int < m / 2: adding m to the negative ones is the reduction mod m;
        # ints >> 63 is all ones exactly for those (a masked add is 7x slower in NumPy).
        ints += (ints >> 63) & np.int64(self.modulus)
        return ints

    def lift(self, encoded: np.ndarray) -> np.ndarray:
        """The centred integers (int64) that elements of Z_m stand for, checked against the limit.

        Raises:
          TypeError / ValueError: non-integers, or elements outside [0, m).
          FixedPointRangeError: a value beyond `max_int`: the computation that produced
            it left the fixed-point range (only possible with a `limit` below (m - 1) / 2).
        """
        encoded = np.asarray(encoded)
        if not np.issubdtype(encoded.dtype, np.integer):
            raise TypeError(f'encoded values must be integers, got dtype {encoded.dtype}')
        if self.modulus == RING_MODULUS:
            ints = encoded.astype(np.uint64, copy=False).view(np.int64)
        else:
            encoded = encoded.astype(np.int64, copy=False)
            if encoded.size and (encoded.min() < 0 or encoded.max() >= self.modulus):
                raise ValueError(f'encoded values must lie in [0, {self.modulus})')
            half = (int(self.modulus) - 1) // 2
            ints = np.where(encoded > half, encoded - np.int64(self.modulus), encoded)
        self.check_range(ints)
        return ints

    def check_range(self, ints: np.ndarray) -> None:
        """Raises FixedPointRangeError when a signed integer exceeds `max_int` in magnitude."""
        if ints.size and (int(ints.min()) < -self.max_int or int(ints.max()) > self.max_int):
            raise FixedPointRangeError(
                f'a value reached magnitude {max(-int(ints.min()), int(ints.max()))} > '
                f'{self.max_int}: the computation left the fixed-point range and wrapped '
                f'around the modulus')

    def decode(self, encoded: np.ndarray, precision: Optional[int] = None) -> np.ndarray:
        """Centred lift divided by 2^f (f = `precision`, default ours), as float64."""
        f = self.precision if precision is None else precision
        return self.lift(encoded).astype(np.float64) / float(2**f)

    def largest_precision(self, bounds: Sequence[float]) -> int:
        """The largest f such that terms |x_i| <= bounds[i] sum without wrapping; -1 if none."""
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

        The sum is safe iff sum_i round(bound_i 2^f) <= `max_int`.

        Args:
          num_terms: k, the number of encodings that will be added.
          bound: one bound for every term, or k per-term bounds (e.g. w_i B when
            clients pre-multiply their update by their weight w_i).

        Raises:
          FixedPointRangeError: the sum could wrap; the message gives the largest k
            (for a common bound) and the largest precision that fit.
          ValueError: bad arguments.
        """
        checks.integer('num_terms', num_terms, minimum=1)
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
        raise FixedPointRangeError(
            f'summing {num_terms} fixed-point values bounded by {bound} at precision '
            f'{self.precision} needs up to {needed} but modulus {self.modulus} only represents '
            f'magnitudes up to {self.max_int}: {advice}')
