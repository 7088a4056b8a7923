"""Compact, checked byte format for BFV ciphertexts.

Layout (little-endian): magic b'TFBFV', version (1 byte), flags (bit 0: seeded,
bit 1: plaintext bound present), 16-byte parameter fingerprint, 8-byte key id,
batch (u32), c0_bits (u8), noise bound (f64), plaintext bound (u64), then c0
bit-packed on c0_bits bits per coefficient, then either c1 bit-packed on K bits
or, for a fresh seeded symmetric ciphertext, the 32-byte seed that regenerates
c1, and finally a SHA-256 digest of everything before it.

Sizes: with the 'bfv-4096' preset a compressed public-key ciphertext costs
37 + 48 = 85 bits = 10.6 bytes per coefficient; a seeded one 37 bits = 4.6
bytes. The digest catches truncation and accidental corruption; it is not a
MAC: an active attacker who rewrites the ciphertext can recompute it (use an
authenticated channel between clients and server).
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from tfpriv.crypto.bfv.params import BfvParams
from tfpriv.crypto.bfv.scheme import SEED_BYTES, Ciphertext, expand_seed

MAGIC = b'TFBFV'
VERSION = 1
_HEADER = struct.Struct('<5sBB16s8sIBdQ')
_DIGEST = 32


class SerializationError(ValueError):
    """The bytes are truncated, corrupted, of another version or another parameter set."""


def _group_views(raw: np.ndarray, groups: int, bits: int):
    """For j = 0..7: (uint64 view of the bytes where value j of every group starts, shift).

    Every 8 values fill exactly `bits` bytes, so value j of a group starts at byte
    j bits // 8 of the group, bit j bits % 8; with bits <= 56 a value fits the 8
    bytes of one unaligned strided view, which covers all groups at once.
    """
    for j in range(8):
        yield (np.ndarray((groups,), dtype='<u8', buffer=raw, offset=j * bits // 8,
                          strides=(bits,)), np.uint64(j * bits % 8))


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Unsigned values < 2^bits -> ceil(N bits / 8) bytes, least significant bit first."""
    words = np.ascontiguousarray(values, dtype=np.uint64).reshape(-1)
    if bits > 56:
        bitmap = np.unpackbits(words.view(np.uint8).reshape(-1, 8), axis=1, bitorder='little')
        return np.packbits(bitmap[:, :bits], bitorder='little').tobytes()
    groups = -(-words.size // 8)
    padded = np.zeros((groups, 8), dtype=np.uint64)
    padded.reshape(-1)[:words.size] = words
    raw = np.zeros(groups * bits + 8, dtype=np.uint8)
    for j, (view, shift) in enumerate(_group_views(raw, groups, bits)):
        view |= padded[:, j] << shift
    return raw[:packed_size(words.size, bits)].tobytes()


def unpack_bits(data: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of `pack_bits`: `count` uint64 values."""
    groups = -(-count // 8)
    raw = np.zeros(groups * bits + 8, dtype=np.uint8)
    raw[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    if bits > 56:
        bitmap = np.unpackbits(raw, bitorder='little')[:groups * 8 * bits]
        return np.packbits(np.pad(bitmap.reshape(-1, bits), ((0, 0), (0, 64 - bits))), axis=1,
                           bitorder='little').view(np.uint64).reshape(-1)[:count]
    out = np.empty((groups, 8), dtype=np.uint64)
    mask = np.uint64((1 << bits) - 1)
    for j, (view, shift) in enumerate(_group_views(raw, groups, bits)):
        out[:, j] = (view >> shift) & mask
    return out.reshape(-1)[:count]


def packed_size(count: int, bits: int) -> int:
    return -(-count * bits // 8)


def to_bytes(ct: Ciphertext) -> bytes:
    """Serializes a ciphertext (compress it first to send c0 on params.c0_bits bits)."""
    params = ct.params
    seeded = ct.seed is not None
    flags = int(seeded) | (int(ct.plain_bound is not None) << 1)
    header = _HEADER.pack(MAGIC, VERSION, flags, params.fingerprint(), ct.key_id, ct.batch,
                          ct.c0_bits, float(ct.noise), int(ct.plain_bound or 0))
    body = pack_bits(ct.c0, ct.c0_bits) + (ct.seed if seeded else pack_bits(ct.c1, params.log_q))
    payload = header + body
    return payload + hashlib.sha256(payload).digest()


def from_bytes(data: bytes, params: BfvParams) -> Ciphertext:
    """Parses and checks `to_bytes` output for the given parameters.

    Raises:
      SerializationError: wrong magic/version, parameter fingerprint mismatch,
        truncated or over-long data, or a digest mismatch (tampering/corruption).
    """
    data = bytes(data)
    if len(data) < _HEADER.size + _DIGEST:
        raise SerializationError(f'ciphertext truncated: {len(data)} bytes is shorter than '
                                 f'the {_HEADER.size + _DIGEST}-byte header and digest')
    magic, version, flags, fingerprint, key_id, batch, c0_bits, noise, plain = \
        _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SerializationError('not a tfpriv BFV ciphertext (bad magic bytes)')
    if version != VERSION:
        raise SerializationError(f'unsupported format version {version}, expected {VERSION}')
    if fingerprint != params.fingerprint():
        raise SerializationError('ciphertext was made with different BFV parameters '
                                 '(fingerprint mismatch)')
    if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
        raise SerializationError('ciphertext digest mismatch: the bytes were truncated, '
                                 'corrupted or tampered with')
    if not params.plain_bits < c0_bits <= params.log_q or flags > 3:
        raise SerializationError(f'invalid header: c0_bits={c0_bits}, flags={flags}')
    count = batch * params.n
    c0_size = packed_size(count, c0_bits)
    c1_size = SEED_BYTES if flags & 1 else packed_size(count, params.log_q)
    body = data[_HEADER.size:-_DIGEST]
    if len(body) != c0_size + c1_size:
        raise SerializationError(f'ciphertext body has {len(body)} bytes, expected '
                                 f'{c0_size + c1_size}')
    c0 = unpack_bits(body[:c0_size], count, c0_bits).reshape(batch, params.n)
    if flags & 1:
        seed = body[c0_size:]
        c1 = expand_seed(params, seed, batch)
    else:
        seed = None
        c1 = unpack_bits(body[c0_size:], count, params.log_q).reshape(batch, params.n)
    return Ciphertext(params, c0, c1, c0_bits, noise, key_id,
                      int(plain) if flags & 2 else None, seed)
