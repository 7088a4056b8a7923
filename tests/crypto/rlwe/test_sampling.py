"""Tests of the RLWE samplers (tfpriv.crypto.rlwe.sampling) and of the noise they put in
keys and ciphertexts: the privacy quantities of the scheme.

Tolerances (two-sided, 5 standard errors, p ~ 6e-7 per check; seeds are fixed):
  mean of N draws of variance v: se sqrt(v / N);
  variance estimate of a discrete Gaussian: fourth moment ~ 3 sigma^4, se sigma^2 sqrt(2 / N);
  ternary frequencies: chi-square, 2 degrees of freedom, upper 0.001 critical value 13.82.
The reference variance of D_{Z, sigma} is summed directly from its density, not from the
sampler's table.
"""

import numpy as np
import pytest

from tfpriv.crypto.rlwe import bfv, keys, sampling
from tfpriv.crypto.rlwe import params as rp
from tfpriv.rng import Prg, RandomSource

Z = 5.0
CHI2_2DF = 13.82


def _discrete_gaussian_variance(sigma: float) -> float:
    v = np.arange(-int(40 * sigma) - 1, int(40 * sigma) + 2, dtype=np.float64)
    weights = np.exp(-v**2 / (2 * sigma**2))
    return float((weights * v**2).sum() / weights.sum())


def _check_gaussian(samples: np.ndarray, sigma: float) -> None:
    n = samples.size
    variance = _discrete_gaussian_variance(sigma)
    assert abs(samples.mean()) <= Z * np.sqrt(variance / n)
    assert abs(samples.var() - variance) <= Z * variance * np.sqrt(2 / n)


@pytest.mark.parametrize('sigma', [3.2, 6.0])
def test_discrete_gaussian_mean_variance_and_tail(sigma):
    samples = sampling.gaussian(Prg(RandomSource(seed=1)), (200_000,), sigma)
    assert samples.dtype == np.int64
    _check_gaussian(samples, sigma)
    # P(|e| > 6 sigma) ~ 2e-9: none expected in 2e5 draws.
    assert np.count_nonzero(np.abs(samples) > 6 * sigma) == 0
    # P(|e| > 2 sigma) ~ 0.0455 (binomial se sqrt(p (1 - p) / n)): the shape, not just moments.
    v = np.arange(-int(40 * sigma), int(40 * sigma) + 1)
    weights = np.exp(-v**2 / (2 * sigma**2))
    tail = weights[np.abs(v) > 2 * sigma].sum() / weights.sum()
    frequency = np.mean(np.abs(samples) > 2 * sigma)
    assert abs(frequency - tail) <= Z * np.sqrt(tail * (1 - tail) / samples.size)


def test_gaussian_check_fails_for_a_too_narrow_sampler():
    """sigma = 0.3 where 3.2 is required must fail the variance check (it would break RLWE)."""
    narrow = sampling.gaussian(Prg(RandomSource(seed=2)), (200_000,), 0.3)
    with pytest.raises(AssertionError):
        _check_gaussian(narrow, 3.2)


def _ternary_chi_square(values: np.ndarray) -> float:
    counts = np.array([np.count_nonzero(values == v) for v in (-1, 0, 1)])
    assert counts.sum() == values.size, 'values outside {-1, 0, 1}'
    expected = values.size / 3
    return float(((counts - expected) ** 2 / expected).sum())


def test_ternary_is_balanced():
    values = sampling.ternary(Prg(RandomSource(seed=3)), (90_000,))
    assert _ternary_chi_square(values) < CHI2_2DF
    assert abs(values.mean()) <= Z * np.sqrt((2 / 3) / values.size)
    assert _ternary_chi_square(np.zeros(90_000, dtype=np.int64)) > CHI2_2DF  # all-zero fails


def test_secret_key_is_ternary_balanced():
    params = rp.preset('n4096')
    secret, _ = keys.keygen(params, RandomSource(seed=4))
    assert secret.s.shape == (params.n,)
    assert _ternary_chi_square(secret.s) < CHI2_2DF
    other, _ = keys.keygen(params, RandomSource(seed=5))
    assert not np.array_equal(secret.s, other.s)


def test_uniform_residues_uniform_and_reproducible_from_a_public_seed():
    params = rp.preset('n2048')
    seed = RandomSource(seed=6).bytes(Prg.SEED_BYTES)
    a = keys.uniform_poly(params, seed, 8)
    np.testing.assert_array_equal(a, keys.uniform_poly(params, seed, 8))
    assert not np.array_equal(a, keys.uniform_poly(params, bytes(32), 8))
    for row, p in enumerate(params.primes):
        values = a[row].astype(np.float64)
        assert values.min() >= 0 and values.max() < p
        assert abs(values.mean() - (p - 1) / 2) <= Z * p / np.sqrt(12 * values.size)


