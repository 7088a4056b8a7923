"""Tests of tfpriv.crypto.shamir (sharing); the fixed-point codec is in ../test_fixed_point.py."""

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from tfpriv.crypto import shamir
from tfpriv.crypto.shamir import field
from tfpriv.crypto.secagg import UpdateSpec
from tfpriv.errors import FixedPointRangeError
from tfpriv.rng import Prg, RandomSource

SEEDED = RandomSource(seed=11)
finite = st.floats(-1000, 1000, allow_nan=False, allow_infinity=False)


def _array(data, size=st.integers(1, 12)):
    return np.array(data.draw(st.lists(finite, min_size=1, max_size=data.draw(size))))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_t_of_n_reconstructs_within_fixed_point_error(data):
    n = data.draw(st.integers(1, 6))
    t = data.draw(st.integers(1, n))
    precision = data.draw(st.integers(0, 20))
    secret = _array(data)
    shares = shamir.split(secret, t, n, precision=precision, rng=SEEDED)
    for subset in itertools.combinations(shares, t):
        out = shamir.reconstruct(list(subset))
        assert out.shape == secret.shape and out.dtype == secret.dtype
        assert np.max(np.abs(out - secret)) <= 2.0**-precision


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_fewer_than_t_shares_raise(data):
    n = data.draw(st.integers(2, 6))
    t = data.draw(st.integers(2, n))
    shares = shamir.split(_array(data), t, n, rng=SEEDED)
    with pytest.raises(ValueError, match=f'need at least threshold = {t}'):
        shamir.reconstruct(shares[:t - 1])


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_linearity_sum_of_shares_is_share_of_sum(data):
    a = _array(data, st.just(8))
    b = np.array(data.draw(st.lists(finite, min_size=a.size, max_size=a.size)))
    shares_a = shamir.split(a, 3, 5, rng=SEEDED)
    shares_b = shamir.split(b, 3, 5, rng=SEEDED)
    summed = [u + v for u, v in zip(shares_a, shares_b)]
    for subset in ([0, 1, 2], [2, 3, 4], [0, 2, 4]):
        out = shamir.reconstruct([summed[i] for i in subset])
        assert np.max(np.abs(out - (a + b))) <= 2 * 2.0**-shamir.DEFAULT_PRECISION


def test_t_minus_1_shares_independent_of_secret_chi_square():
    """Over GF(7) with t = 3, the joint law of shares 1 and 2 is uniform on 49 cells
    whatever the secret: a chi-square test of share pairs against the secret finds no
    dependence, while the t shares together determine it."""
    modulus, trials = 7, 4000
    rng = RandomSource(seed=12)
    secrets = Prg(rng).uniform_mod(modulus, (trials,))
    shares = field.split_field(secrets, 3, 4, modulus, rng)
    pair = shares[0] * modulus + shares[1]
    table = np.zeros((modulus, modulus * modulus))
    np.add.at(table, (secrets, pair), 1)
    # the pair is uniform on all 49 cells (two-sided goodness of fit, 48 degrees of freedom)
    marginal = stats.chisquare(table.sum(axis=0))
    assert 1e-4 < marginal.pvalue < 1 - 1e-4
    assert stats.chi2_contingency(table[:, table.sum(axis=0) > 0])[1] > 0.001
    full = (pair * modulus + shares[2])
    table_full = np.zeros((modulus, modulus**3))
    np.add.at(table_full, (secrets, full), 1)
    table_full = table_full[:, table_full.sum(axis=0) > 0]
    assert stats.chi2_contingency(table_full)[1] < 1e-6


def test_list_of_arrays_keeps_shapes_and_dtypes():
    weights = [np.arange(12, dtype=np.float32).reshape(3, 4) / 7, np.array([-5, 9], np.int32),
               np.float64(2.5) * np.ones((2, 1, 2))]
    shares = shamir.split(weights, 2, 3, rng=SEEDED)
    assert shares[0].shape == (3, 4) and shares[0].dtype == np.float32
    out = shamir.reconstruct(shares[1:])
    assert isinstance(out, list) and len(out) == 3
    for a, b in zip(out, weights):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, atol=2.0**-16)
    assert shares[0].nbytes > 4 * 12 + 4 * 2 + 4 * 4


