"""Randomness for every private mechanism in tfpriv.

`RandomSource()` draws from the operating system's CSPRNG (`os.urandom`, which
`secrets` also uses). `RandomSource(seed=...)` is a reproducible NumPy PCG64
stream for tests and benchmarks: it is labelled insecure (`secure is False`) and
logs a warning, because anyone who knows the seed knows every share and every
noise draw. The warning names its `cause` (what the seed drives and which flag
set it) and is logged once per cause per process.

`Prg(rng)` expands a 256-bit key drawn from a `RandomSource` with AES-256 in
counter mode (the CTR_DRBG construction of NIST SP 800-90A without reseeding):
uniform words at several GB/s, computationally indistinguishable from uniform
as long as AES is a pseudo-random permutation. It is the one fast keystream of
tfpriv: SMPC shares, Beaver triples and comparison masks, Shamir coefficients
and RLWE samples all come from it. Keyed from a seeded `RandomSource` it is
reproducible, and as insecure as that source. `Prg.from_seed(seed)` expands a
*public* seed (e.g. the uniform part `a` of an RLWE ciphertext, sent as its
seed): deterministic by design, and only for values that are public anyway.
`Prg.from_key(key)` keys one stream with a secret 128- or 256-bit key (SecAgg+'s
masks use AES-128, whose 10 rounds make a faster keystream than AES-256's 14).
`Prg.uniform_mod` gives exactly uniform residues by rejection sampling.

All draws are vectorized: one call fills a whole tensor.
"""

from __future__ import annotations

import math
import os
from typing import Optional, Sequence, Set, Union

from tfpriv import checks

import numpy as np
from absl import logging
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

Shape = Union[int, Sequence[int]]
_CHUNK = 1 << 20  # bytes the Prg encrypts per call; bounds its zero buffer
_SPARE = 16  # bytes past the output that AES-CTR `update_into` needs (one block)
_ZEROS = memoryview(bytes(_CHUNK))  # the plaintext of every keystream; slicing does not copy
_ONE_BITS = np.uint64(0x3FF0000000000000)  # the bits of the float64 1.0


def unit_floats(words: np.ndarray) -> np.ndarray:
    """Uniform floats in the open interval (0, 1) from uniform uint64 words: ((w >> 12) + 1/2) / 2^52.

    The top 52 bits x of each word give (2x + 1) / 2^53, exact in float64 and at most
    1 - 2^-53 (with 53 bits, x + 1/2 would round to 2^53 for the top word: u = 1). The
    low 12 bits are left unused (a caller may take an independent bit from them).
    Computed without an integer-to-float conversion: x under the exponent bits of 1.0 is
    the float 1 + x 2^-52, and subtracting 1 - 2^-53 is exact (Sterbenz), in place.
    """
    bits = np.asarray(words, dtype=np.uint64) >> np.uint64(12)
    bits |= _ONE_BITS
    floats = bits.view(np.float64)
    floats -= 1.0 - 2.0**-53
    return floats


