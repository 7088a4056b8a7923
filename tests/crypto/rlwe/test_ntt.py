"""NTT against a schoolbook negacyclic product; parameter security checks."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.crypto.rlwe import params as rp
from tfpriv.crypto.rlwe.ntt import Ntt


def schoolbook(a, b, p):
    n = len(a)
    full = np.zeros(2 * n, dtype=object)
    for i in range(n):
        full[i:i + n] += int(a[i]) * np.array(b, dtype=object)
    return np.array([(x - y) % p for x, y in zip(full[:n], full[n:])], dtype=np.int64)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([4, 16, 64]), st.integers(0, 2**32 - 1))
def test_ntt_product_matches_schoolbook(n, seed):
    primes = rp.ntt_primes(n, 2)
    ntt, rng = Ntt(n, primes), np.random.default_rng(seed)
    a = np.stack([rng.integers(0, p, (3, n)) for p in primes])
    b = np.stack([rng.integers(0, p, (3, n)) for p in primes])
    p = np.array(primes, dtype=np.uint64).reshape(-1, 1, 1)
    product = ntt.inverse(ntt.forward(a) * ntt.forward(b) % p)
    for row, prime in enumerate(primes):
        for k in range(3):
            assert np.array_equal(product[row, k], schoolbook(a[row, k], b[row, k], prime))
    assert np.array_equal(ntt.inverse(ntt.forward(a)), a)


def test_ntt_lazy_output_is_a_valid_product_input():
    n, primes = 2048, rp.ntt_primes(2048, 2)
    ntt, rng = Ntt(n, primes), np.random.default_rng(1)
    a = np.stack([rng.integers(0, p, (2, n)) for p in primes])
    lazy, reduced = ntt.forward(a, reduce=False), ntt.forward(a)
    p = ntt.p
    assert lazy.max() < 2**32 and np.array_equal(lazy % p, reduced)


def test_ntt_rejects_bad_shapes():
    ntt = Ntt(16, rp.ntt_primes(16, 2))
    with pytest.raises(ValueError, match='shape'):
        ntt.forward(np.zeros((1, 2, 16), dtype=np.int64))


@pytest.mark.parametrize('name', sorted(rp.PRESETS))
def test_presets_meet_the_he_standard(name):
    params = rp.preset(name)
    assert params.log2_q <= rp.HE_STANDARD_128[params.n]
    assert all(p % (2 * params.n) == 1 for p in params.primes)


def test_insecure_parameters_are_refused():
    with pytest.raises(rp.InsecureParametersError, match='exceeds 109'):
        rp.Params(4096, rp.ntt_primes(4096, 5), 2**20)
    with pytest.raises(rp.InsecureParametersError, match='not in the HE Standard'):
        rp.Params(512, rp.ntt_primes(512, 1), 2**10)
    with pytest.raises(rp.InsecureParametersError, match='sigma'):
        rp.Params(2048, rp.ntt_primes(2048, 2), 2**10, sigma=1.0)
    with pytest.raises(rp.InsecureParametersError, match='insecure=True'):
        rp.preset('toy')
    assert rp.preset('toy', insecure=True).insecure


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match='power of two'):
        rp.Params(1000, (12289,), 16)
    with pytest.raises(ValueError, match='coprime'):
        rp.Params(2048, rp.ntt_primes(2048, 2), rp.ntt_primes(2048, 1)[0] * 2 // 2)
    with pytest.raises(ValueError, match='unknown preset'):
        rp.preset('n999')
