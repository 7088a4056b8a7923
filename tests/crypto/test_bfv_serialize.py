"""Serialization round trip, compact sizes, rejection of truncated/tampered/mismatched bytes."""

import numpy as np
import pytest

from tfpriv.crypto.bfv import scheme, serialize
from tfpriv.crypto.bfv.params import PRESETS, preset
from tfpriv.rng import RandomSource

TOY = preset('toy', insecure=True)


@pytest.fixture(scope='module')
def setup():
    rng = RandomSource(10)
    sk, pk = scheme.keygen(TOY, rng)
    m = rng.uniform_mod(TOY.t, (3, TOY.n))
    return sk, pk, m, rng


def test_round_trip_public_and_seeded(setup):
    sk, pk, m, rng = setup
    for ct in (scheme.compress(scheme.encrypt(pk, m, rng, plain_bound=5)),
               scheme.encrypt(pk, m, rng), scheme.compress(scheme.encrypt_symmetric(sk, m, rng))):
        data = serialize.to_bytes(ct)
        back = serialize.from_bytes(data, TOY)
        assert np.array_equal(back.c0, ct.c0) and np.array_equal(back.c1, ct.c1)
        assert (back.noise, back.plain_bound, back.c0_bits, back.seed) == \
            (ct.noise, ct.plain_bound, ct.c0_bits, ct.seed)
        assert np.array_equal(scheme.decrypt(sk, back), m)


def test_sizes_match_bit_budget(setup):
    sk, pk, m, rng = setup
    coeffs = m.size
    public = serialize.to_bytes(scheme.compress(scheme.encrypt(pk, m, rng)))
    seeded = serialize.to_bytes(scheme.compress(scheme.encrypt_symmetric(sk, m, rng)))
    overhead = serialize._HEADER.size + 32
    assert len(public) == overhead + coeffs * (TOY.c0_bits + TOY.log_q) // 8
    assert len(seeded) == overhead + coeffs * TOY.c0_bits // 8 + scheme.SEED_BYTES
    params = PRESETS['bfv-4096']
    assert (params.c0_bits + params.log_q) / 8 <= 11


@pytest.mark.parametrize('bits', [1, 5, 8, 37, 48, 56, 57, 62])
def test_bit_packing(bits):
    values = np.random.default_rng(bits).integers(0, 2**bits, 101, dtype=np.int64)
    data = serialize.pack_bits(values.astype(np.uint64), bits)
    assert len(data) == serialize.packed_size(101, bits)
    assert np.array_equal(serialize.unpack_bits(data, 101, bits), values.astype(np.uint64))


def test_rejects_truncated_tampered_mismatched(setup):
    sk, pk, m, rng = setup
    data = serialize.to_bytes(scheme.compress(scheme.encrypt(pk, m, rng)))
    with pytest.raises(serialize.SerializationError, match='truncated|digest'):
        serialize.from_bytes(data[:-1], TOY)
    with pytest.raises(serialize.SerializationError, match='truncated'):
        serialize.from_bytes(data[:20], TOY)
    for position in (7, 60, len(data) // 2, len(data) - 1):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        with pytest.raises(serialize.SerializationError):
            serialize.from_bytes(bytes(tampered), TOY)
    with pytest.raises(serialize.SerializationError, match='fingerprint'):
        serialize.from_bytes(data, PRESETS['bfv-4096'])
    with pytest.raises(serialize.SerializationError, match='magic'):
        serialize.from_bytes(b'X' + data[1:], TOY)
