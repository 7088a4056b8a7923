"""Serialization round trips and rejection of truncated, tampered, mismatched bytes."""

import numpy as np
import pytest

from tfpriv.crypto.rlwe import bfv, keys, modswitch, serialize
from tfpriv.crypto.rlwe import params as rp
from tfpriv.rng import RandomSource


@pytest.fixture(scope='module')
def setup():
    params = rp.preset('n2048')
    secret, public = keys.keygen(params, RandomSource(seed=7))
    plain = np.random.default_rng(7).integers(-1000, 1000, (2, params.n))
    return params, secret, public, plain


def forms(secret, public, plain):
    full, seeded = bfv.encrypt(public, plain), bfv.encrypt_symmetric(secret, plain)
    return {'full': full, 'seeded': seeded, 'compressed': modswitch.compress(full, 32, 40),
            'compressed-seeded': modswitch.compress(seeded, 32, 40)}


@pytest.mark.parametrize('form, per_value', [('full', 16), ('seeded', 8),
                                             ('compressed', 9), ('compressed-seeded', 4)])
def test_round_trip_and_size(setup, form, per_value):
    params, secret, public, plain = setup
    ct = forms(secret, public, plain)[form]
    blob = serialize.dumps(ct)
    assert len(blob) <= per_value * plain.size + 200
    back = serialize.loads(blob, params)
    if isinstance(back, modswitch.CompressedCiphertext):
        back = modswitch.decompress(back)
    assert np.array_equal(bfv.decrypt(secret, back), plain)


def test_rejects_truncated_tampered_and_mismatched(setup):
    params, secret, public, plain = setup
    blob = serialize.dumps(modswitch.compress(bfv.encrypt(public, plain), 32, 40))
    with pytest.raises(serialize.SerializationError, match='truncated'):
        serialize.loads(blob[:-1], params)
    with pytest.raises(serialize.SerializationError, match='too short'):
        serialize.loads(blob[:10], params)
    tampered = bytearray(blob)
    tampered[200] ^= 1
    with pytest.raises(serialize.SerializationError, match='tampered'):
        serialize.loads(bytes(tampered), params)
    with pytest.raises(serialize.SerializationError, match='different parameters'):
        serialize.loads(blob, rp.preset('n2048', t=2**20))
    with pytest.raises(serialize.SerializationError, match='magic'):
        serialize.loads(b'X' + blob[1:], params)
    with pytest.raises(serialize.SerializationError, match='version'):
        serialize.loads(blob[:6] + bytes([9]) + blob[7:], params)


def test_receiver_recomputes_the_noise_instead_of_trusting_the_sender(setup):
    """Issue #17: the noise record is not sent; the receiver assumes a fresh encryption
    of |m| <= the public bound it expects, so a sender cannot claim a small noise. The
    same bytes loaded twice are one ancestor, so their sum is tracked as correlated."""
    params, secret, public, plain = setup
    ct = bfv.mul_scalar(bfv.encrypt(public, plain), 3)  # not fresh: 3x the noise
    blob = serialize.dumps(ct)
    back = serialize.loads(blob, params, plain=1000)
    fresh = bfv.fresh_noise(params, 1000)
    assert back.noise.variance == fresh.variance and back.noise.plain == 1000
    assert serialize.loads(blob, params).noise.plain == (params.t - 1) // 2  # default: worst
    twice = bfv.add(back, serialize.loads(blob, params, plain=1000))
    assert twice.noise.variance == pytest.approx(4 * fresh.variance)
    other = serialize.loads(serialize.dumps(bfv.encrypt(public, plain)), params, plain=1000)
    assert bfv.add(back, other).noise.variance == pytest.approx(2 * fresh.variance)
    compressed = serialize.loads(serialize.dumps(modswitch.compress(ct, 32, 40)), params, 1000)
    assert compressed.noise.variance > fresh.variance  # plus the rounding of the widths
