"""Tests of the Z_2^64 ring, fixed point, sharing, PRG and the truncation/Beaver protocols."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from tfpriv.crypto.smpc import Cluster, Encoding
from tfpriv.crypto.smpc import compare, protocols, ring
from tfpriv.rng import Prg
from tfpriv.crypto.smpc.sharing import combine, split
from tfpriv.rng import RandomSource

PARTIES = [2, 3, 5]
MASK = (1 << 64) - 1


def _cluster(n, seed=0):
    return Cluster(n, rng=RandomSource(seed=seed))


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-2.0**45, 2.0**45), min_size=1, max_size=30),
       precision=st.integers(0, 16))
def test_encode_decode_round_trip_within_half_ulp(values, precision):
    encoding = Encoding(precision)
    decoded = encoding.decode(encoding.encode(values))
    assert np.all(np.abs(decoded - np.array(values)) <= 0.5 / encoding.scale)


def test_encode_rejects_out_of_range_and_nan():
    encoding = Encoding(16)
    encoding.encode([encoding.max_abs * 0.999, -encoding.max_abs * 0.999])
    with pytest.raises(OverflowError, match='fixed-point range'):
        encoding.encode([1.0, encoding.max_abs])
    with pytest.raises(OverflowError, match='fixed-point range'):
        encoding.encode(-2.0**47)
    with pytest.raises(ValueError, match='NaN'):
        encoding.encode([np.nan])
    with pytest.raises(ValueError, match='precision'):
        Encoding(41)
    with pytest.raises(TypeError, match='precision'):
        Encoding(16.0)


def test_decode_detects_wrapped_values():
    with pytest.raises(OverflowError, match='left the fixed-point range'):
        Encoding(16).decode(ring.from_int([1, 2**62]))
    with pytest.raises(OverflowError):
        Encoding(16).decode(ring.from_int([-2**62]))


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 6), k=st.integers(1, 9), n=st.integers(1, 5), seed=st.integers(0, 99))
def test_ring_matmul_is_exact_mod_2_64(m, k, n, seed):
    prg = Prg(RandomSource(seed=seed))
    a, b = prg.uint64((m, k)), prg.uint64((k, n))
    expected = (a.astype(object).dot(b.astype(object))) & MASK
    assert np.array_equal(ring.matmul(a, b).astype(object), expected)


@pytest.mark.parametrize('shape_a,shape_b', [((3, 600), (600, 2)), ((2, 3, 257), (257, 4))])
def test_ring_matmul_long_and_batched(shape_a, shape_b):
    prg = Prg(RandomSource(seed=1))
    a, b = prg.uint64(shape_a), prg.uint64(shape_b)
    expected = np.einsum('...k,kn->...n', a.astype(object), b.astype(object)) & MASK
    assert np.array_equal(ring.matmul(a, b).astype(object), expected)


def test_ring_matmul_rejects_bad_shapes():
    with pytest.raises(ValueError, match='cannot multiply'):
        ring.matmul(np.zeros((2, 3), np.uint64), np.zeros((4, 2), np.uint64))


def test_prg_is_reproducible_with_seed_and_uniform():
    a, b = Prg(RandomSource(seed=5)), Prg(RandomSource(seed=5))
    assert np.array_equal(a.uint64(100), b.uint64(100))
    words = Prg(RandomSource(seed=6)).uint64(200_000)
    counts = np.bincount((words >> np.uint64(60)).astype(np.int64), minlength=16)
    # two-sided: a too-regular (e.g. counter-like) stream fails as well as a biased one
    assert 1e-4 < stats.chisquare(counts).pvalue < 1 - 1e-4
    bits = Prg(RandomSource(seed=7)).bits(100_000)
    assert bits.dtype == np.bool_ and set(np.unique(bits)) == {False, True}
    assert abs(bits.mean() - 0.5) <= 5 * 0.5 / np.sqrt(bits.size)  # 5 se of a fair coin


@pytest.mark.parametrize('n', PARTIES)
@pytest.mark.parametrize('binary,dtype', [(False, np.uint64), (True, np.uint64),
                                          (True, np.uint8), (True, np.bool_)])
def test_split_combine(n, binary, dtype):
    prg = Prg(RandomSource(seed=n))
    values = prg.draw((7, 3), dtype)
    shares = split(values, n, prg, binary)
    assert len(shares) == n and all(s.dtype == dtype for s in shares)
    assert np.array_equal(combine(shares, binary), values)


def test_bit_planes_round_trip():
    words = Prg(RandomSource(seed=3)).uint64((5, 3))
    planes = ring.bit_planes(words)
    assert planes.shape == (64, 2) and planes.dtype == np.uint8
    for j in (0, 17, 63):
        expected = ((words >> np.uint64(j)) & np.uint64(1)).astype(bool)
        assert np.array_equal(ring.unpack_plane(planes[j], (5, 3)), expected)


@pytest.mark.parametrize('n', [2, 3])
def test_each_single_share_is_uniform(n):
    """The same secret shared 40,000 times: each party's share is uniform (chi-square)."""
    prg = Prg(RandomSource(seed=11))
    secret = np.full(40_000, ring.from_int(-12345), dtype=np.uint64)
    for share in split(secret, n, prg):
        for shift in (0, 28, 56):  # low, middle and high byte
            byte = ((share >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.int64)
            pvalue = stats.chisquare(np.bincount(byte, minlength=256)).pvalue
            assert 1e-4 < pvalue < 1 - 1e-4  # two-sided: neither biased nor too regular


@pytest.mark.parametrize('n', [2, 3, 4])
@settings(max_examples=15, deadline=None)
@given(values=st.lists(st.integers(-2**62 + 1, 2**62 - 1), min_size=1, max_size=40),
       shift=st.integers(1, 40))
def test_truncation_error_is_below_one_ulp(n, values, shift):
    """floor(x / 2^m) or floor(x / 2^m) + 1, for 2, 3 and 4 parties, on the whole range."""
    cluster = _cluster(n)
    x = np.array(values, dtype=np.int64)
    shares = split(ring.from_int(x), n, cluster.client('owner').prg)
    got = ring.signed(combine(protocols.truncate(cluster, shares, shift)))
    error = got - (x >> shift)
    assert np.all((error == 0) | (error == 1))


@pytest.mark.parametrize('n', [2, 3])
def test_truncation_errors_are_spread_like_rounding(n):
    """Both outcomes occur: the result is not a biased constant shift."""
    cluster = _cluster(n)
    x = np.arange(-5000, 5000, dtype=np.int64) * 977
    shares = split(ring.from_int(x), n, cluster.client('owner').prg)
    error = ring.signed(combine(protocols.truncate(cluster, shares, 8))) - (x >> 8)
    assert set(np.unique(error)) == {0, 1}
    assert 0.3 < error.mean() < 0.7


@pytest.mark.parametrize('n', PARTIES)
def test_msb_exact_on_extremes(n):
    cluster = _cluster(n)
    x = np.array([-2**63, -2**62, -1, 0, 1, 2**62, 2**63 - 1, -7, 7], dtype=np.int64)
    shares = split(ring.from_int(x), n, cluster.client('owner').prg)
    assert np.array_equal(combine(compare.msb(cluster, shares), binary=True), x < 0)


@pytest.mark.parametrize('n', PARTIES)
def test_beaver_binary_and(n):
    cluster = _cluster(n)
    prg = cluster.client('owner').prg
    x, y = prg.uint64(50), prg.uint64(50)
    z = protocols.beaver(cluster, split(x, n, prg, True), split(y, n, prg, True),
                         np.bitwise_and, binary=True)
    assert np.array_equal(combine(z, binary=True), x & y)
    x8, y8 = prg.uint8(40), prg.uint8((2, 40))  # packed planes, one mask for both products
    z = protocols.beaver(cluster, split(x8, n, prg, True), split(y8, n, prg, True),
                         np.bitwise_and, binary=True)
    assert np.array_equal(combine(z, binary=True), x8 & y8)


@pytest.mark.parametrize('n', [2, 3])
def test_n_minus_1_shares_are_uniform_and_independent_of_the_secret(n):
    """Perfect secrecy of additive sharing, over the small ring Z_16.

    Reducing mod 16 is a ring homomorphism Z_2^64 -> Z_16, so the low nibbles of the
    shares are additive shares of the secret mod 16. For two secrets that differ mod 16
    and every set of n - 1 parties (the computed last share included), the joint low
    nibbles of those shares (16^(n-1) cells) must be uniform: the chi-square statistic
    inside its two-sided 0.1 % acceptance region (scipy's chi2 quantiles, df = cells - 1),
    so too-regular fails as well as biased. Independence of the secret: the contingency
    table (secret x cell) passes a chi-square independence test at p > 1e-4.
    """
    draws = 25_600  # >= 100 expected per cell
    prg = Prg(RandomSource(seed=21))
    tables = []
    for secret in (ring.from_int(-12345), ring.from_int(2**40 + 6)):
        shares = split(np.full(draws, secret, dtype=np.uint64), n, prg)
        nibbles = [(s & np.uint64(15)).astype(np.int64) for s in shares]
        for dropped in range(n):
            cells = np.zeros(draws, dtype=np.int64)
            for i, nibble in enumerate(nibbles):
                if i != dropped:
                    cells = cells * 16 + nibble
            size = 16 ** (n - 1)
            counts = np.bincount(cells, minlength=size)
            statistic = float(((counts - draws / size) ** 2 / (draws / size)).sum())
            low, high = stats.chi2.ppf([0.001, 0.999], size - 1)
            assert low < statistic < high, (secret, dropped, statistic)
            tables.append(counts)
    for dropped in range(n):
        pair = np.array([tables[dropped], tables[n + dropped]])
        assert stats.chi2_contingency(pair[:, pair.sum(axis=0) > 0])[1] > 1e-4
