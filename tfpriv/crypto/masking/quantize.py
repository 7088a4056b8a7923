"""Integer quantization of weighted updates into Z_{2^b}, with the headroom proved first.

Client u holds an update x_u with |x_u| <= B (the public `bound`) and a public
weight w_u = n_u / N (its example count over the round's total, as in FedAvg).
It encodes q_u = R(w_u x_u 2^f) mod 2^b, f = `precision` bits, where R rounds

  * deterministically to the nearest integer (error <= 1/2), or
  * stochastically, floor(y + U) with U ~ Uniform[0, 1) (Gupta et al. 2015,
    "Deep Learning with Limited Numerical Precision"): unbiased, E R(y) = y,
    error < 1.

Either way |q_u| <= floor(w_u B 2^f) + 1, so for weights summing to at most 1
the sum over any set of clients satisfies |sum_u q_u| <= ceil(B 2^f) + n. The
encoding is additive mod 2^b and decodes without wrapping iff that bound is at
most 2^(b-1) - 1 (the centred representatives are [-2^(b-1), 2^(b-1))):
`Quantizer.check_headroom` refuses the parameters before anything is encoded.

The server divides the decoded sum by 2^f and by W = the total weight of the
clients whose inputs it summed, so the average over the surviving clients U is
off by at most |U| e 2^-f / W, e = 1/2 (deterministic) or 1 (stochastic).

Arithmetic runs in uint32 for b <= 32 and uint64 otherwise; NumPy's wrapping
addition in those widths is addition mod 2^32 or 2^64, hence mod 2^b after a
final mask. On the wire each value takes ceil(b / 8) bytes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from tfpriv import checks
from tfpriv.errors import FixedPointRangeError
from tfpriv.rng import Prg

ROUNDINGS = ('stochastic', 'deterministic')
_MIN_BITS, _MAX_BITS = 8, 64
_BLOCK = 1 << 15  # values encoded at a time: 256 KB of float64 per intermediate


@dataclasses.dataclass(frozen=True)
class Quantizer:
    """Fixed-point encoding of w x into Z_{2^bits} at `precision` fractional bits."""

    bits: int
    precision: int
    bound: float
    rounding: str = 'stochastic'

    def __post_init__(self):
        checks.integer('bits', self.bits, minimum=_MIN_BITS, maximum=_MAX_BITS)
        checks.integer('precision', self.precision, minimum=0, maximum=self.bits - 2)
        checks.number('bound', self.bound, minimum=0.0, strict_minimum=True)
        checks.choice('rounding', self.rounding, ROUNDINGS)

    @property
    def dtype(self) -> np.dtype:
        """The container: uint32 for bits <= 32, else uint64."""
        return np.dtype(np.uint32 if self.bits <= 32 else np.uint64)

    @property
    def wire_bytes(self) -> int:
        """Bytes per value on the wire: ceil(bits / 8)."""
        return (self.bits + 7) // 8

    @property
    def max_error_units(self) -> float:
        """Largest rounding error per client, in units of 2^-precision."""
        return 0.5 if self.rounding == 'deterministic' else 1.0

    def max_units(self, num_parties: int) -> int:
        """Bound on |sum of the encodings| of num_parties clients: ceil(B 2^f) + n."""
        return math.ceil(self.bound * 2.0**self.precision) + num_parties

    def check_headroom(self, num_parties: int) -> None:
        """Raises FixedPointRangeError unless n encodings sum without wrapping mod 2^bits."""
        needed = self.max_units(num_parties)
        limit = 2**(self.bits - 1) - 1
        if needed <= limit:
            return
        bits = (needed + 1).bit_length() + 1
        raise FixedPointRangeError(
            f'the sum of {num_parties} clients bounded by bound={self.bound:g} at precision '
            f'{self.precision} bits can reach {needed} units, past the {limit} that '
            f'bits={self.bits} holds: raise bits to >= {bits} (at most {_MAX_BITS}), or lower '
            f'precision or bound')

    def mask(self, values: np.ndarray) -> np.ndarray:
        """Reduces container words mod 2^bits in place (a no-op when bits fills the container)."""
        if self.bits < 8 * self.dtype.itemsize:
            values &= self.dtype.type((1 << self.bits) - 1)
        return values

    def encode(self, update: np.ndarray, weight: float, prg: Prg) -> np.ndarray:
        """R(weight update 2^f) mod 2^bits in the container dtype; prg drives stochastic R.

        Raises:
          FixedPointRangeError: a value of `update` exceeds `bound` in magnitude.
        """
        out = np.empty(update.size, dtype=self.dtype)
        fill = self.encoder(update, weight, prg)
        for start in range(0, update.size, _BLOCK):
            fill(start, out[start:start + _BLOCK])
        return self.mask(out)

    def encoder(self, update: np.ndarray, weight: float,
                prg: Prg) -> Callable[[int, np.ndarray], None]:
        """`fill(start, block)`: block = R(weight update[start:...] 2^f) mod 2^w, w the container.

        Blocks are filled in order (stochastic R draws the prg's words in that
        order) and may be of any size; float64 intermediates are reused, so blocks
        of up to `_BLOCK` values keep them in cache. The result still needs `mask`
        when bits < w. Each block's values are checked against `bound` before it is
        encoded (while they are in cache), so a refused update leaves only a partial
        result that must be discarded.

        Raises (from `fill`):
          FixedPointRangeError: a value of the block exceeds `bound` in magnitude.
        """
        scale = weight * 2.0**self.precision
        scratch = {'values': np.empty(0), 'noise': np.empty(0), 'words': np.empty(0, np.uint8)}

        def fill(start: int, block: np.ndarray) -> None:
            size = block.size
            if scratch['values'].size < size:
                scratch.update(values=np.empty(size), noise=np.empty(size),
                               words=np.empty(4 * size + 16, dtype=np.uint8))
            source = update[start:start + size]
            largest = max(float(source.max()), -float(source.min())) if size else 0.0
            if not largest <= self.bound:
                raise FixedPointRangeError(
                    f'an update value of magnitude {largest:g} exceeds bound={self.bound:g}: '
                    'raise bound (and bits, if the headroom check then fails) or clip the update')
            values = np.multiply(source, scale, out=scratch['values'][:size])
            if self.rounding == 'deterministic':
                np.rint(values, out=values)
            else:
                uniform = scratch['noise'][:size]
                words = prg.fill(scratch['words'], 4 * size).view(np.uint32)
                values += np.multiply(words, 2.0**-32, out=uniform)
                np.floor(values, out=values)
            # |q| < 2^(bits-1) by the headroom check: the signed view is two's complement mod 2^w.
            block.view(np.int32 if block.dtype == np.uint32 else np.int64)[...] = values
        return fill

    def decode(self, total: np.ndarray, total_weight: float) -> np.ndarray:
        """Centred lift of a sum mod 2^bits, divided by 2^f and the summed weight."""
        signed = total.astype(np.int64)
        if self.bits < 64:
            signed[signed >= 2**(self.bits - 1)] -= 2**self.bits
        return signed / (2.0**self.precision * total_weight)

    def wire_message(self, size: int, header: bytes,
                     write: Callable[[np.ndarray], object]) -> bytes | bytearray:
        """`to_wire(values, header)` of the `size` values that `write(out)` puts into `out`
        (then reduced by `mask`). When the wire format is the container's own (little-endian,
        bits a whole container) `out` is a view into the message itself: no copy, one
        allocation; `header` should then keep `out` aligned (a multiple of 8 bytes)."""
        if self.wire_bytes != self.dtype.itemsize or self.dtype.newbyteorder('<') != self.dtype:
            values = np.empty(size, dtype=self.dtype)
            write(values)
            return self.to_wire(self.mask(values), header)
        message = bytearray(len(header) + size * self.dtype.itemsize)
        message[:len(header)] = header
        values = np.frombuffer(message, dtype=self.dtype, count=size, offset=len(header))
        write(values)
        self.mask(values)
        return message

    def to_wire(self, values: np.ndarray, header: bytes = b'') -> bytes:
        """`header` then the little-endian values, ceil(bits / 8) bytes each (one copy)."""
        raw = values.astype(self.dtype.newbyteorder('<'), copy=False).view(np.uint8)
        if self.wire_bytes != self.dtype.itemsize:
            raw = np.ascontiguousarray(raw.reshape(-1, self.dtype.itemsize)[:, :self.wire_bytes])
        return b''.join((header, memoryview(raw).cast('B')))

    def from_wire(self, data: bytes, size: int) -> np.ndarray:
        """Inverse of `to_wire` for `size` values (ValueError on a wrong length); may be read-only."""
        if len(data) != size * self.wire_bytes:
            raise ValueError(f'expected {size * self.wire_bytes} bytes for {size} values, got '
                             f'{len(data)}')
        little = self.dtype.newbyteorder('<')
        if self.wire_bytes == self.dtype.itemsize:
            return np.frombuffer(data, dtype=little).astype(self.dtype, copy=False)
        padded = np.zeros((size, self.dtype.itemsize), dtype=np.uint8)
        padded[:, :self.wire_bytes] = np.frombuffer(data, dtype=np.uint8).reshape(size, -1)
        return padded.reshape(-1).view(little).astype(self.dtype, copy=False)
