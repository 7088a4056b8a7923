"""The SMPC dealer's correlated randomness: correct correlations, uniform and independent masks.

Every bundle is opened here with NumPy (sum of the shares mod 2^64 or XOR) and checked
against its definition in Python-int / NumPy arithmetic written in the test; the masks
(a, b, r, rho) hide the data only if they are uniform and independent, so they are also
tested for that:

- the low nibble of a uniform 64-bit word is uniform on Z_16 (reduction mod 16 is a ring
  homomorphism); with n = 20,000 words the Pearson statistic over 16 cells is chi-square
  with 15 df, accepted inside its two-sided 1e-6 region (scipy's quantiles);
- a's and b's nibbles are independent: the 16 x 16 contingency table of 20,000 pairs has
  a chi-square with 225 df, same two-sided region (a = b or b = a + 1 fails at once);
- bits: the count of ones in 20,000 fair bits is within 5 sd (+-354) of 10,000.
A dealer that hands out zero, constant or low-entropy masks, or repeats a, fails.
"""

import numpy as np
import pytest
from scipy import stats

from tfpriv.crypto.smpc.dealer import Dealer
from tfpriv.crypto.smpc.party import Network
from tfpriv.crypto.smpc.ring import bit_planes
from tfpriv.rng import RandomSource

SIZE = 20_000
LOW_1E6, HIGH_1E6 = 5e-7, 1 - 5e-7


def _open(bundles, index, binary=False):
    """The value the parties' `index`-th shares open to."""
    shares = [bundle[index] for bundle in bundles]
    out = shares[0].copy()
    for share in shares[1:]:
        out = out ^ share if binary else out + share
    return out


def _assert_uniform_nibbles(words):
    counts = np.bincount((np.asarray(words, np.uint64) & np.uint64(15)).astype(np.int64),
                         minlength=16)
    statistic = stats.chisquare(counts).statistic
    low, high = stats.chi2.ppf([LOW_1E6, HIGH_1E6], 15)
    assert low < statistic < high, counts


def _assert_independent_nibbles(a, b):
    table = np.zeros((16, 16))
    np.add.at(table, ((a & np.uint64(15)).astype(np.int64), (b & np.uint64(15)).astype(np.int64)), 1)
    statistic = stats.chi2_contingency(table, correction=False)[0]
    low, high = stats.chi2.ppf([LOW_1E6, HIGH_1E6], 225)
    assert low < statistic < high, statistic


def _assert_fair_bits(bits):
    ones = int(np.count_nonzero(bits))
    assert abs(ones - bits.size / 2) <= 5 * np.sqrt(bits.size / 4), ones


@pytest.mark.parametrize('n', [2, 3])
def test_arithmetic_triple_is_a_b_ab_with_uniform_independent_a_b(n):
    network = Network()
    bundles = Dealer(n, network, RandomSource(seed=21)).triple(np.multiply, (SIZE,), (SIZE,))
    assert len(bundles) == n and all(len(bundle) == 3 for bundle in bundles)
    a, b, c = (_open(bundles, i) for i in range(3))
    want = [(int(x) * int(y)) % 2 ** 64 for x, y in zip(a[:500], b[:500])]  # Python ints
    assert c[:500].tolist() == want
    np.testing.assert_array_equal(c, a * b)
    _assert_uniform_nibbles(a)
    _assert_uniform_nibbles(b)
    _assert_independent_nibbles(a, b)
    assert network.offline.messages == n


def test_binary_triple_is_an_and_of_uniform_bits():
    bundles = Dealer(3, Network(), RandomSource(seed=22)).triple(
        np.bitwise_and, (SIZE,), (SIZE,), binary=True, dtype=np.bool_)
    a, b, c = (_open(bundles, i, binary=True) for i in range(3))
    np.testing.assert_array_equal(c, a & b)
    _assert_fair_bits(a)
    _assert_fair_bits(b)
    _assert_fair_bits(a ^ b)  # independent fair bits: their XOR is fair too (a = b gives 0)