def _size(shape: Shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if not isinstance(shape, int) else shape


_warned_causes: Set[str] = set()  # one warning per cause and process, not one per source


def _warn_insecure_once(seed: int, cause: str) -> None:
    """Logs, the first time for this `cause` only, that seeded randomness is insecure."""
    if cause not in _warned_causes:
        _warned_causes.add(cause)
        logging.warning('RandomSource(seed=%d) is INSECURE for %s: every draw is reproducible '
                        'from the seed (fine for tests and benchmarks, never for noise, shares or '
                        'keys that must stay secret). Reported once per cause.', seed, cause)


class RandomSource:
    """A source of uniform bits, CSPRNG by default, seeded (insecure) on request."""

    def __init__(self, seed: Optional[int] = None, cause: str = 'a seeded source'):
        """`cause`: what the seed drives and where it came from, for the one warning per cause."""
        self._generator: Optional[np.random.Generator] = None
        if seed is not None:
            seed = checks.integer('seed', seed)
            _warn_insecure_once(seed, cause)
            self._generator = np.random.Generator(np.random.PCG64(seed))

    @property
    def secure(self) -> bool:
        """True when draws come from the OS CSPRNG."""
        return self._generator is None

    def bytes(self, n: int) -> bytes:
        """`n` uniformly random bytes."""
        if self._generator is None:
            return os.urandom(n)
        return self._generator.bytes(n)

    def uint64(self, shape: Shape) -> np.ndarray:
        """Uniform integers in [0, 2^64) as uint64, of the given shape."""
        n = _size(shape)
        return np.frombuffer(self.bytes(8 * n), dtype=np.uint64).reshape(shape).copy()

    def uniform_mod(self, modulus: int, shape: Shape) -> np.ndarray:
        """Uniform integers in [0, modulus) as int64, without modulo bias.

        Draws 64-bit words and rejects those at or above the largest multiple of
        `modulus` below 2^64 (rejection probability < modulus / 2^64), so the result
        is exactly uniform.
        """
        if not 2 <= modulus <= 2**63:
            raise ValueError(f'modulus must be in [2, 2^63], got {modulus}')
        n = _size(shape)
        limit = np.uint64((2**64 // modulus) * modulus - 1)
        words = self.uint64(n)
        bad = np.flatnonzero(words > limit)
        while bad.size:
            words[bad] = self.uint64(bad.size)
            bad = bad[words[bad] > limit]
        return (words % np.uint64(modulus)).astype(np.int64).reshape(shape)

    def uniform01(self, shape: Shape) -> np.ndarray:
        """Uniform floats in the open interval (0, 1), 52 random bits each (`unit_floats`)."""
        return unit_floats(self.uint64(shape))

    def normal(self, shape: Shape, scale: float = 1.0) -> np.ndarray:
        """N(0, scale^2) samples (Box-Muller on `uniform01`)."""
        n = _size(shape)
        half = (n + 1) // 2
        u1, u2 = self.uniform01(half), self.uniform01(half)
        radius = np.sqrt(-2.0 * np.log(u1))
        z = np.concatenate([radius * np.cos(2 * math.pi * u2), radius * np.sin(2 * math.pi * u2)])
        return (scale * z[:n]).reshape(shape)

    def laplace(self, shape: Shape, scale: float = 1.0) -> np.ndarray:
        """Laplace(0, scale) samples (inverse CDF on `uniform01`)."""
        u = self.uniform01(shape) - 0.5
        return -scale * np.sign(u) * np.log1p(-2.0 * np.abs(u))


class Prg:
    """AES-256-CTR keystream as uniform uint64 words (see the module docstring)."""

    SEED_BYTES = 32

    def __init__(self, rng: Optional[RandomSource] = None):
        rng = RandomSource() if rng is None else rng
        self._start(rng.bytes(32), rng.bytes(16))

    def _start(self, key: bytes, nonce: bytes) -> None:
        self._encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()

    @classmethod
    def from_seed(cls, seed: bytes) -> 'Prg':
        """The keystream of a public 32-byte `seed` (key = seed, nonce = 0): deterministic."""
        if not isinstance(seed, bytes) or len(seed) != cls.SEED_BYTES:
            raise ValueError(f'seed must be {cls.SEED_BYTES} bytes, got {seed!r:.40}')
        return cls.from_key(seed)

    @classmethod
    def from_key(cls, key: bytes) -> 'Prg':
        """AES-CTR keyed by `key` (16 bytes: AES-128, 32: AES-256), nonce 0: one stream per key,
        so a key must never key a second stream. Secret when `key` is (e.g. a mask seed)."""
        if not isinstance(key, bytes) or len(key) not in (16, 32):
            raise ValueError(f'key must be 16 or 32 bytes, got {key!r:.40}')
        prg = cls.__new__(cls)
        prg._start(key, bytes(16))
        return prg

    def uint8(self, shape: Shape) -> np.ndarray:
        """Uniform bytes of the given shape."""
        nbytes = int(np.prod(shape, dtype=np.int64))
        raw = np.empty(nbytes + _SPARE, dtype=np.uint8)
        return self.fill(raw, nbytes).reshape(shape)

    def fill(self, buffer: np.ndarray, nbytes: int) -> np.ndarray:
        """The next `nbytes` keystream bytes written into `buffer`, returned as buffer[:nbytes].

        `buffer` is a writable contiguous uint8 array of at least nbytes + 16 bytes
        (OpenSSL's `update_into` wants one AES block spare); reusing one buffer
        avoids a fresh allocation (and its page faults) per draw.
        """
        if buffer.dtype != np.uint8 or buffer.size < nbytes + _SPARE:
            raise ValueError(f'buffer must be uint8 with at least {nbytes + _SPARE} bytes, '
                             f'got {buffer.dtype} with {buffer.size}')
        for start in range(0, nbytes, _CHUNK):
            stop = min(start + _CHUNK, nbytes)
            self._encryptor.update_into(_ZEROS[:stop - start], buffer[start:stop + _SPARE])
        return buffer[:nbytes]

    def uint64(self, shape: Shape) -> np.ndarray:
        """Uniform words in [0, 2^64) of the given shape."""
        size = int(np.prod(shape, dtype=np.int64))
        return self.uint8(8 * size).view(np.uint64).reshape(shape)

    def uniform01(self, shape: Shape) -> np.ndarray:
        """Uniform floats in the open interval (0, 1), 52 random bits each (`unit_floats`)."""
        return unit_floats(self.uint64(shape))

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

    def uniform_mod(self, modulus: int, shape: Shape) -> np.ndarray:
        """Exactly uniform integers in [0, modulus) as int64, for 2 <= modulus <= 2^63.

        Words of 32 bits (64 above 2^32) are masked to the bit length of
        `modulus` and those >= modulus redrawn (rejection sampling: each draw is
        kept with probability > 1/2, and the kept ones are uniform).
        """
        modulus = checks.integer('modulus', modulus, 2, 2**63)
        dtype = np.uint32 if modulus <= 2**32 else np.uint64
        mask = dtype((1 << (modulus - 1).bit_length()) - 1)
        size = _size(shape)

        def draw(count: int) -> np.ndarray:
            return self.uint8(count * np.dtype(dtype).itemsize).view(dtype) & mask

        words = draw(size)
        bad = np.flatnonzero(words >= modulus)
        while bad.size:
            words[bad] = draw(bad.size)
            bad = bad[words[bad] >= modulus]
        return words.astype(np.int64).reshape(shape)


def as_prg(rng: Union[RandomSource, 'Prg', None]) -> 'Prg':
    """`rng` if it is a Prg, else a Prg keyed from it (a fresh OS-CSPRNG source for None)."""
    return rng if isinstance(rng, Prg) else Prg(rng)
