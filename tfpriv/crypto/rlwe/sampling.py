"""Samplers for RLWE: ternary secrets, discrete Gaussian errors, uniform residues.

Every sampler draws from an AES-256-CTR keystream, `tfpriv.rng.Prg`: keyed
from a `tfpriv.rng.RandomSource` (the OS CSPRNG by default) for secrets, errors
and smudging noise, or expanded from a public 32-byte seed (`Prg.from_seed`)
for the uniform part `a` of a key or seeded ciphertext, so that the receiver
re-expands the seed into the same polynomial. The keystream costs about 1 ms
per 8 MB here, `os.urandom` about 30 ms.

Discrete Gaussian (cumulative distribution table, CDT): a uniform 64-bit word
w is mapped to the v with CDF(v - 1) <= w / 2^64 < CDF(v), the CDF of
D_{Z, sigma} truncated at 13 sigma (tail mass < 2^-120). A 2^16-entry table
indexed by the word's top 16 bits resolves all but about 0.1 % of the words;
those fall back to a binary search, so the output is exactly the CDT sample.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence, Tuple

import numpy as np

from tfpriv.rng import Prg

_TOP_BITS = 16


def ternary(prg: Prg, shape: Tuple[int, ...]) -> np.ndarray:
    """Uniform values in {-1, 0, 1} as int64 (bytes below 255, reduced mod 3)."""
    size = int(np.prod(shape, dtype=np.int64))
    raw = prg.uint8(size).copy()
    bad = np.flatnonzero(raw == 255)
    while bad.size:
        raw[bad] = prg.uint8(bad.size)
        bad = bad[raw[bad] == 255]
    return (raw % 3).astype(np.int64).reshape(shape) - 1


@functools.lru_cache(maxsize=8)
def _cdt(sigma: float):
    bound = int(math.ceil(13 * sigma))
    values = np.arange(-bound, bound + 1)
    weights = np.exp(-values.astype(np.float64) ** 2 / (2 * sigma * sigma))
    cdf = np.cumsum(weights / weights.sum())[:-1]
    table = np.array([min(int(c * 2.0**64), 2**64 - 1) for c in cdf], dtype=np.uint64)
    shift = np.uint64(64 - _TOP_BITS)
    buckets = np.arange(2**_TOP_BITS, dtype=np.uint64)
    first = np.searchsorted(table, buckets << shift, side='right')
    last = np.searchsorted(table, (buckets << shift) | np.uint64(2**(64 - _TOP_BITS) - 1),
                           side='right')
    direct = np.where(first == last, first - bound, np.iinfo(np.int64).min)
    return table, direct.astype(np.int64), bound


def gaussian(prg: Prg, shape: Tuple[int, ...], sigma: float) -> np.ndarray:
    """Samples of the discrete Gaussian D_{Z, sigma} as int64 (CDT, see module doc)."""
    table, direct, bound = _cdt(float(sigma))
    words = prg.uint64(shape)
    out = direct[words >> np.uint64(64 - _TOP_BITS)]
    slow = np.flatnonzero(out == np.iinfo(np.int64).min)
    if slow.size:
        flat = out.reshape(-1)
        flat[slow] = np.searchsorted(table, words.reshape(-1)[slow], side='right') - bound
    return out


def uniform_residues(prg: Prg, primes: Sequence[int], shape: Tuple[int, ...]) -> np.ndarray:
    """Exactly uniform residues mod each prime, int64 of shape (L, *shape) (`Prg.uniform_mod`)."""
    return np.stack([prg.uniform_mod(p, shape) for p in primes])