def test_reconstruct_corrects_a_wrong_share_and_reports_it():
    secret = np.linspace(-1, 1, 50)
    shares = shamir.split(secret, 3, 6, rng=SEEDED)
    shares[4] = dataclasses.replace(shares[4], values=(shares[4].values + 1) % shares[4].modulus)
    out, bad = shamir.reconstruct_with_report(shares)
    assert bad == (5,)
    np.testing.assert_allclose(out, secret, atol=2.0**-16)
    wrong = shamir.reconstruct(shares[2:5], robust=False)
    assert np.max(np.abs(wrong - secret)) > 2.0**-15


def _mismatch(field_name, value):
    def change(shares):
        shares[1] = dataclasses.replace(shares[1], **{field_name: value})
        return shares
    return change


@pytest.mark.parametrize('change, error, match', [
    (lambda s: s[:2] + shamir.split(np.zeros(4), 2, 3, rng=SEEDED)[2:], ValueError, 'split_id'),
    (_mismatch('modulus', 65537), ValueError, 'modulus=65537'),
    (_mismatch('spec', UpdateSpec.of([np.ones((2, 2))])), ValueError, r'spec=.*\(2, 2\)'),
    (_mismatch('is_list', True), ValueError, 'is_list=True'),
    (_mismatch('threshold', 3), ValueError, 'threshold=3'),
    (_mismatch('precision', 10), ValueError, 'precision=10'),
    (_mismatch('version', 99), ValueError, 'version=99'),
    (_mismatch('encoding', 'other'), ValueError, "has encoding='other' but"),
    (_mismatch('num_shares', 4), ValueError, 'has num_shares=4 but'),
    (lambda s: [s[0], s[1], s[1]], ValueError, r'duplicate shares for x = \[2\]'),
    (lambda s: [], ValueError, 'no shares'),
    (lambda s: s[0], TypeError, 'expected a list of Share'),
    (lambda s: [s[0], 'x'], TypeError, 'not a Share'),
    (lambda s: [s[0], dataclasses.replace(s[1], values=s[1].values[:2])], ValueError,
     'holds'),
])
def test_reconstruct_rejects_mixed_or_bad_shares(change, error, match):
    shares = shamir.split(np.ones(4), 2, 3, rng=SEEDED)
    with pytest.raises(error, match=match):
        shamir.reconstruct(change(shares))


def test_mixed_shapes_rejected():
    a = shamir.split(np.ones(4), 2, 3, rng=SEEDED)
    b = shamir.split(np.ones((2, 2)), 2, 3, rng=SEEDED)
    with pytest.raises(ValueError, match='spec'):
        a[0] + b[0]
    with pytest.raises(ValueError, match='same x'):
        a[0] + a[1]


@pytest.mark.parametrize('secret, kwargs, error, match', [
    (np.ones(3), dict(threshold=4, num_shares=3), ValueError, 'threshold must be in'),
    (np.ones(3), dict(threshold=0), ValueError, 'threshold must be in'),
    (np.ones(3), dict(num_shares=7, threshold=2, modulus=7), ValueError, 'num_shares must be'),
    (np.ones(3), dict(modulus=2**31 + 11), ValueError, 'prime'),
    (np.ones(3), dict(xs=[1, 1, 2]), ValueError, 'distinct'),
    (np.array([1.0, np.nan]), {}, ValueError, 'NaN or infinite'),
    (np.array([np.inf]), {}, ValueError, 'NaN or infinite'),
    (np.array([1e6]), {}, ValueError, 'does not fit'),
    (np.array([True]), {}, TypeError, 'dtype bool'),
    (np.array(['a']), {}, TypeError, 'dtype <U1'),
    ([], {}, ValueError, 'empty list'),
    ([np.ones(2), np.array([np.nan])], {}, ValueError, 'NaN'),
    (np.ones(3), dict(precision=-2), ValueError, 'precision must be'),
])
def test_split_rejects_bad_arguments(secret, kwargs, error, match):
    args = dict(threshold=2, num_shares=3, rng=SEEDED)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        shamir.split(secret, **args)


