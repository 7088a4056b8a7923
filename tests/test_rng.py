"""Tests of tfpriv.rng: RandomSource (OS CSPRNG / seeded, insecure) and Prg (AES-256-CTR).

Every statistical check uses a fixed seed, so it is deterministic; the thresholds
are stated with the distribution they come from and are two-sided wherever a
too-regular output would also be wrong.
"""

import logging
from fractions import Fraction

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


# --- Exact checks against independent references (written for the mutation run, issue #20) ---

def _aes_ctr_keystream(key: bytes, nbytes: int, nonce: bytes = bytes(16)) -> bytes:
    """Reference: AES-CTR (128 or 256 by the key length) encrypting zeros, from `cryptography`."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return encryptor.update(bytes(nbytes)) + encryptor.finalize()


class _ScriptedSource(RandomSource):
    """A RandomSource whose 64-bit words are given in advance (one list per uint64 call)."""

    def __init__(self, *calls):
        super().__init__()
        self._calls = list(calls)

    def uint64(self, shape):
        words = np.array(self._calls.pop(0), dtype=np.uint64)
        assert words.size == rng._size(shape)
        return words.reshape(shape)


def test_prg_is_the_aes_ctr_keystream_across_chunks():
    """Prg.from_seed is AES-256-CTR(key=seed, nonce=0), also past the 1 MiB chunk boundary,
    and consecutive draws continue the stream without skipping or repeating bytes."""
    seed = bytes(range(32))
    sizes = (rng._CHUNK + 4099, 13, 16, 24)
    reference = np.frombuffer(_aes_ctr_keystream(seed, sum(sizes) + 7), dtype=np.uint8)
    prg = Prg.from_seed(seed)
    got = [prg.uint8(sizes[0]), prg.bits(8 * sizes[1]), prg.uint8(sizes[2]),
           prg.uint64(sizes[3] // 8)]
    np.testing.assert_array_equal(got[0], reference[:sizes[0]])
    start = sizes[0]
    np.testing.assert_array_equal(
        got[1], np.unpackbits(reference[start:start + sizes[1]]).astype(bool))
    tail = Prg.from_seed(seed)
    tail.uint8(sizes[0])
    np.testing.assert_array_equal(  # a bit count that is not a multiple of 8
        tail.bits(8 * sizes[1] - 3),
        np.unpackbits(reference[start:start + sizes[1]])[:8 * sizes[1] - 3].astype(bool))
    start += sizes[1]
    np.testing.assert_array_equal(got[2], reference[start:start + sizes[2]])
    start += sizes[2]
    np.testing.assert_array_equal(got[3], reference[start:start + sizes[3]].view('<u8'))


@pytest.mark.parametrize('shape', [(3, 4), (2, 1, 5)])
def test_every_draw_has_the_requested_shape(shape):
    source, prg = RandomSource(seed=13), Prg(RandomSource(seed=13))
    for values in (source.uint64(shape), source.uniform_mod(7, shape), source.uniform01(shape),
                   source.normal(shape), source.laplace(shape), prg.uint8(shape),
                   prg.uint64(shape), prg.bits(shape), prg.uniform_mod(7, shape)):
        assert values.shape == shape


def test_random_source_uniform_mod_rejects_exactly_the_words_above_the_limit():
    """For m = 3 the largest multiple of 3 below 2^64 is 2^64 - 1, so the limit is 2^64 - 2
    (kept) and the word 2^64 - 1 is redrawn: the reference values come from Python ints."""
    limit = (2**64 // 3) * 3 - 1
    top = 2**64 - 1
    # positions 1 and 3 redrawn: (top, limit) -> position 3 keeps limit; then position 1: 7
    source = _ScriptedSource([limit, top, 10, top], [top, limit], [7])
    np.testing.assert_array_equal(source.uniform_mod(3, 4),
                                  [limit % 3, 7 % 3, 10 % 3, limit % 3])
    assert RandomSource(seed=1).uniform_mod(2**63, 4).max() < 2**63
    assert set(RandomSource(seed=1).uniform_mod(2, 64).tolist()) == {0, 1}
    for modulus in (1, 2**63 + 1):
        with pytest.raises(ValueError, match=r'modulus must be in \[2, 2\^63\]'):
            RandomSource(seed=1).uniform_mod(modulus, 3)


def test_uniform01_stays_inside_the_open_interval_at_both_extreme_words():
    """Words 0 and 2^64 - 1 map to 1 / 2^53 and 1 - 1 / 2^53, both exact in float64: never 0
    (log u finite) nor 1 (with 53 bits the top word rounded to 1.0 and log1p(-2|u - 1/2|)
    of the Laplace sampler was -inf)."""
    values = _ScriptedSource([0, 2**64 - 1]).uniform01(2)
    assert values.tolist() == [Fraction(1, 2**53), 1 - Fraction(1, 2**53)]
    assert 0 < values.min() and values.max() < 1 and np.isfinite(
        _ScriptedSource([0, 2**64 - 1]).laplace(2)).all()


def test_prg_uniform01_is_the_top_52_bits_of_each_keystream_word_offset_by_half():
    """u = (floor(w / 2^12) + 1/2) / 2^52 for each 64-bit keystream word w, by Python
    fractions (exact in float64); words from a twin Prg."""
    shape = (3, 50)
    got = Prg(RandomSource(seed=9)).uniform01(shape)
    words = Prg(RandomSource(seed=9)).uint64(shape)
    want = [[Fraction(2 * (int(w) >> 12) + 1, 2**53) for w in row] for row in words]
    assert got.shape == shape and got.dtype == np.float64
    assert got.tolist() == want
    assert 0 < got.min() and got.max() < 1


def test_normal_default_scale_is_one_and_box_muller_pairs_are_uncorrelated():
    """Default N(0, 1): variance 1 within 5 se (sqrt(2 / n)). Box-Muller's two halves come
    from the same (radius, angle) pairs and must be independent: their correlation is 0
    within 5 / sqrt(n / 2) (a wrong angle, e.g. cos(3 pi u), gives E[z z'] = -8 / (5 pi))."""
    n = 200_000
    x = RandomSource(seed=14).normal(n)
    assert abs(x.var() - 1.0) <= Z * np.sqrt(2 / n)
    assert abs(np.corrcoef(x[:n // 2], x[n // 2:])[0, 1]) <= Z / np.sqrt(n / 2)


def test_laplace_default_scale_is_one():
    """Default Laplace(0, 1): E|X| = 1 within 5 se (1 / sqrt(n))."""
    n = 200_000
    assert abs(np.abs(RandomSource(seed=15).laplace(n)).mean() - 1.0) <= Z / np.sqrt(n)


def test_insecure_warning_names_the_seed_and_says_what_not_to_use_it_for(caplog, monkeypatch):
    """The whole warning, with the default cause: it is the only place a user learns that a
    seeded run's noise, shares and keys are public."""
    monkeypatch.setattr(rng, '_warned_causes', set())
    with caplog.at_level(logging.WARNING):
        RandomSource(seed=16)
    assert [r.getMessage() for r in caplog.records] == [
        'RandomSource(seed=16) is INSECURE for a seeded source: every draw is reproducible '
        'from the seed (fine for tests and benchmarks, never for noise, shares or keys that '
        'must stay secret). Reported once per cause.']


def test_unit_floats_takes_any_integer_words():
    """Python ints below 2^63 (NumPy reads them as int64) are words too: (2 floor(w / 2^12)
    + 1) / 2^53 by Python fractions."""
    words = [0, 4095, 4096, 2**63 - 1]
    want = [Fraction(2 * (w >> 12) + 1, 2**53) for w in words]
    assert rng.unit_floats(words).tolist() == want
    assert rng.unit_floats(np.array(words, dtype=np.uint64)).tolist() == want


def test_prg_fill_writes_the_keystream_into_a_uint8_buffer_with_one_spare_block():
    """fill(buffer, n) needs a uint8 buffer of n + 16 bytes (OpenSSL's one spare block) and
    returns its first n bytes, the next n keystream bytes (a twin Prg's uint8 draw)."""
    buffer = np.zeros(40 + 16, dtype=np.uint8)
    out = Prg(RandomSource(seed=19)).fill(buffer, 40)
    assert out.base is buffer or out.base is buffer.base
    np.testing.assert_array_equal(out, Prg(RandomSource(seed=19)).uint8(40))
    for bad, got in ((np.zeros(40 + 15, dtype=np.uint8), 'uint8 with 55'),
                     (np.zeros(56, dtype=np.int8), 'int8 with 56')):
        with pytest.raises(ValueError, match=f'^buffer must be uint8 with at least 56 bytes, '
                                             f'got {got}$'):
            Prg(RandomSource(seed=19)).fill(bad, 40)


def test_as_prg_keys_from_the_given_source():
    np.testing.assert_array_equal(as_prg(RandomSource(seed=17)).uint64(4),
                                  Prg(RandomSource(seed=17)).uint64(4))


def test_prg_is_keyed_with_all_48_bytes_it_draws_from_its_source():
    """Prg(rng) is AES-256-CTR with key = rng.bytes(32) and nonce = the next 16 bytes: all
    384 bits drawn reach the keystream (a low-entropy key would still look uniform)."""
    source = RandomSource(seed=18)
    key, nonce = source.bytes(32), source.bytes(16)
    assert Prg(RandomSource(seed=18)).uint8(64).tobytes() == _aes_ctr_keystream(key, 64, nonce)


def test_unseeded_source_reads_the_os_csprng_and_is_uniform(monkeypatch):
    """The default source is os.urandom itself (replaces the old "two draws differ" check),
    and its bytes are uniform: chi-square over 256 cells inside the two-sided 1e-6 region
    (unseeded, so the tails are made tiny: about 2e-6 false alarms per run)."""
    from scipy import stats
    statistic = _chi_square(np.frombuffer(RandomSource().bytes(256_000), dtype=np.uint8), 256)
    low, high = stats.chi2.ppf([1e-6, 1 - 1e-6], 255)
    assert low < statistic < high
    calls = []
    monkeypatch.setattr(rng.os, 'urandom', lambda n: calls.append(n) or bytes(range(n)))
    source = RandomSource()
    assert source.secure and source.bytes(16) == bytes(range(16)) and calls == [16]


def _reference_prg_uniform_mod(seed: bytes, modulus: int, count: int) -> list:
    """The documented rejection sampler in Python ints, on the AES-CTR keystream: little-endian
    words of 4 bytes (8 above 2^32), masked to the bit length of m - 1; the rejected
    positions are redrawn, in order, from the next words, round after round."""
    width = 4 if modulus <= 2**32 else 8
    mask = (1 << (modulus - 1).bit_length()) - 1
    stream = _aes_ctr_keystream(seed, width * count * 64)
    position = 0

    def draw(n):
        nonlocal position
        words = [int.from_bytes(stream[position + width * i:position + width * (i + 1)],
                                'little') & mask for i in range(n)]
        position += width * n
        return words

    values = draw(count)
    bad = [i for i, v in enumerate(values) if v >= modulus]
    while bad:
        for i, v in zip(bad, draw(len(bad))):
            values[i] = v
        bad = [i for i in bad if values[i] >= modulus]
    return values


@pytest.mark.parametrize('modulus', [5, 3**20, 2**32, 2**32 + 15, 2**61 - 1])
def test_prg_uniform_mod_is_the_documented_rejection_sampler(modulus):
    seed = bytes(range(1, 33))
    got = Prg.from_seed(seed).uniform_mod(modulus, 200)
    assert got.tolist() == _reference_prg_uniform_mod(seed, modulus, 200)
    for bad in (1, 2**63 + 1):
        with pytest.raises(ValueError, match='modulus'):
            Prg.from_seed(seed).uniform_mod(bad, 3)


@pytest.mark.parametrize('key_bytes', [16, 32])
def test_prg_from_key_is_aes_128_or_256_ctr_by_key_length(key_bytes):
    """from_key(key) is AES-CTR(key, nonce 0): AES-128 for 16 bytes, AES-256 for 32 (reference:
    `cryptography` directly); the two lengths give different streams; other lengths refused."""
    key = bytes(range(100, 100 + key_bytes))
    reference = np.frombuffer(_aes_ctr_keystream(key, 4096), dtype=np.uint8)
    np.testing.assert_array_equal(Prg.from_key(key).uint8(4096), reference)
    other = bytes(range(100, 132))[:48 - key_bytes]
    assert not np.array_equal(Prg.from_key(other).uint8(64), reference[:64])
    for bad in (bytes(15), bytes(24), 'x' * 16):
        with pytest.raises(ValueError, match='key must be 16 or 32 bytes'):
            Prg.from_key(bad)
