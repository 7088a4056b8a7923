"""Tests of tfpriv.rng: RandomSource (OS CSPRNG / seeded, insecure) and Prg (AES-256-CTR).

Every statistical check uses a fixed seed, so it is deterministic; the thresholds
are stated with the distribution they come from and are two-sided wherever a
too-regular output would also be wrong.
"""

import logging

import numpy as np
import pytest

from tfpriv import rng
from tfpriv.rng import Prg, RandomSource, as_prg

# chi-square critical values at alpha = 0.001 (upper) and 0.001 (lower tail), from
# scipy.stats.chi2.ppf: df 4 -> (0.0908, 18.47), df 6 -> (0.381, 22.46), df 255 -> (190.9, 330.5)
CHI2 = {4: (0.0908, 18.47), 6: (0.381, 22.46), 255: (190.9, 330.5)}
Z = 5.0  # moment checks: |estimate - truth| <= 5 standard errors (two-sided, p ~ 6e-7)


def _chi_square(values: np.ndarray, cells: int) -> float:
    counts = np.bincount(values.reshape(-1), minlength=cells)
    assert counts.size == cells
    expected = values.size / cells
    return float(((counts - expected) ** 2 / expected).sum())


def _check_uniform(values: np.ndarray, cells: int) -> None:
    low, high = CHI2[cells - 1]
    statistic = _chi_square(values, cells)
    assert low < statistic < high, f'chi-square {statistic:.2f} outside ({low}, {high})'


def test_random_source_uniform_mod_is_uniform_chi_square():
    _check_uniform(RandomSource(seed=1).uniform_mod(7, 70_000), 7)
    _check_uniform(np.frombuffer(RandomSource(seed=2).bytes(256_000), dtype=np.uint8), 256)


def test_chi_square_check_rejects_a_biased_or_too_regular_source():
    """The check can fail: plain `% 5` of 3-bit words is biased, and a counter is too regular."""
    words = np.frombuffer(RandomSource(seed=3).bytes(50_000), dtype=np.uint8) & 7
    assert _chi_square(words % 5, 5) > CHI2[4][1]
    assert _chi_square(np.arange(50_000) % 5, 5) < CHI2[4][0]


@pytest.mark.parametrize('scale', [0.5, 2.0])
def test_normal_moments_two_sided(scale):
    """N(0, s^2): mean 0 (se s / sqrt(n)), variance s^2 (se s^2 sqrt(2 / n)),
    E|X| = s sqrt(2 / pi) (se s sqrt((1 - 2 / pi) / n))."""
    n = 200_000
    x = RandomSource(seed=4).normal(n, scale=scale)
    assert abs(x.mean()) <= Z * scale / np.sqrt(n)
    assert abs(x.var() - scale**2) <= Z * scale**2 * np.sqrt(2 / n)
    assert abs(np.abs(x).mean() - scale * np.sqrt(2 / np.pi)) <= \
        Z * scale * np.sqrt((1 - 2 / np.pi) / n)


@pytest.mark.parametrize('scale', [0.5, 1.5])
def test_laplace_moments_two_sided(scale):
    """Laplace(0, b): mean 0 (se b sqrt(2 / n)), variance 2 b^2 (fourth moment 24 b^4, so
    se b^2 sqrt(20 / n)), E|X| = b (se b / sqrt(n)): the last one tells it from a Gaussian
    of the same variance (E|X| = 1.128 b)."""
    n = 200_000
    x = RandomSource(seed=5).laplace(n, scale=scale)
    assert abs(x.mean()) <= Z * scale * np.sqrt(2 / n)
    assert abs(x.var() - 2 * scale**2) <= Z * scale**2 * np.sqrt(20 / n)
    assert abs(np.abs(x).mean() - scale) <= Z * scale / np.sqrt(n)


