"""BFV: round trips on every preset, homomorphic sums, the noise guard, encoding."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.crypto.rlwe import bfv, keys, modswitch
from tfpriv.crypto.rlwe import params as rp
from tfpriv.crypto.rlwe.encoding import Encoder
from tfpriv.rng import RandomSource


@pytest.fixture(scope='module')
def small():
    params = rp.preset('n1024')
    return (params,) + keys.keygen(params, RandomSource(seed=1))


@pytest.mark.parametrize('name', sorted(rp.PRESETS) + ['toy'])
def test_round_trip_every_preset(name):
    params = rp.preset(name, insecure=name == 'toy')
    rng = RandomSource(seed=2)
    secret, public = keys.keygen(params, rng)
    precision = params.t.bit_length() - 3
    encoder = Encoder(params, precision)
    values = np.random.default_rng(3).uniform(-1, 1, 2 * params.n - 5).astype(np.float32)
    plain = encoder.encode(values)
    for ct in (bfv.encrypt(public, plain, rng), bfv.encrypt_symmetric(secret, plain, rng)):
        out = encoder.decode(bfv.decrypt(secret, ct), values.size)
        assert np.max(np.abs(out - values)) <= 2.0**-(precision + 1) + 1e-7


@settings(max_examples=3, deadline=None)
@given(st.integers(-40, 40), st.integers(0, 2**31))
def test_homomorphic_operations(scalar, seed):
    params = rp.preset('n1024')
    secret, public = keys.keygen(params, RandomSource(seed=seed))
    rng = np.random.default_rng(seed)
    a, b = rng.integers(-3, 4, (2, 2, params.n))
    poly = np.zeros(params.n, dtype=np.int64)
    poly[:3] = [1, -2, 1]
    ca, cb = bfv.encrypt(public, a), bfv.encrypt(public, b)
    assert np.array_equal(bfv.decrypt(secret, bfv.add(ca, cb)), a + b)
    assert np.array_equal(bfv.decrypt(secret, bfv.sub(ca, cb)), a - b)
    assert np.array_equal(bfv.decrypt(secret, bfv.negate(ca)), -a)
    assert np.array_equal(bfv.decrypt(secret, bfv.mul_scalar(ca, scalar)), scalar * a)
    assert np.array_equal(bfv.decrypt(secret, bfv.add_plain(ca, b)), a + b)
    expected = a - 2 * np.roll(a, 1, axis=1) + np.roll(a, 2, axis=1)
    expected[:, :1] += 4 * a[:, -1:]  # x^n = -1: wrapped terms change sign
    expected[:, :2] -= 2 * a[:, -2:]
    assert np.array_equal(bfv.decrypt(secret, bfv.mul_plain(ca, poly)), expected)


def times(noise, k):
    return bfv.Noise(noise.variance * k, noise.rounding * k, noise.plain * k)


def max_terms(params, fresh):
    """The documented maximum: the largest k such that a sum of k fresh ciphertexts decrypts."""
    def ok(k):
        try:
            times(fresh, k).check(params)
            return True
        except ArithmeticError:
            return False
    low, high = 1, 2
    while ok(high):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if ok(middle) else (low, middle)
    return low


def test_sum_up_to_the_maximum_number_of_clients(small):
    params, secret, public = small
    encoder = Encoder(params, 0)
    k = max_terms(params, bfv.fresh_noise(params, 1))
    assert k == (params.t - 1) // 2  # n1024: the plaintext modulus is the limit
    values = np.random.default_rng(4).integers(-1, 2, (k, params.n))
    batch = bfv.encrypt(public, values)  # k independent ciphertexts (fresh u, e per row)

    def row(i):  # its own ancestor: the rows' errors are independent
        noise = dataclasses.replace(batch.noise, ancestors=frozenset({('row', i)}))
        return bfv.Ciphertext(params, batch.c0[:, i:i + 1], noise, batch.c1[:, i:i + 1],
                              key_id=batch.key_id)
    total = row(0)
    for i in range(1, k):
        term = row(i)
        total = bfv.add(total, term)
    out = encoder.decode(bfv.decrypt(secret, total), params.n)
    assert np.array_equal(out, values.sum(axis=0))
    with pytest.raises(bfv.PlaintextOverflowError):
        bfv.decrypt(secret, bfv.add(total, term))


def test_compressed_sum_of_documented_clients():
    params = rp.preset('n2048')
    secret, public = keys.keygen(params, RandomSource(seed=5))
    encoder, clients = Encoder(params, 16), 10
    bits = modswitch.choose_widths(params, bfv.fresh_noise(params, 2**17), clients)
    assert bits == (32, 40)
    rng = np.random.default_rng(5)
    updates = rng.uniform(-1, 1, (clients, 3000))
    total = None
    for update in updates:
        ct = modswitch.compress(bfv.encrypt(public, encoder.encode(update)), *bits)
        total = ct if total is None else total + ct
    out = encoder.decode(bfv.decrypt(secret, modswitch.decompress(total)), 3000)
    assert np.max(np.abs(out - updates.sum(axis=0))) <= clients * 2.0**-17


def test_noise_guard_fires_before_a_wrong_decryption(small):
    params, secret, public = small
    zero = np.zeros((1, params.n), dtype=np.int64)
    big = bfv.mul_scalar(bfv.encrypt(public, zero), 2**14)
    with pytest.raises(bfv.NoiseBudgetError, match='decryption limit'):
        bfv.decrypt(secret, big)
    # The guard was right: without it the result is wrong.
    assert np.any(bfv.decode_phase(params, bfv.phase(secret, big)) != 0)


def test_plaintext_overflow_guard(small):
    params, secret, public = small
    top = np.full((1, params.n), (params.t - 1) // 2, dtype=np.int64)
    ct = bfv.encrypt(public, top)
    doubled = bfv.add(ct, ct)
    with pytest.raises(bfv.PlaintextOverflowError, match='wrap'):
        bfv.decrypt(secret, doubled)
    assert np.all(bfv.decode_phase(params, bfv.phase(secret, doubled)) != 2 * top)


def test_bad_inputs(small):
    params, secret, public = small
    encoder = Encoder(params, 4)
    with pytest.raises(ValueError, match='NaN'):
        encoder.encode(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match='flat vector'):
        encoder.encode(np.zeros((2, 2)))
    with pytest.raises(ValueError, match='does not fit'):
        encoder.encode(np.array([1e6]))
    with pytest.raises(ValueError, match='shape'):
        bfv.encrypt(public, np.zeros((1, 5), dtype=np.int64))
    with pytest.raises(TypeError, match='integers'):
        bfv.encrypt(public, np.zeros((1, params.n)))
    ct = bfv.encrypt(public, np.zeros((1, params.n), dtype=np.int64))
    other, _ = keys.keygen(params)
    with pytest.raises(ValueError, match='wrong key'):
        bfv.decrypt(other, ct)
    wrong_params, _ = keys.keygen(rp.preset('n2048'))
    with pytest.raises(ValueError, match='parameters'):
        bfv.decrypt(wrong_params, ct)
    with pytest.raises(TypeError, match='int'):
        bfv.mul_scalar(ct, 0.5)


def test_noise_guard_is_sound_for_correlated_operands(small):
    """Issue #17: add(ct, ct) doubles the error; adding variances (sqrt growth) let 20
    doublings (2^20 E) pass the guard and decrypt wrongly. Now it raises or is right."""
    params, secret, public = small
    zero = np.zeros((1, params.n), dtype=np.int64)
    ct, refused = bfv.encrypt(public, zero), 0
    for _ in range(20):
        ct = bfv.add(ct, ct)
        try:
            assert np.array_equal(bfv.decrypt(secret, ct), zero)
        except bfv.NoiseBudgetError:
            refused += 1
    assert refused > 0
    assert np.any(bfv.decode_phase(params, bfv.phase(secret, ct)) != 0)  # the guard is needed
    independent = bfv.add(bfv.encrypt(public, zero), bfv.encrypt(public, zero))
    fresh = bfv.fresh_noise(params, 0)
    assert independent.noise.variance == pytest.approx(2 * fresh.variance)  # sqrt growth kept