def test_matmul_triple_has_the_operands_shapes():
    bundles = Dealer(2, Network(), RandomSource(seed=23)).triple(np.matmul, (3, 4), (4, 5))
    a, b, c = (_open(bundles, i) for i in range(3))
    assert a.shape == (3, 4) and b.shape == (4, 5)
    np.testing.assert_array_equal(c, a @ b)


@pytest.mark.parametrize('shift', [1, 13, 40])
def test_truncation_pair_is_r_its_top_bit_and_the_shifted_low_63_bits(shift):
    bundles = Dealer(3, Network(), RandomSource(seed=24)).truncation_pair((SIZE,), shift)
    r, top, shifted = (_open(bundles, i) for i in range(3))
    ints = [int(v) for v in r[:500]]
    assert top[:500].tolist() == [v >> 63 for v in ints]
    assert shifted[:500].tolist() == [(v % 2 ** 63) >> shift for v in ints]
    _assert_uniform_nibbles(r)
    _assert_fair_bits(top.astype(bool))


def test_edabit_shares_r_and_the_bit_planes_of_minus_r():
    """Plane j packs bit j of each word (bit i mod 8 of byte i // 8), as `ring.bit_planes`
    documents; the planes of -r = 2^64 - r are rebuilt here bit by bit with Python ints."""
    bundles = Dealer(2, Network(), RandomSource(seed=25)).edabit((SIZE,))
    r = _open(bundles, 0)
    planes = _open(bundles, 1, binary=True)
    assert planes.shape == (64, SIZE // 8) and planes.dtype == np.uint8
    for i in range(64):
        negated = (2 ** 64 - int(r[i])) % 2 ** 64
        assert [(int(planes[j, i // 8]) >> (i % 8)) & 1 for j in range(64)] == [
            (negated >> j) & 1 for j in range(64)]
    np.testing.assert_array_equal(planes, bit_planes(np.uint64(0) - r))
    _assert_uniform_nibbles(r)


def test_dabit_and_bit_injection_share_the_same_fair_bit():
    dealer = Dealer(3, Network(), RandomSource(seed=26))
    bundles = dealer.dabit((SIZE,))
    rho, rho_arith = _open(bundles, 0, binary=True), _open(bundles, 1)
    assert rho.dtype == np.bool_
    np.testing.assert_array_equal(rho_arith, rho.astype(np.uint64))
    _assert_fair_bits(rho)
    bundles = dealer.bit_injection((SIZE,), (SIZE,))
    rho, rho_arith, a, rho_a = (_open(bundles, i, binary=(i == 0)) for i in range(4))
    np.testing.assert_array_equal(rho_arith, rho.astype(np.uint64))
    np.testing.assert_array_equal(rho_a, np.where(rho, a, np.uint64(0)))
    _assert_fair_bits(rho)
    _assert_uniform_nibbles(a)


def test_each_single_share_of_a_dealt_value_is_uniform():
    """One party's share of c = a b must not reveal c: its nibbles are uniform."""
    bundles = Dealer(3, Network(), RandomSource(seed=27)).triple(np.multiply, (SIZE,), (SIZE,))
    for party in range(3):
        _assert_uniform_nibbles(bundles[party][2])


def test_a_seeded_dealer_draws_from_its_source():
    """The dealer's Prg is keyed from the given source: two dealers from one seed deal the same
    bundles, a different seed different ones (the OS CSPRNG would never repeat)."""
    first = Dealer(2, Network(), RandomSource(seed=28)).triple(np.multiply, (64,), (64,))
    second = Dealer(2, Network(), RandomSource(seed=28)).triple(np.multiply, (64,), (64,))
    other = Dealer(2, Network(), RandomSource(seed=29)).triple(np.multiply, (64,), (64,))
    for a, b, c in zip(first, second, other):
        for x, y, z in zip(a, b, c):
            np.testing.assert_array_equal(x, y)
            assert not np.array_equal(x, z)
