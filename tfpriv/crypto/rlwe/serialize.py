"""Bytes for ciphertexts: versioned, bound to the parameters, checked on load.

Layout (little endian):
  magic b'TFRLWE' | version u8 | kind u8 (1 full, 2 compressed) |
  parameter fingerprint 16 bytes | key id 8 bytes | batch u32 | bits0 u8 | bits1 u8 | seeded u8 |
  [seed 32 bytes] | c0 | [c1] | SHA-256 of everything before, first 16 bytes.
No noise record travels: the receiver recomputes the noise of a fresh
encryption from the parameters (the larger public-key noise, plus the rounding
of the compressed widths) and the public plaintext bound it expects, and labels
it with the digest, so the same bytes loaded twice count as one ancestor.
A full ciphertext stores residues as u32 (L B n each); a compressed one stores
ceil(d/8) bytes per coefficient. A seeded ciphertext stores its seed, not c1,
so a compressed seeded ciphertext costs ceil(d0/8) bytes per coefficient.

`loads` rejects a wrong magic or version, parameters other than the expected
ones (fingerprint), a wrong length (truncated or padded data), a digest
mismatch (corruption or tampering in transit) and residues >= p. The digest
detects accidental or naive modification; an active
attacker who recomputes it is stopped only by an authenticated channel (TLS),
which the federated transport is assumed to provide.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Optional, Union

import numpy as np

from tfpriv import checks
from tfpriv.crypto.rlwe.bfv import Ciphertext, fresh_noise
from tfpriv.crypto.rlwe.modswitch import CompressedCiphertext, rounding_variance
from tfpriv.crypto.rlwe.params import Params
from tfpriv.errors import SerializationError
from tfpriv.rng import Prg

SEED_BYTES = Prg.SEED_BYTES

MAGIC = b'TFRLWE'
VERSION = 2
_FULL, _COMPRESSED = 1, 2
_HEADER = struct.Struct('<6sBB16s8sIBBB')
_DIGEST = 16



def _pack(values: np.ndarray, bits: int) -> bytes:
    width = -(-bits // 8)
    return np.ascontiguousarray(values.astype(np.uint64).reshape(-1, 1).view(np.uint8)
                                [:, :width]).tobytes()


def _unpack(blob: bytes, count: int, bits: int, shape) -> np.ndarray:
    width = -(-bits // 8)
    out = np.zeros((count, 8), dtype=np.uint8)
    out[:, :width] = np.frombuffer(blob, dtype=np.uint8).reshape(count, width)
    values = out.view(np.uint64).reshape(shape)
    if values.size and values.max() >= 2**bits:
        raise SerializationError(f'a compressed coefficient exceeds 2^{bits}')
    return values


def dumps(ct: Union[Ciphertext, CompressedCiphertext]) -> bytes:
    """Serializes a ciphertext or compressed ciphertext (TypeError for anything else)."""
    if isinstance(ct, Ciphertext):
        kind, batch, bits0, bits1 = _FULL, ct.batch, 0, 0
        parts = [ct.c0.astype(np.uint32).tobytes()]
        if ct.seed is None:
            parts.append(ct.c1.astype(np.uint32).tobytes())
    elif isinstance(ct, CompressedCiphertext):
        kind, batch = _COMPRESSED, ct.z0.shape[0]
        bits0, bits1 = ct.bits0, ct.bits1 or 0
        parts = [_pack(ct.z0, bits0)]
        if ct.seed is None:
            parts.append(_pack(ct.z1, bits1))
    else:
        raise TypeError(f'cannot serialize {type(ct).__name__}')
    header = _HEADER.pack(MAGIC, VERSION, kind, ct.params.fingerprint(), ct.key_id, batch, bits0,
                          bits1, ct.seed is not None)
    body = header + (ct.seed or b'') + b''.join(parts)
    return body + hashlib.sha256(body).digest()[:_DIGEST]


def _check_header(data: bytes, params: Params):
    """The header fields and blob sizes of `data`, after checking magic, version,
    parameters, widths, length and digest (SerializationError otherwise)."""
    if len(data) < _HEADER.size + _DIGEST:
        raise SerializationError(f'{len(data)} bytes is too short for a ciphertext (truncated?)')
    (magic, version, kind, fingerprint, key_id, batch, bits0, bits1,
     seeded) = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SerializationError('not a tfpriv RLWE ciphertext (bad magic)')
    if version != VERSION:
        raise SerializationError(f'unsupported format version {version} (this is {VERSION})')
    if fingerprint != params.fingerprint():
        raise SerializationError('the ciphertext was made for different parameters '
                                 f'(fingerprint {fingerprint.hex()}, expected '
                                 f'{params.fingerprint().hex()} for {params.name})')
    if kind not in (_FULL, _COMPRESSED) or seeded not in (0, 1) or batch < 1:
        raise SerializationError(f'corrupt header (kind {kind}, seeded {seeded}, batch {batch})')
    count, num = batch * params.n, params.num_primes
    if kind == _FULL:
        sizes = [4 * num * count] * (2 - seeded)
    else:
        if not 1 <= bits0 <= 62 or not (seeded or 1 <= bits1 <= 62):
            raise SerializationError(f'corrupt compressed widths {bits0}, {bits1}')
        sizes = [-(-bits0 // 8) * count] + ([] if seeded else [-(-bits1 // 8) * count])
    expected = _HEADER.size + SEED_BYTES * seeded + sum(sizes) + _DIGEST
    if len(data) != expected:
        raise SerializationError(f'expected {expected} bytes for this ciphertext, got '
                                 f'{len(data)} (truncated or padded)')
    body = data[:-_DIGEST]
    if hashlib.sha256(body).digest()[:_DIGEST] != data[-_DIGEST:]:
        raise SerializationError('digest mismatch: the ciphertext was corrupted or tampered with')
    return kind, key_id, batch, bits0, bits1, seeded, sizes


def loads(data: bytes, params: Params, plain: Optional[int] = None,
          key_parties: int = 1) -> Union[Ciphertext, CompressedCiphertext]:
    """Parses bytes from `dumps`, checking them against `params` (see module doc).

    The noise record is recomputed here from the parameters, never read from the
    sender: that of a fresh public-key encryption under the receiver's key.

    Args:
      data: the bytes.
      params: the parameters the ciphertext must be for.
      plain: the public bound on |m| the sender was held to; default (t - 1) / 2,
        the largest any plaintext can have.
      key_parties: N when the key is the collective key of N holders (`multiparty`).
    """
    data = bytes(data)
    kind, key_id, batch, bits0, bits1, seeded, sizes = _check_header(data, params)
    count = batch * params.n
    plain = (params.t - 1) // 2 if plain is None else checks.integer('plain', plain, 0)
    key_parties = checks.integer('key_parties', key_parties, 1)
    noise = fresh_noise(params, plain, ancestor=data[-_DIGEST:], key_parties=key_parties)
    offset = _HEADER.size
    seed = data[offset:offset + SEED_BYTES] if seeded else None
    offset += SEED_BYTES * seeded
    blobs = []
    for size in sizes:
        blobs.append(data[offset:offset + size])
        offset += size
    if kind == _COMPRESSED:
        z = [_unpack(blob, count, bits, (batch, params.n))
             for blob, bits in zip(blobs, (bits0, bits1))]
        noise = noise.with_variance(rounding_variance(params, bits0, None if seeded else bits1,
                                                      key_parties**2 * params.n))
        return CompressedCiphertext(params, z[0], bits0, noise, None if seeded else z[1],
                                    None if seeded else bits1, seed, key_id)
    residues = [_residues(blob, params, batch) for blob in blobs]
    return Ciphertext(params, residues[0], noise, None if seeded else residues[1], seed, key_id)


def _residues(blob: bytes, params: Params, batch: int) -> np.ndarray:
    """RNS residues (L, batch, n) stored as u32, each checked to be below its prime."""
    values = np.frombuffer(blob, dtype=np.uint32).astype(np.int64)
    values = values.reshape(params.num_primes, batch, params.n)
    if np.any(values >= np.array(params.primes, dtype=np.int64).reshape(-1, 1, 1)):
        raise SerializationError('a residue is not reduced modulo its prime')
    return values