def test_seeded_source_is_reproducible_and_labelled_insecure(caplog, monkeypatch):
    monkeypatch.setattr(rng, '_warned_causes', set())
    with caplog.at_level(logging.WARNING):
        first = RandomSource(seed=6, cause='noise (--flag-a)')
        RandomSource(seed=8, cause='noise (--flag-a)')
    assert caplog.text.count('INSECURE') == 1  # once per cause, not once per object
    assert 'INSECURE for noise (--flag-a)' in caplog.text
    with caplog.at_level(logging.WARNING):
        RandomSource(seed=8, cause='shares (--flag-b)')
    assert caplog.text.count('INSECURE') == 2 and '(--flag-b)' in caplog.text
    assert first.secure is False and RandomSource().secure is True
    assert first.bytes(32) == RandomSource(seed=6).bytes(32)
    assert RandomSource(seed=6).bytes(32) != RandomSource(seed=7).bytes(32)
    assert RandomSource().bytes(32) != RandomSource().bytes(32)
    np.testing.assert_array_equal(RandomSource(seed=6).normal(5), RandomSource(seed=6).normal(5))
    with pytest.raises(TypeError, match='seed must be an int'):
        RandomSource(seed=1.5)


def test_prg_reproducible_from_a_seeded_source_and_fresh_otherwise():
    np.testing.assert_array_equal(Prg(RandomSource(seed=8)).uint64(100),
                                  Prg(RandomSource(seed=8)).uint64(100))
    assert not np.array_equal(Prg(RandomSource(seed=8)).uint64(100),
                              Prg(RandomSource(seed=9)).uint64(100))
    assert not np.array_equal(Prg().uint64(100), Prg().uint64(100))
    seed = bytes(range(32))
    np.testing.assert_array_equal(Prg.from_seed(seed).uint64(10), Prg.from_seed(seed).uint64(10))
    assert not np.array_equal(Prg.from_seed(seed).uint64(10),
                              Prg.from_seed(bytes(32)).uint64(10))
    with pytest.raises(ValueError, match='seed must be 32 bytes'):
        Prg.from_seed(b'short')
    prg = Prg(RandomSource(seed=8))
    assert as_prg(prg) is prg and isinstance(as_prg(None), Prg)


def test_prg_output_is_uniform_chi_square():
    prg = Prg(RandomSource(seed=10))
    _check_uniform(prg.uint8(256_000), 256)
    _check_uniform(prg.uniform_mod(7, 70_000), 7)
    _check_uniform(prg.uniform_mod(5, 50_000), 5)  # 3-bit words: needs the rejection
    bits = prg.bits(100_000)
    assert abs(bits.mean() - 0.5) <= Z * 0.5 / np.sqrt(bits.size)


@pytest.mark.parametrize('modulus', [2, 3, 2**31 - 1, 2**32, 2**32 + 15, 2**61 - 1, 2**63])
def test_prg_uniform_mod_range_and_mean(modulus):
    """Values in [0, m); mean (m - 1) / 2 within 5 standard errors (sd of U[0, m): m / sqrt(12))."""
    n = 20_000
    values = Prg(RandomSource(seed=11)).uniform_mod(modulus, n)
    assert values.dtype == np.int64 and values.min() >= 0 and values.max() <= modulus - 1
    mean = values.astype(np.float64).mean()
    assert abs(mean - (modulus - 1) / 2) <= Z * modulus / np.sqrt(12 * n)
    if modulus <= 3:
        assert set(values.tolist()) == set(range(modulus))
    with pytest.raises(ValueError, match='modulus must be'):
        Prg().uniform_mod(1, 3)


def test_prg_draw_dtypes():
    prg = Prg(RandomSource(seed=12))
    assert prg.draw((3, 4), np.bool_).dtype == np.bool_
    assert prg.draw(5, np.uint8).shape == (5,)
    assert prg.draw((2,), np.uint64).dtype == np.uint64
    with pytest.raises(TypeError, match='cannot draw'):
        prg.draw(3, np.float32)
