"""Tests of tfpriv.crypto.shamir.reed_solomon: robust reconstruction from corrupted shares."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.crypto.shamir import field, reed_solomon
from tfpriv.rng import Prg, RandomSource

P = 2**31 - 1


def _corrupt(ys, rows, rng, columns=None):
    ys = ys.copy()
    for row in rows:
        cols = np.arange(ys.shape[1]) if columns is None else columns
        ys[row, cols] = (ys[row, cols] + 1 + Prg(rng).uniform_mod(P - 1, (len(cols),))) % P
    return ys


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_corrects_up_to_bound_and_identifies(data):
    t = data.draw(st.integers(1, 5))
    m = data.draw(st.integers(t + 1, 11))
    bound = (m - t) // 2
    wrong = data.draw(st.lists(st.integers(0, m - 1), max_size=bound, unique=True))
    rng = RandomSource(seed=data.draw(st.integers(0, 1000)))
    secret = Prg(rng).uniform_mod(P, (3, 7))
    ys = field.split_field(secret, t, m, P, rng)
    got, bad = reed_solomon.decode(range(1, m + 1), _corrupt(ys.reshape(m, -1), wrong, rng)
                                   .reshape(ys.shape), t, P, rng)
    np.testing.assert_array_equal(got, secret)
    assert bad == tuple(sorted(i + 1 for i in wrong))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_one_more_than_bound_is_detected(data):
    t = data.draw(st.integers(1, 5))
    m = data.draw(st.integers(t + 1, 11))
    wrong = data.draw(st.lists(st.integers(0, m - 1), min_size=(m - t) // 2 + 1,
                               max_size=(m - t) // 2 + 1, unique=True))
    rng = RandomSource(seed=data.draw(st.integers(0, 1000)))
    ys = field.split_field(Prg(rng).uniform_mod(P, (20,)), t, m, P, rng)
    with pytest.raises(reed_solomon.DecodingError, match='shares are wrong'):
        reed_solomon.decode(range(1, m + 1), _corrupt(ys, wrong, rng), t, P, rng)


def test_sparse_corruption_outside_the_sample_is_found():
    rng = RandomSource(seed=3)
    secret = Prg(rng).uniform_mod(P, (5000,))
    ys = field.split_field(secret, 3, 8, P, rng, xs=[5, 9, 13, 2, 77, 100, 4, 6])
    bad_ys = _corrupt(ys, [1], rng, columns=np.array([4321]))
    bad_ys = _corrupt(bad_ys, [6], rng, columns=np.array([17, 2048]))
    got, bad = reed_solomon.decode([5, 9, 13, 2, 77, 100, 4, 6], bad_ys, 3, P, rng)
    np.testing.assert_array_equal(got, secret)
    assert bad == (4, 9)


def test_small_field_and_no_redundancy():
    rng = RandomSource(seed=4)
    secret = Prg(rng).uniform_mod(13, (40,))
    ys = field.split_field(secret, 2, 6, 13, rng)
    got, bad = reed_solomon.decode(range(1, 7), _corrupt_small(ys, [0, 3]), 2, 13, rng)
    np.testing.assert_array_equal(got, secret)
    assert bad == (1, 4)
    got, bad = reed_solomon.decode(range(1, 3), ys[:2], 2, 13, rng)
    np.testing.assert_array_equal(got, secret)
    assert bad == ()


def _corrupt_small(ys, rows):
    ys = ys.copy()
    ys[rows] = (ys[rows] + 5) % 13
    return ys


def test_gao_decode_scalar():
    xs, p = [1, 2, 3, 4, 5, 6, 7], 101
    message = [3, 1, 4]  # 3 + x + 4x^2
    word = [sum(c * x**k for k, c in enumerate(message)) % p for x in xs]
    word[2] = (word[2] + 9) % p
    word[5] = (word[5] + 1) % p
    assert reed_solomon.gao_decode(xs, word, 3, p) == message
    word[0] = (word[0] + 1) % p
    assert reed_solomon.gao_decode(xs, word, 3, p) is None


@pytest.mark.parametrize('args, match', [
    (([1, 2, 3], np.zeros((2, 4), np.int64), 2, P), 'one row per'),
    (([1, 2, 2], np.zeros((3, 4), np.int64), 2, P), 'distinct'),
    (([1, 2, 3], np.zeros((3, 4), np.int64), 4, P), 'threshold must be'),
    (([1, 2, 3], np.zeros((3, 4), np.int64), 0, P), 'threshold must be'),
    (([1, 2, 3], np.full((3, 4), P, np.int64), 2, P),  # wrong shares now, not bad input
     r'values outside \[0, \d+\) came from x = \[1, 2, 3\]'),
    (([1, 2, 3], np.zeros((3, 4)), 2, P), 'integer array'),
    (([1, 2, 3], np.zeros((3, 4), np.int64), 2, 2**31 - 3), 'prime'),
])
def test_bad_arguments(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        reed_solomon.decode(*args)
