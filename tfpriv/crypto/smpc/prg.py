"""A fast cryptographic pseudo-random generator keyed from `tfpriv.rng.RandomSource`.

SMPC consumes a lot of randomness: every share, Beaver triple and comparison
mask is a fresh uniform 64-bit word, hundreds of words per secure comparison.
Reading them all from `os.urandom` (about 300 MB/s here) would dominate the
running time, so each party and the dealer expand a 256-bit key drawn from
their `RandomSource` with AES-256 in counter mode (the CTR_DRBG construction of
NIST SP 800-90A without its reseeding), about 8 GB/s with AES-NI. The keystream
is computationally indistinguishable from uniform as long as AES is a
pseudo-random permutation; the key itself comes from the OS CSPRNG by default,
or from the labelled-insecure seeded mode of `RandomSource` in tests, which
makes every draw reproducible.

This is the standard way real SMPC systems derive correlated randomness (the
dealer sends short PRG seeds instead of whole shares).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tfpriv.rng import RandomSource

Shape = Union[int, Sequence[int]]
_CHUNK = 1 << 20  # bytes encrypted per call; bounds the zero buffer


class Prg:
    """AES-256-CTR keystream as uniform uint64 words."""

    def __init__(self, rng: Optional[RandomSource] = None):
        rng = RandomSource() if rng is None else rng
        cipher = Cipher(algorithms.AES(rng.bytes(32)), modes.CTR(rng.bytes(16)))
        self._encryptor = cipher.encryptor()
        self._zeros = bytes(_CHUNK)

    def uint8(self, shape: Shape) -> np.ndarray:
        """Uniform bytes of the given shape."""
        nbytes = int(np.prod(shape, dtype=np.int64))
        raw = np.empty(nbytes + 16, dtype=np.uint8)  # update_into needs block_size - 1 spare
        for start in range(0, nbytes, _CHUNK):
            stop = min(start + _CHUNK, nbytes)
            self._encryptor.update_into(self._zeros[:stop - start], raw[start:stop + 15])
        return raw[:nbytes].reshape(shape)

    def uint64(self, shape: Shape) -> np.ndarray:
        """Uniform words in [0, 2^64) of the given shape."""
        size = int(np.prod(shape, dtype=np.int64))
        return self.uint8(8 * size).view(np.uint64).reshape(shape)

    def bits(self, shape: Shape) -> np.ndarray:
        """Uniform bits as a bool array of the given shape."""
        size = int(np.prod(shape, dtype=np.int64))
        packed = self.uint8((size + 7) // 8)
        return np.unpackbits(packed, count=size).view(np.bool_).reshape(shape)

    def draw(self, shape: Shape, dtype: np.dtype) -> np.ndarray:
        """Uniform values of `dtype`: bool (bits), uint8 (bytes) or uint64 (words)."""
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            return self.bits(shape)
        if dtype == np.uint8:
            return self.uint8(shape)
        if dtype == np.uint64:
            return self.uint64(shape)
        raise TypeError(f'cannot draw uniform values of dtype {dtype}')