def _centred_phase(params, secret, ct) -> np.ndarray:
    """c0 + c1 s mod q, centred, for a single-prime q (so the residue is the value)."""
    phase = bfv.phase(secret, ct)[0]
    q = params.primes[0]
    return np.where(phase > q // 2, phase - q, phase).astype(np.float64)


def test_encryption_noise_has_the_specified_variance():
    """The error E = c0 + c1 s - round(q m / t) of a fresh encryption of m = 0 (single-prime
    preset): symmetric E = e ~ D_sigma; public-key E = e0 + e1 s - e u, whose variance given s
    is sigma^2 (1 + ||s||^2 + 2n/3) (u ternary, E[u_j^2] = 2/3). Both within the tracked bound."""
    params = rp.preset('n1024')
    rng = RandomSource(seed=7)
    secret, public = keys.keygen(params, rng)
    zeros = np.zeros((60, params.n), dtype=np.int64)
    symmetric = _centred_phase(params, secret, bfv.encrypt_symmetric(secret, zeros, rng))
    _check_gaussian(symmetric, params.sigma)
    ct = bfv.encrypt(public, zeros, rng)
    noise = _centred_phase(params, secret, ct)
    expected = params.sigma**2 * (1 + float(np.sum(secret.s**2)) + 2 * params.n / 3)
    # coefficients of one ciphertext share s and u, so allow 10 % (> 5 se of 60 x 1024 draws)
    assert abs(noise.var() / expected - 1) <= 0.10
    assert noise.var() <= ct.noise.variance  # the tracked (worst-case) variance is an upper bound


class _ScriptedBytes:
    """A stand-in Prg whose uint8 draws are given in advance (one list per call)."""

    def __init__(self, *calls):
        self._calls = list(calls)

    def uint8(self, size):
        values = np.array(self._calls.pop(0), dtype=np.uint8)
        assert values.size == size
        return values


def test_ternary_rejects_exactly_the_byte_255():
    """Bytes 0..254 are kept and reduced mod 3 (85 each per value: exactly uniform); 255 alone
    is redrawn, until it is not 255. Keeping 255 would give P(0) = 86/256, a bias too small
    for a frequency test of reasonable size, so this checks the rule on scripted bytes;
    the reference values are computed here by hand (b mod 3 - 1)."""
    prg = _ScriptedBytes([255, 0, 254, 255, 7, 128], [255, 255], [255, 4], [5])
    values = sampling.ternary(prg, (2, 3))
    assert values.dtype == np.int64
    # positions 0 and 3 redrawn: (255, 255), then (255, 4), then position 0 alone: 5
    np.testing.assert_array_equal(values, [[5 % 3 - 1, -1, 254 % 3 - 1],
                                           [4 % 3 - 1, 7 % 3 - 1, 128 % 3 - 1]])


def test_keygen_draws_from_the_given_source_and_names_a_bad_params():
    """A seeded source gives the same key twice (it is used, not the OS CSPRNG); the key is
    the source's Prg stream: key id first, then the ternary secret (reference: the sampler
    called on the same stream)."""
    params = rp.preset(rp.TOY_PRESET, insecure=True)
    first, _ = keys.keygen(params, RandomSource(seed=52))
    second, _ = keys.keygen(params, RandomSource(seed=52))
    np.testing.assert_array_equal(first.s, second.s)
    prg = Prg(RandomSource(seed=52))
    assert first.key_id == prg.uint8(keys.KEY_ID_BYTES).tobytes()
    np.testing.assert_array_equal(first.s, sampling.ternary(prg, (params.n,)))
    with pytest.raises(TypeError, match='^params must be a Params, got dict$'):
        keys.keygen({})


def test_public_key_comes_from_the_same_source_after_the_secret():
    """keygen's public key continues the source's Prg stream: after the key id and the secret,
    the seed of a (SEED_BYTES), then e. Reference: the stream replayed here, a expanded from
    that seed, b = -(a s + e) checked through b + a s = -e with e Gaussian-small; the key id
    is the secret's. Two keygens from one seed give the same public key."""
    params = rp.preset(rp.TOY_PRESET, insecure=True)
    secret, public = keys.keygen(params, RandomSource(seed=53))
    _, again = keys.keygen(params, RandomSource(seed=53))
    prg = Prg(RandomSource(seed=53))
    prg.uint8(keys.KEY_ID_BYTES)
    sampling.ternary(prg, (params.n,))
    seed = prg.uint8(Prg.SEED_BYTES).tobytes()
    assert public.seed == seed == again.seed
    assert public.key_id == secret.key_id != b''
    np.testing.assert_array_equal(public.a, keys.uniform_poly(params, seed, 1))
    np.testing.assert_array_equal(public.b, again.b)
    e = sampling.gaussian(prg, (1, params.n), params.sigma)
    ring = keys.ring_of(params)
    np.testing.assert_array_equal(public.b, ring.neg(ring.add(secret.operand.times(public.a),
                                                              ring.from_signed(e))))