def test_default_randomness_is_os_csprng_and_fresh():
    a = shamir.split(np.zeros(16), 2, 2)
    b = shamir.split(np.zeros(16), 2, 2)
    assert a[0].split_id != b[0].split_id
    assert not np.array_equal(a[0].values, b[0].values)


def test_sum_of_shares_checks_headroom_instead_of_wrapping():
    """Issue #17: at 16 bits in GF(2^31 - 1) the range is |x| <= 16384; 10000 + 10000
    used to wrap to -12768. The shares carry public bounds, and the sum checks them."""
    a = shamir.split(np.array([10000.0]), 2, 3, rng=SEEDED)
    b = shamir.split(np.array([10000.0]), 2, 3, rng=SEEDED)
    with pytest.raises(FixedPointRangeError, match='summing 2 fixed-point values'):
        a[0] + b[0]
    small = [shamir.split(np.array([v]), 2, 3, rng=SEEDED, bound=5000.0) for v in (4000.0, -5000.0)]
    total = [x + y for x, y in zip(*small)]
    np.testing.assert_allclose(shamir.reconstruct(total[:2]), [-1000.0])
    assert total[0].bound == 10000.0 and a[0].bound == 16384.0 - 2.0**-16
    with pytest.raises(ValueError, match='exceeds bound'):
        shamir.split(np.array([6000.0]), 2, 3, bound=5000.0)


def test_sums_of_shares_carry_one_split_id_per_sum_whatever_the_order():
    """u + v and v + u are shares of the same sum (they must combine: the id is symmetric),
    and two different sums get different ids (so their shares cannot be mixed silently);
    the id stays a 128-bit integer. Adding shares of other parameters names the mismatch."""
    a, b, c = (shamir.split(np.full(3, value), 2, 3, rng=RandomSource(seed=40 + i))
               for i, value in enumerate((1.0, 2.0, 4.0)))
    mixed = [a[0] + b[0], b[1] + a[1]]
    np.testing.assert_allclose(shamir.reconstruct(mixed), np.full(3, 3.0), atol=1e-4)
    other = a[0] + c[0]
    assert mixed[0].split_id == mixed[1].split_id != other.split_id
    assert other.split_id == (a[0].split_id + c[0].split_id) % 2**128  # Python-int reference
    assert isinstance(other.split_id, int) and 0 <= other.split_id < 2**128
    with pytest.raises(ValueError, match='^the second share has threshold=3 but'):
        a[0] + dataclasses.replace(b[0], threshold=3)


def test_split_draws_coefficients_and_id_from_the_given_source():
    """With a seeded source, the shares are the Python-int evaluation of s + c1 x + c2 x^2 mod p
    at x = 1..4, c1, c2 the first uniform_mod draws of the source's Prg, s the fixed-point
    encoding v 2^16 mod p written out by hand; the 128-bit split id is the next 16 bytes of
    the stream, little-endian; every share carries t and n."""
    p, t, n = field.DEFAULT_PRIME, 3, 4
    shares = shamir.split(np.array([3.0, -2.0, 0.5]), t, n, precision=16,
                          rng=RandomSource(seed=61))
    prg = Prg(RandomSource(seed=61))
    c1, c2 = (row.tolist() for row in prg.uniform_mod(p, (t - 1, 3)))
    secret = [3 * 2 ** 16, p - 2 * 2 ** 16, 2 ** 15]
    split_id = int.from_bytes(prg.uint8(16).tobytes(), 'little')
    for share in shares:
        x = share.x
        assert share.values.tolist() == [(s + a * x + b * x * x) % p
                                         for s, a, b in zip(secret, c1, c2)]
        assert (share.split_id, share.threshold, share.num_shares) == (split_id, t, n)
    assert [share.x for share in shares] == [1, 2, 3, 4]
