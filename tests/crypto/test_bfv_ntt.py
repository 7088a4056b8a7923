"""NTT and FFT products against the schoolbook negacyclic product; parameter rules."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.crypto.bfv.fft import FftMultiplier
from tfpriv.crypto.bfv.ntt import RnsNtt, negacyclic_schoolbook
from tfpriv.crypto.bfv.params import (HE_STANDARD_128, PRESETS, BfvParams,
                                      InsecureParametersError, ntt_primes, preset)


@settings(max_examples=20, deadline=None)
@given(log_n=st.integers(2, 6), bits=st.integers(8, 60), seed=st.integers(0, 2**32 - 1))
def test_exact_product_matches_schoolbook(log_n, bits, seed):
    n = 2**log_n
    ctx = RnsNtt(n, ntt_primes(n, bits + log_n + 1))  # as threshold decryption uses it
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 2**bits, (3, n), dtype=np.int64).astype(np.uint64)
    small = rng.integers(-1, 2, n)
    product = ctx.forward(ctx.centred_residues(big, bits)) * ctx.forward(ctx.residues(small[None]))
    got = ctx.lift(ctx.inverse(product % ctx.p), bits)
    fft = FftMultiplier(max(n, 4))
    assert np.array_equal(fft.multiply(fft.limbs(big, bits), fft.transform(small * 1.0), bits), got)
    for row, out in zip(big, got):
        centred = [int(v) - (2**bits if int(v) >= 2**(bits - 1) else 0) for v in row]
        want = [v % 2**bits for v in negacyclic_schoolbook(centred, small)]
        assert [int(v) for v in out] == want


def test_ntt_pointwise_product_is_negacyclic_mod_p():
    n, rng = 64, np.random.default_rng(1)
    ctx = RnsNtt(n, ntt_primes(n, 40))
    a, b = (rng.integers(0, ctx.primes[0], (1, 1, n)) for _ in range(2))
    a, b = np.repeat(a, len(ctx.primes), 0) % ctx.p, np.repeat(b, len(ctx.primes), 0) % ctx.p
    got = ctx.inverse(ctx.forward(a) * ctx.forward(b) % ctx.p)
    for i, p in enumerate(ctx.primes):
        want = [v % p for v in negacyclic_schoolbook(a[i, 0], b[i, 0])]
        assert [int(v) for v in got[i, 0]] == want
    assert np.array_equal(ctx.inverse(ctx.forward(a)), a)


def test_presets_are_128_bit():
    for params in PRESETS.values():
        assert params.log_q <= HE_STANDARD_128[params.n]
        assert params.security_bits == 128
        assert np.prod([float(p) for p in params.primes]) > 2.0 ** (params.log_q + 1) * params.n


def test_insecure_parameters_refused():
    with pytest.raises(InsecureParametersError, match='128-bit'):
        BfvParams(n=1024, log_q=40, plain_bits=16, c0_bits=30)
    with pytest.raises(InsecureParametersError, match='insecure=True'):
        preset('toy')
    assert preset('toy', insecure=True).security_bits == 0
    with pytest.raises(ValueError, match='power of two'):
        BfvParams(n=1000, log_q=40, plain_bits=16, c0_bits=30)
    with pytest.raises(ValueError, match='unknown preset'):
        preset('bfv-1024')
