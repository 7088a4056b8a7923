"""Encryption round trips, homomorphic operations, the noise and overflow guards."""

import dataclasses

import numpy as np
import pytest

from tfpriv.crypto.bfv import scheme
from tfpriv.crypto.bfv.encoding import Encoder
from tfpriv.crypto.bfv.ntt import negacyclic_schoolbook
from tfpriv.crypto.bfv.params import PRESETS, preset
from tfpriv.crypto.bfv.secagg import max_clients
from tfpriv.rng import RandomSource

TOY = preset('toy', insecure=True)


def _keys(params, seed=0):
    rng = RandomSource(seed)
    return (*scheme.keygen(params, rng), rng)


@pytest.mark.parametrize('params', [TOY, *PRESETS.values()], ids=['toy', *PRESETS])
def test_round_trip_every_preset(params):
    sk, pk, rng = _keys(params)
    m = rng.uniform_mod(params.t, (2, params.n))
    for ct in (scheme.encrypt(pk, m, rng), scheme.encrypt_symmetric(sk, m, rng)):
        assert np.array_equal(scheme.decrypt(sk, ct), m)
        assert np.array_equal(scheme.decrypt(sk, scheme.compress(ct)), m)
    values = rng.normal((params.n + 5,), 3.0)
    encoder = Encoder(params, 8, 30.0)
    got = encoder.decode(scheme.decrypt(sk, scheme.encrypt(pk, encoder.encode(values), rng)),
                         values.size)
    assert np.max(np.abs(got - values)) <= 2.0**-9


def test_homomorphic_operations():
    sk, pk, rng = _keys(TOY, 1)
    a, b = (rng.uniform_mod(TOY.t, (3, TOY.n)) for _ in range(2))
    ca, cb = scheme.encrypt(pk, a, rng), scheme.compress(scheme.encrypt_symmetric(sk, b, rng))
    t = TOY.t
    assert np.array_equal(scheme.decrypt(sk, scheme.add(ca, cb)), (a + b) % t)
    assert np.array_equal(scheme.decrypt(sk, scheme.sub(ca, cb)), (a - b) % t)
    assert np.array_equal(scheme.decrypt(sk, scheme.negate(ca)), -a % t)
    assert np.array_equal(scheme.decrypt(sk, scheme.mul_scalar(ca, -9)), -9 * a % t)
    assert np.array_equal(scheme.decrypt(sk, scheme.add_plain(cb, a)), (a + b) % t)
    poly = np.random.default_rng(0).integers(-40, 41, TOY.n)
    product = scheme.mul_plain(ca, poly)
    want = [[v % t for v in negacyclic_schoolbook(row, poly)] for row in a]
    assert np.array_equal(scheme.decrypt(sk, product), np.array(want))
    assert product.noise == ca.noise * np.abs(poly).sum()
    with pytest.raises(ValueError, match='2\\^12'):
        scheme.mul_plain(ca, np.full(TOY.n, 5000))


def _true_noise(sk, ct, m):
    params = ct.params
    x = scheme.decrypt_phase(ct, scheme._times_s(sk, ct.c1)).astype(object)
    v = (x - m.astype(object) * 2**params.delta_bits) % params.q
    return max(abs(int(e) - params.q if e >= params.q // 2 else int(e)) for e in v.ravel())


@pytest.mark.parametrize('params', [TOY, PRESETS['bfv-4096']], ids=['toy', 'bfv-4096'])
def test_sum_of_max_clients_is_exact_and_bound_holds(params):
    sk, pk, rng = _keys(params, 2)
    k = max_clients(params)
    plains = rng.uniform_mod(params.t, (k, params.n))
    batch = scheme.compress(scheme.encrypt(pk, plains, rng))  # k clients in one call
    total = None
    for i in range(k):
        ct = dataclasses.replace(batch, c0=batch.c0[i:i + 1], c1=batch.c1[i:i + 1])
        total = ct if total is None else scheme.add(total, ct)
    expected = plains.sum(axis=0, keepdims=True) % params.t
    assert np.array_equal(scheme.decrypt(sk, total), expected)
    assert _true_noise(sk, total, expected) <= total.noise
    with pytest.raises(scheme.NoiseBudgetError, match='Delta/2'):
        scheme.decrypt(sk, scheme.add(total, ct))


def test_noise_guard_fires_before_a_wrong_decryption():
    sk, pk, rng = _keys(TOY, 3)
    m = np.zeros((1, TOY.n), dtype=np.int64)
    ct = scheme.encrypt(pk, m, rng)
    noise = _true_noise(sk, ct, m)
    # The smallest scalar that makes the *actual* noise reach Delta / 2:
    scalar = -(-2**(TOY.delta_bits - 1) // noise)
    wrong = scheme.mul_scalar(ct, scalar)
    assert not np.array_equal(scheme.decrypt(sk, wrong, check=False), m)
    with pytest.raises(scheme.NoiseBudgetError):
        scheme.decrypt(sk, wrong)
    # The guard already fires on a smaller, still-correct scalar (it is a bound).
    safe = int(2**(TOY.delta_bits - 1) // ct.noise)
    assert np.array_equal(scheme.decrypt(sk, scheme.mul_scalar(ct, safe)), m)
    with pytest.raises(scheme.NoiseBudgetError):
        scheme.decrypt(sk, scheme.mul_scalar(ct, safe + 1))
    assert safe + 1 <= scalar


def test_plaintext_overflow_guard():
    sk, pk, rng = _keys(TOY, 4)
    encoder = Encoder(TOY, 7, 100.0)
    values = np.full(TOY.n, 100.0)
    ct = scheme.encrypt(pk, encoder.encode(values), rng, encoder.units)
    total = scheme.add(ct, ct)
    assert np.allclose(encoder.decode(scheme.decrypt(sk, total), TOY.n), 200.0)
    tripled = scheme.add(total, ct)  # 300 * 2^7 > 2^15: wraps mod t
    assert not np.allclose(encoder.decode(scheme.decrypt(sk, tripled, check=False), TOY.n), 300)
    with pytest.raises(scheme.PlaintextOverflowError, match='wrapped'):
        scheme.decrypt(sk, tripled)
    with pytest.raises(scheme.PlaintextOverflowError):
        scheme.decrypt(sk, scheme.mul_scalar(ct, 3))


def test_bad_inputs():
    sk, pk, rng = _keys(TOY, 5)
    other_sk, _, _ = _keys(TOY, 6)
    encoder = Encoder(TOY, 8, 10.0)
    with pytest.raises(ValueError, match='NaN'):
        encoder.encode(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match='bound'):
        encoder.encode(np.array([11.0]))
    with pytest.raises(ValueError, match='shape'):
        scheme.encrypt(pk, np.zeros((2, TOY.n + 1), dtype=np.int64), rng)
    with pytest.raises(ValueError, match=r'\[0, t'):
        scheme.encrypt(pk, np.full((1, TOY.n), TOY.t), rng)
    with pytest.raises(TypeError, match='integers'):
        scheme.encrypt(pk, np.zeros((1, TOY.n)), rng)
    ct = scheme.encrypt(pk, encoder.encode(np.ones(3)), rng)
    with pytest.raises(scheme.KeyMismatchError, match='key'):
        scheme.decrypt(other_sk, ct)
    other = dataclasses.replace(ct, key_id=other_sk.key_id)
    with pytest.raises(scheme.KeyMismatchError):
        scheme.add(ct, other)
    with pytest.raises(TypeError, match='int'):
        scheme.mul_scalar(ct, 1.5)
