"""The ring Z_2^64 as NumPy uint64 arrays, and fixed-point encoding of reals into it.

Additive secret sharing over Z_2^64 lets every party compute with native 64-bit
integer arithmetic, whose wrap-around *is* reduction mod 2^64. A real x is
encoded as round(x 2^f) mod 2^64 (f = `precision` fractional bits, default 16)
and decoded from the two's-complement (signed) view of the word; `Encoding` is
the project's one fixed-point codec (`tfpriv.crypto.fixed_point.FixedPoint`)
with modulus 2^64.

Headroom. The secure truncation (`tfpriv.crypto.smpc.tensor`) needs its input
in (-2^62, 2^62), and the secure comparison needs (-2^63, 2^63). Products of
two encodings carry 2f fractional bits before truncation, so

  * one encoded value must satisfy |x| < 2^(62-f)  (checked by `encode`), and
  * a product or dot product must satisfy |x y| < 2^(62-2f)  (2^30 for f = 16),

which is far above what neural-network activations and weights reach.
`encode` refuses inputs outside the first range and `decode` refuses any
revealed word of magnitude 2^62 or more, which catches sums and integer
results that left the range. A product that breaks the second bound wraps
around inside the truncation protocol, which maps it to a plausible-looking
value; `Cluster(check_overflow=True)` bounds the operands securely before
multiplying and raises `FixedPointRangeError` instead.

Matrix products. NumPy's integer matmul does not use BLAS. `matmul` splits
each word into limbs of 22, 21 and 21 bits and multiplies the limbs with
float64 BLAS: a limb product is below 2^44, so a dot product of 256 terms, or
the sum of two of them, stays below 2^53 and is exact in the mantissa; longer
dot products are cut into chunks of 256. Only the 6 limb pairs of weight below
64 bits are needed (22 + 43 = 65 is not).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfpriv import checks
from tfpriv.crypto.fixed_point import RING_MODULUS, FixedPoint

RING_BITS = 64
TRUNCATION_LIMIT = 2**62  # |x| below this (as a signed word) for exact truncation
_LIMB_OFFSETS = (0, 22, 43)  # limbs of 22, 21 and 21 bits
_LIMB_MASKS = ((1 << 22) - 1, (1 << 21) - 1, (1 << 21) - 1)
# limb pairs grouped by weight, the weights below 64 only
_LIMB_PAIRS = ((0, ((0, 0),)), (22, ((0, 1), (1, 0))), (43, ((0, 2), (2, 0))), (44, ((1, 1),)))
_CHUNK = 256  # 2 products of 256 terms below 2^44 each stay below 2^53
MAX_PRECISION = 40


def signed(words: np.ndarray) -> np.ndarray:
    """The two's-complement (signed) view of ring elements."""
    return np.asarray(words, dtype=np.uint64).view(np.int64)


def from_int(values) -> np.ndarray:
    """Integers (any sign, |v| < 2^63) as ring elements."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


@dataclasses.dataclass(frozen=True)
class Encoding(FixedPoint):
    """Fixed point with `precision` fractional bits in Z_2^64 (`tfpriv.crypto.fixed_point`).

    The limit is |round(x 2^f)| <= 2^62 - 1, the truncation headroom: `encode`
    refuses a value with |x| >= 2^(62 - f) and `decode` a revealed word of
    magnitude 2^62 or more (`FixedPointRangeError`, also an OverflowError).
    """

    modulus: int = dataclasses.field(default=RING_MODULUS, init=False)
    precision: int = 16
    limit: int = dataclasses.field(default=TRUNCATION_LIMIT - 1, init=False)

    def __post_init__(self):
        super().__post_init__()
        checks.integer('precision', self.precision, 0, MAX_PRECISION)

    @property
    def max_product(self) -> float:
        """Largest magnitude of a product (or dot product) of two encodings: 2^(62 - 2f)."""
        return float(TRUNCATION_LIMIT) / self.scale**2


_TRANSPOSE_STEPS = ((7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0x00000000F0F0F0F0))


def bit_planes(words: np.ndarray) -> np.ndarray:
    """The 64 bit planes of `words`: out[j] packs bit j of every word (8 words a byte).

    Shape (64, ceil(size / 8)) uint8, bit j of word i at bit i mod 8 of byte
    i // 8 of plane j: the transpose that lets a Boolean circuit process one bit
    position of many values in one byte-wise operation. Groups of 8 words are
    transposed as 8 x 8 bit matrices held in one uint64 each (three
    delta-swaps, Warren, "Hacker's Delight", section 7-3).
    """
    flat = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1)
    groups = -(-flat.size // 8)
    if flat.size % 8:
        flat = np.concatenate([flat, np.zeros(8 * groups - flat.size, np.uint64)])
    # (group, word, byte) -> (group, byte, word): x[g, k] holds byte k of 8 words
    x = flat.view(np.uint8).reshape(groups, 8, 8).transpose(0, 2, 1).copy().view(np.uint64)
    for shift, mask in _TRANSPOSE_STEPS:
        shift, mask = np.uint64(shift), np.uint64(mask)
        t = (x ^ (x >> shift)) & mask
        x ^= t ^ (t << shift)
    # byte b of x[g, k] now holds bit b of byte k of the 8 words: plane 8 k + b
    return np.ascontiguousarray(x.view(np.uint8).reshape(groups, 64).T)


def unpack_plane(plane: np.ndarray, shape) -> np.ndarray:
    """One bit plane back to a bool array of `shape`."""
    size = int(np.prod(shape, dtype=np.int64))
    return np.unpackbits(plane, count=size, bitorder='little').view(np.bool_).reshape(shape)


def _limbs(words: np.ndarray) -> list:
    """The 22-, 21- and 21-bit limbs of each word, least significant first, as float64."""
    return [((words >> np.uint64(offset)) & np.uint64(mask)).astype(np.float64)
            for offset, mask in zip(_LIMB_OFFSETS, _LIMB_MASKS)]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b mod 2^64 for uint64 arrays a (..., K) and b (K, N).

    sum over limb pairs (i, j) with offset_i + offset_j < 64 of
    2^(offset_i + offset_j) A_i @ B_j, each through float64 BLAS on chunks of
    at most 256 columns of A (exact, see the module docstring).
    """
    if b.ndim != 2 or a.ndim < 1 or a.shape[-1] != b.shape[0]:
        raise ValueError(f'cannot multiply shapes {a.shape} and {b.shape}')
    a_limbs, b_limbs = _limbs(a), _limbs(b)
    out = np.zeros(a.shape[:-1] + b.shape[1:], dtype=np.uint64)
    for start in range(0, a.shape[-1], _CHUNK):
        chunk = slice(start, start + _CHUNK)
        for offset, pairs in _LIMB_PAIRS:
            acc = sum(a_limbs[i][..., chunk] @ b_limbs[j][chunk] for i, j in pairs)
            part = acc.astype(np.uint64)
            if offset:
                part <<= np.uint64(offset)
            out += part
    return out
