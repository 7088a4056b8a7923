"""Additive sharing over Z_2^64 and XOR (binary) sharing of 64-bit words.

Arithmetic: x = x_0 + ... + x_{n-1} mod 2^64 with x_0..x_{n-2} uniform and
x_{n-1} = x - sum of the others. Any n - 1 shares are independent and uniform,
so they say nothing about x (perfect secrecy).

Binary: x = x_0 xor ... xor x_{n-1}, the same argument bit by bit. Binary
shares carry the bit decomposition that exact comparison works on.
"""

from __future__ import annotations

import functools
from typing import List, Sequence

import numpy as np

from tfpriv.rng import Prg


def split(values: np.ndarray, num_parties: int, prg: Prg, binary: bool = False) -> List[np.ndarray]:
    """Shares `values` among `num_parties` (additively, or by XOR if `binary`).

    Arithmetic shares are uint64 words; binary shares keep the dtype of `values`:
    bool for single bits, uint8 for packed bit planes, uint64 for words.
    """
    values = np.asarray(values)
    if not binary:
        values = values.astype(np.uint64, copy=False)
    shares = [prg.draw(values.shape, values.dtype) for _ in range(num_parties - 1)]
    if binary:
        last = functools.reduce(np.bitwise_xor, shares, values)
    else:
        last = values.astype(np.uint64, copy=True)
        for share in shares:
            last -= share
    return shares + [last]


def combine(shares: Sequence[np.ndarray], binary: bool = False) -> np.ndarray:
    """The value that `shares` share (sum mod 2^64, or XOR if `binary`)."""
    return functools.reduce(np.bitwise_xor if binary else np.add, shares)
