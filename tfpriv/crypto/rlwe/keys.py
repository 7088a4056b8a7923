"""BFV key generation: ternary secret s, public key (b, a) = (-(a s + e), a) mod q.

s has coefficients uniform in {-1, 0, 1} (the HE Standard's ternary secret), e
is discrete Gaussian with sigma = 3.2, a is uniform in R_q. Everything is drawn
from an AES-CTR keystream (`tfpriv.rng.Prg`) keyed from a `tfpriv.rng.RandomSource`
(OS CSPRNG by default; samplers in `sampling`). The uniform a is expanded from a
32-byte public seed (`Prg.from_seed`),
so a public key can travel as (b, seed); under the RLWE assumption b is
indistinguishable from uniform, so (b, a) reveals nothing about s.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Tuple, Union

import numpy as np

from tfpriv.crypto.rlwe import sampling
from tfpriv.crypto.rlwe.params import Params
from tfpriv.crypto.rlwe.rns import FixedOperand, Ring
from tfpriv.rng import Prg, RandomSource, as_prg


KEY_ID_BYTES = 8  # random label of a key pair, carried by its ciphertexts


@functools.lru_cache(maxsize=16)
def ring_of(params: Params) -> Ring:
    """The (cached) RNS ring and NTT tables of `params`."""
    return Ring(params)


@dataclasses.dataclass(eq=False)
class SecretKey:
    """The secret s (int64 coefficients in {-1, 0, 1}, shape (n,))."""

    params: Params
    s: np.ndarray = dataclasses.field(repr=False)  # key material: never in a repr or log
    key_id: bytes = b''

    @functools.cached_property
    def operand(self) -> FixedOperand:
        """s in NTT form, ready to multiply ciphertext components."""
        ring = ring_of(self.params)
        return ring.fixed(ring.from_signed(self.s)[:, None, :])


@dataclasses.dataclass(eq=False)
class PublicKey:
    """(b, a) with b = -(a s + e) mod q; residues of shape (L, 1, n)."""

    params: Params
    b: np.ndarray
    a: np.ndarray
    seed: bytes
    key_id: bytes = b''

    @functools.cached_property
    def operands(self) -> Tuple[FixedOperand, FixedOperand]:
        ring = ring_of(self.params)
        return ring.fixed(self.b), ring.fixed(self.a)


def uniform_poly(params: Params, seed: bytes, batch: int) -> np.ndarray:
    """`batch` uniform polynomials of R_q expanded from `seed`, residues (L, batch, n)."""
    return sampling.uniform_residues(Prg.from_seed(seed), params.primes,
                                     (batch, params.n))


def keygen(params: Params,
           rng: Union[RandomSource, Prg, None] = None) -> Tuple[SecretKey, PublicKey]:
    """A fresh secret key and its public key, from `rng` (OS CSPRNG by default)."""
    if not isinstance(params, Params):
        raise TypeError(f'params must be a Params, got {type(params).__name__}')
    prg = as_prg(rng)
    key_id = prg.uint8(KEY_ID_BYTES).tobytes()
    secret = SecretKey(params, sampling.ternary(prg, (params.n,)), key_id)
    return secret, public_key(secret, prg)


def public_key(secret: SecretKey, rng: Union[RandomSource, Prg, None] = None) -> PublicKey:
    """A public key (b, a) for `secret` with fresh a and e."""
    params, ring = secret.params, ring_of(secret.params)
    prg = as_prg(rng)
    seed = prg.uint8(Prg.SEED_BYTES).tobytes()
    a = uniform_poly(params, seed, 1)
    e = sampling.gaussian(prg, (1, params.n), params.sigma)
    b = ring.neg(ring.add(secret.operand.times(a), ring.from_signed(e)))
    return PublicKey(params, b, a, seed, secret.key_id)
