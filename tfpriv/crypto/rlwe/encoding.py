"""Float tensors <-> BFV plaintexts: fixed point modulo t, n values per ciphertext.

A weight x becomes the integer round(x 2^f) (f = `precision` bits) taken as a
centred residue modulo the plaintext modulus t, using the project's
`tfpriv.crypto.fixed_point.FixedPoint` (which refuses NaN/inf and values that do
not fit). Coefficient packing: a flat vector of N values fills ceil(N/n)
polynomials, one value per coefficient, the last one zero-padded. Coefficient
packing is all that additions and products by public scalars need: both act
coefficient-wise on m.
"""

from __future__ import annotations

import numpy as np

from tfpriv.crypto.fixed_point import FixedPoint
from tfpriv.crypto.rlwe.params import Params


class Encoder:
    """Fixed-point coefficient packing of float vectors for `params`."""

    def __init__(self, params: Params, precision: int):
        self.params = params
        self.fixed = FixedPoint(params.t, precision)

    def batch_size(self, size: int) -> int:
        """Polynomials needed for `size` values."""
        return -(-int(size) // self.params.n)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """A flat float vector -> plaintext batch (B, n) of centred int64.

        Raises:
          ValueError: NaN/inf, a non-1-D input, or a value too large for t and precision.
        """
        values = np.asarray(values)
        if values.ndim != 1:
            raise ValueError(f'expected a flat vector, got shape {values.shape} (flatten first)')
        if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
            raise TypeError(f'expected real numbers, got dtype {values.dtype}')
        residues = self.fixed.encode(values)
        centred = np.where(residues > self.fixed.max_int, residues - self.params.t, residues)
        out = np.zeros((self.batch_size(values.size), self.params.n), dtype=np.int64)
        out.reshape(-1)[:values.size] = centred
        return out

    def decode(self, plaintext: np.ndarray, size: int, scale: float = 1.0) -> np.ndarray:
        """The first `size` values of a plaintext batch, divided by 2^f * scale."""
        flat = np.asarray(plaintext).reshape(-1)
        if size > flat.size:
            raise ValueError(f'plaintext holds {flat.size} values, {size} requested')
        return self.fixed.decode(np.mod(flat[:size], self.params.t)) / scale
