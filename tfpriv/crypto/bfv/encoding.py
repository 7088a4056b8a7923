"""Float tensors <-> BFV plaintexts: fixed point mod t, coefficient packing.

A real x becomes round(x 2^f) mod t (`tfpriv.crypto.fixed_point.FixedPoint`);
a flat vector of N values fills ceil(N / n) plaintext polynomials, one value
per coefficient (zero padding at the end). Coefficient packing is additive and
commutes with multiplication by an integer scalar, which is all that encrypted
aggregation needs (sums and plaintext weights); no CRT batching.

`encode` declares the public bound |x| <= bound as the ciphertext's plaintext
bound, so `scheme.decrypt` refuses a sum that may have wrapped mod t.
"""

from __future__ import annotations

import dataclasses
import numpy as np

from tfpriv.crypto.bfv.params import BfvParams
from tfpriv.crypto.fixed_point import FixedPoint


@dataclasses.dataclass(frozen=True)
class Encoder:
    """Fixed-point coefficient encoder for values bounded by `bound`."""

    params: BfvParams
    precision: int
    bound: float

    def __post_init__(self):
        if not (np.isfinite(self.bound) and self.bound >= 0):
            raise ValueError(f'bound must be a finite float >= 0, got {self.bound}')
        self.fixed.check_headroom(1, self.bound)

    @property
    def fixed(self) -> FixedPoint:
        return FixedPoint(self.params.t, self.precision)

    @property
    def units(self) -> int:
        """The plaintext bound round(bound 2^f) that one encoding declares."""
        return self.fixed.units(self.bound)

    def num_polys(self, size: int) -> int:
        return -(-size // self.params.n)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Flat finite floats with |x| <= bound -> plaintexts (ceil(N/n), n) in [0, t)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f'encode expects a flat vector, got shape {values.shape}')
        if not np.all(np.isfinite(values)):
            raise ValueError('cannot encrypt NaN or infinite values')
        largest = float(np.max(np.abs(values))) if values.size else 0.0
        if largest > self.bound:
            raise ValueError(f'value of magnitude {largest:g} exceeds the declared bound '
                             f'{self.bound:g}: clip the update or raise the bound')
        out = np.zeros(self.num_polys(values.size) * self.params.n, dtype=np.int64)
        out[:values.size] = self.fixed.encode(values)
        return out.reshape(-1, self.params.n)

    def decode(self, plain: np.ndarray, size: int) -> np.ndarray:
        """Plaintexts -> the first `size` values as float64."""
        flat = np.asarray(plain).reshape(-1)
        if size > flat.size:
            raise ValueError(f'asked for {size} values, the plaintexts hold {flat.size}')
        return self.fixed.decode(flat[:size])

