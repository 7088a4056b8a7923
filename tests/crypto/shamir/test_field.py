"""Tests of tfpriv.crypto.shamir.field: prime-field arithmetic and raw Shamir sharing."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.crypto.shamir import field
from tfpriv.rng import Prg, RandomSource

PRIMES = [2, 3, 7, 65537, 1_000_003, 1_073_741_789, 2_147_483_647]


def test_is_prime_matches_trial_division():
    def slow(n):
        return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))
    assert [n for n in range(2000) if field.is_prime(n)] == [n for n in range(2000) if slow(n)]
    assert field.is_prime(2**31 - 1) and not field.is_prime(2**31 - 3)
    assert not field.is_prime(25326001)  # strong pseudoprime to bases 2, 3, 5


@pytest.mark.parametrize('modulus', PRIMES)
def test_random_elements_in_range_and_all_values_hit(modulus):
    values = Prg(RandomSource(seed=1)).uniform_mod(modulus, (4000,))
    assert values.dtype == np.int64 and values.min() >= 0 and values.max() < modulus
    if modulus <= 7:
        assert set(values.tolist()) == set(range(modulus))


@settings(max_examples=40, deadline=None)
@given(modulus=st.sampled_from(PRIMES[2:]), data=st.data())
def test_any_threshold_subset_reconstructs(modulus, data):
    num_shares = data.draw(st.integers(1, min(7, modulus - 1)))
    threshold = data.draw(st.integers(1, num_shares))
    secret = np.array(data.draw(st.lists(st.integers(0, modulus - 1), min_size=1, max_size=20)))
    xs = data.draw(st.lists(st.integers(1, modulus - 1), min_size=num_shares,
                            max_size=num_shares, unique=True))
    shares = field.split_field(secret, threshold, num_shares, modulus, RandomSource(seed=2), xs)
    assert shares.shape == (num_shares,) + secret.shape and shares.dtype == np.int64
    for subset in itertools.combinations(range(num_shares), threshold):
        picked = list(subset)
        out = field.reconstruct_field([xs[i] for i in picked], shares[picked], modulus)
        np.testing.assert_array_equal(out, secret)


def test_large_x_forces_reduction_in_horner():
    modulus = 2**31 - 1
    xs = [modulus - 1, modulus - 2, 5, 123456789]
    secret = np.arange(50, dtype=np.int64)
    shares = field.split_field(secret, 4, 4, modulus, RandomSource(seed=3), xs)
    coeffs_check = field.reconstruct_field(xs, shares, modulus)
    np.testing.assert_array_equal(coeffs_check, secret)


def test_poly_eval_matches_python_integers():
    modulus = 1_000_003
    coeffs = Prg(RandomSource(seed=4)).uniform_mod(modulus, (6, 5))
    xs = [1, 2, 999_999, 77]
    out = field.poly_eval(coeffs, xs, modulus)
    for i, x in enumerate(xs):
        for j in range(5):
            want = sum(int(coeffs[k, j]) * x**k for k in range(6)) % modulus
            assert out[i, j] == want


def test_lagrange_coefficients_at_other_points():
    modulus = 65537
    xs = [3, 8, 11]
    lam = field.lagrange_coefficients(xs, modulus, at=5)
    poly = [7, 100, 3]  # f(x) = 7 + 100 x + 3 x^2
    f = [sum(c * x**k for k, c in enumerate(poly)) % modulus for x in xs]
    assert sum(int(l) * v for l, v in zip(lam, f)) % modulus == (7 + 500 + 75) % modulus


def test_combine_many_terms_reduces_without_overflow():
    modulus = 2**31 - 1
    rng = RandomSource(seed=5)
    count = 2**15 + 3
    coefficients = Prg(rng).uniform_mod(modulus, (count,))
    ys = Prg(rng).uniform_mod(modulus, (count, 2))
    want = [sum(int(c) * int(y) for c, y in zip(coefficients, ys[:, j])) % modulus
            for j in range(2)]
    assert field.combine(coefficients, ys, modulus).tolist() == want


@pytest.mark.parametrize('kwargs, match', [
    (dict(threshold=4, num_shares=3), 'threshold must be in'),
    (dict(threshold=0, num_shares=3), 'threshold must be in'),
    (dict(threshold=2, num_shares=7, modulus=7), r'num_shares must be in \[1, modulus\)'),
    (dict(modulus=2**31 + 11), 'prime in'),
    (dict(modulus=15), 'prime in'),
    (dict(xs=[1, 2, 2]), 'duplicates'),
    (dict(xs=[0, 1, 2]), 'lie in'),
    (dict(xs=[1, 2]), 'expected 3'),
    (dict(secret=np.array([-1, 2])), 'secret must lie in'),
    (dict(secret=np.array([0.5])), 'integer array'),
])
def test_split_field_bad_arguments(kwargs, match):
    args = dict(secret=np.array([1, 2]), threshold=2, num_shares=3, modulus=65537)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        field.split_field(**args)


def test_reconstruct_field_bad_arguments():
    modulus = 65537
    with pytest.raises(ValueError, match='one row per'):
        field.reconstruct_field([1, 2], np.zeros((3, 4), dtype=np.int64), modulus)
    with pytest.raises(ValueError, match='shares must lie in'):
        field.reconstruct_field([1, 2], np.full((2, 4), modulus), modulus)
    with pytest.raises(ValueError, match='distinct'):
        field.reconstruct_field([1, 1], np.zeros((2, 4), dtype=np.int64), modulus)
    with pytest.raises(TypeError, match='modulus must be an int'):
        field.reconstruct_field([1, 2], np.zeros((2, 4), dtype=np.int64), 7.0)


def test_reconstruct_field_takes_one_scalar_per_point():
    """Secret 5 on the line 5 + 3x mod 7 (points (1, 1), (2, 4)): Lagrange at 0 by hand,
    5 = 2 * 1 - 1 * 4 + 7; the ys may be plain integers (a 1-D sequence)."""
    assert int(field.reconstruct_field([1, 2], [1, 4], 7)) == 5


@pytest.mark.parametrize('modulus', [67, 65_537, 1_073_741_789, 2**31 - 1])
def test_reduce_exact_floats_matches_python_integers_at_the_edges(modulus):
    """Every float64 integer in [0, 2^53) reduces to Python's v % p: multiples of p and their
    neighbours (where a floor of v/p off by one shows), the top of the range and random values;
    the reference is Python's big-integer `%`, not the code under test."""
    rng = np.random.default_rng(modulus)
    top = 2**53 - 1
    multiples = [k * modulus for k in (1, 2, 3, top // modulus, top // modulus - 1)]
    edges = [0, 1, modulus - 1, modulus, modulus + 1, top, top - 1]
    edges += [m + d for m in multiples for d in (-1, 0, 1) if 0 <= m + d <= top]
    edges += [int(k) * modulus - 1 for k in rng.integers(top // modulus // 2, top // modulus,
                                                         10_000)]
    edges += [int(v) for v in rng.integers(0, 2**53, 10_000)]
    values = np.array(edges, dtype=np.float64)
    assert all(int(v) == e for v, e in zip(values, edges))  # exact as float64
    reduced = field.reduce_exact_floats(values, modulus, np.empty_like(values))
    assert [int(v) for v in reduced] == [e % modulus for e in edges]


@pytest.mark.parametrize('kwargs, message', [({'threshold': 1.5}, '^threshold must be an int'),
                                             ({'num_shares': 2.5}, '^num_shares must be an int')])
def test_split_parameters_name_a_non_integer(kwargs, message):
    args = {'threshold': 2, 'num_shares': 3, **kwargs}
    with pytest.raises(TypeError, match=message):
        field.split_field(np.zeros(2, np.int64), args['threshold'], args['num_shares'], 7)
