"""Cryptographic building blocks of the masking protocol.

* Key agreement (Diffie and Hellman 1976) on Curve25519: X25519 (RFC 7748) from
  the `cryptography` package, the shared point hashed by HKDF-SHA256 (RFC 5869)
  with a label per purpose, so the share-encryption key and the mask seed of a
  pair are independent.
* Masks: the first 16 bytes of a 32-byte seed key an AES-128-CTR keystream
  (`tfpriv.rng.Prg.from_key`, zero IV: every seed keys one stream only), 128-bit
  security like X25519's; `add_masks` adds or subtracts many such streams into
  a vector mod 2^32 or 2^64.
* Authenticated encryption of shares: AES-256-GCM (NIST SP 800-38D). Each
  pair key is used once per direction, so the 96-bit nonce is the pair
  (sender, recipient) itself; both indices are also authenticated data.
* Shamir sharing of 32-byte secrets (self-mask seeds, X25519 private keys):
  the secret is cut into sixteen 16-bit limbs, each shared over GF(2^31 - 1)
  with `tfpriv.crypto.shamir.field` at x = recipient index + 1.
"""

from __future__ import annotations

import struct
from typing import Callable, List, Optional, Sequence

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tfpriv.crypto.shamir import field
from tfpriv.errors import DecodingError
from tfpriv.rng import Prg, RandomSource

SECRET_BYTES = 32
LIMBS = SECRET_BYTES // 2  # 16-bit limbs per secret, each a field element
PRIME = field.DEFAULT_PRIME
SHARE_BYTES = 4 * LIMBS  # one field element (< 2^31) in 4 bytes per limb
MASK_LABEL = b'tfpriv secagg+ pairwise mask'
SHARE_LABEL = b'tfpriv secagg+ share encryption'
_NONCE = struct.Struct('<IIxxxx')
MASK_KEY_BYTES = 16  # AES-128: the masks' keystream, a mask seed's first 16 bytes
_MASK_BLOCK = 1 << 18  # bytes of each mask added at a time (in cache with the output block)


def add_masks(out: np.ndarray, seeds: Sequence[bytes], signs: Sequence[int],
              fill: Optional[Callable[[int, np.ndarray], None]] = None) -> np.ndarray:
    """out += sum_i signs[i] PRG(seeds[i]) mod 2^(8 out.itemsize), in place; returns out.

    PRG(seed) is the AES-128-CTR keystream keyed by the seed's first 16 bytes, read as
    words of out's unsigned dtype. All streams advance together over blocks of
    `_MASK_BLOCK` bytes, each drawn into one reused buffer, so each block of
    `out` stays in cache while every mask is added to it. `fill(start, block)`,
    if given, first writes the block's values (out[start:start + len(block)]),
    e.g. the client's encoding: its input is then read once and `out` written once.
    """
    streams = [Prg.from_key(seed[:MASK_KEY_BYTES]) for seed in seeds]
    step = _MASK_BLOCK // out.itemsize
    scratch = np.empty(_MASK_BLOCK + 16, dtype=np.uint8)  # one keystream block, reused
    for start in range(0, out.size, step):
        block = out[start:start + step]
        if fill is not None:
            fill(start, block)
        for stream, sign in zip(streams, signs):
            words = stream.fill(scratch, block.size * out.itemsize).view(out.dtype)
            (np.add if sign > 0 else np.subtract)(block, words, out=block)
    return out


def private_key(rng: RandomSource) -> X25519PrivateKey:
    """A fresh X25519 private key from 32 bytes of `rng`."""
    return X25519PrivateKey.from_private_bytes(rng.bytes(SECRET_BYTES))


def public_bytes(key: X25519PrivateKey) -> bytes:
    """The 32-byte raw public key of `key`."""
    return key.public_key().public_bytes_raw()


def agree(key: X25519PrivateKey, peer_public: bytes, label: bytes) -> bytes:
    """HKDF-SHA256(X25519(key, peer), info=label): 32 bytes both ends compute alike."""
    shared = key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    return HKDF(hashes.SHA256(), SECRET_BYTES, salt=None, info=label).derive(shared)


def seal(key: bytes, sender: int, recipient: int, payload: bytes) -> bytes:
    """AES-256-GCM encryption of `payload` from `sender` to `recipient` (tag appended)."""
    nonce = _NONCE.pack(sender, recipient)
    return AESGCM(key).encrypt(nonce, payload, nonce)


def unseal(key: bytes, sender: int, recipient: int, ciphertext: bytes) -> bytes:
    """Inverse of `seal`; DecodingError if the ciphertext or its routing was altered."""
    nonce = _NONCE.pack(sender, recipient)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, nonce)
    except InvalidTag as err:
        raise DecodingError(f'the share from client {sender} to client {recipient} failed '
                            f'authentication') from err


def split_secrets(secrets: Sequence[bytes], recipients: Sequence[int], threshold: int,
                  rng: RandomSource) -> List[bytes]:
    """Shamir t-of-len(recipients) shares of each 32-byte secret; one bytes blob per recipient.

    Blob i holds, for every secret in order, its 16 limb shares at x = recipients[i] + 1.
    """
    limbs = np.concatenate([np.frombuffer(s, dtype='<u2') for s in secrets]).astype(np.int64)
    rows = field.split_field(limbs, threshold, len(recipients), PRIME, rng,
                             xs=[v + 1 for v in recipients])
    return [row.astype('<u4').tobytes() for row in rows]


def reconstruct_secret(holders: Sequence[int], shares: Sequence[bytes]) -> bytes:
    """The 32-byte secret from its shares held by `holders` (any threshold of them).

    Raises:
      DecodingError: a limb came back outside [0, 2^16): the shares are inconsistent.
    """
    rows = [np.frombuffer(s, dtype='<u4').astype(np.int64) for s in shares]
    limbs = field.reconstruct_field([v + 1 for v in holders], rows, PRIME)
    if np.any(limbs >= 1 << 16):
        raise DecodingError(f'the shares held by clients {list(holders)} do not reconstruct a '
                            f'secret: at least one is wrong')
    return limbs.astype('<u2').tobytes()
