"""Tests of tfpriv.crypto.fixed_point, the one fixed-point codec of Shamir, SMPC and RLWE."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.crypto.fixed_point import RING_MODULUS, FixedPoint
from tfpriv.crypto.rlwe import params as rp
from tfpriv.crypto.rlwe.encoding import Encoder
from tfpriv.crypto.shamir.secagg import ShamirAggregator
from tfpriv.crypto.smpc.ring import Encoding
from tfpriv.errors import FixedPointRangeError

finite = st.floats(-1000, 1000, allow_nan=False, allow_infinity=False)


def _round_half_up(value: Fraction) -> int:
    """Python-int reference of the units of a bound: floor(value + 1/2)."""
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=50), precision=st.integers(0, 40),
       modulus=st.sampled_from([2**61 - 1, 2**62, RING_MODULUS]))
def test_round_trip_error_at_most_half_a_unit(values, precision, modulus):
    encoder = FixedPoint(modulus, precision)
    encoded = encoder.encode(np.array(values))
    if modulus == RING_MODULUS:
        assert encoded.dtype == np.uint64
    else:
        assert encoded.dtype == np.int64 and encoded.min() >= 0 and encoded.max() < modulus
    # rounding to nearest: |decode(encode(x)) - x| <= 2^-(f+1), exactly (dyadic arithmetic)
    assert np.max(np.abs(encoder.decode(encoded) - np.array(values))) <= 2.0**-(precision + 1)


@settings(max_examples=60, deadline=None)
@given(precision=st.integers(0, 30), numerator=st.integers(1, 2**20), shift=st.integers(0, 20),
       k_max=st.integers(1, 60), data=st.data())
def test_headroom_matches_python_integer_arithmetic(precision, numerator, shift, k_max, data):
    """check_headroom(k, B) passes iff k round(B 2^f) <= floor((m - 1) / 2), computed with
    Python integers (B = numerator / 2^shift is exact in binary). The modulus is built so
    that exactly k_max terms fit, and k = k_max is accepted while k_max + 1 is refused."""
    bound = numerator / 2**shift
    units = _round_half_up(Fraction(numerator, 2**shift) * 2**precision)
    if units == 0:
        return
    largest_int = units * k_max + data.draw(st.integers(0, units - 1))
    modulus = 2 * largest_int + 1 + data.draw(st.integers(0, 1))
    if not 3 <= modulus <= 2**62:
        return
    encoder = FixedPoint(modulus, precision)
    assert encoder.max_int == largest_int
    encoder.check_headroom(k_max, bound)
    with pytest.raises(FixedPointRangeError, match=f'at most {k_max} terms of this bound fit'):
        encoder.check_headroom(k_max + 1, bound)
    k = data.draw(st.integers(1, 2 * k_max))
    if k * units <= largest_int:
        encoder.check_headroom(k, bound)
    else:
        with pytest.raises(FixedPointRangeError):
            encoder.check_headroom(k, bound)


def test_largest_fitting_sum_decodes_and_one_more_term_wraps():
    """The check is about real wrap-around: k_max encodings of +B sum to k_max B exactly;
    k_max + 1 of them wrap to a negative number, and the check refuses exactly that k."""
    encoder, bound = FixedPoint(1009, 3), 2.5  # units = 20, floor(1008 / 2) = 504
    k_max = 504 // 20
    encoder.check_headroom(k_max, bound)
    term = int(encoder.encode(np.array([bound]))[0])
    fitted = encoder.decode(np.array([k_max * term % 1009]))[0]
    assert fitted == k_max * bound
    wrapped = encoder.decode(np.array([(k_max + 1) * term % 1009]))[0]
    assert wrapped < 0  # what the check prevents
    with pytest.raises(FixedPointRangeError, match='at most 25 terms'):
        encoder.check_headroom(k_max + 1, bound)


def test_signed_sum_and_headroom_messages():
    encoder = FixedPoint(2**31 - 1, 16)
    x, y = np.array([-3.25, 1.5]), np.array([1.0, -7.0])
    total = (encoder.encode(x) + encoder.encode(y)) % encoder.modulus
    np.testing.assert_allclose(encoder.decode(total), x + y)
    encoder.check_headroom(16383, 1.0)  # 16383 * 2^16 < 2^30
    with pytest.raises(ValueError, match='at most 16383 terms of this bound fit, or use '
                                         'precision <= 15 bits'):
        encoder.check_headroom(16385, 1.0)
    encoder.check_headroom(2, [0.5, 0.5])
    with pytest.raises(ValueError, match='precision <= 15 bits'):
        encoder.check_headroom(2, [20000.0, 10000.0])
    with pytest.raises(ValueError, match='no precision fits'):
        encoder.check_headroom(1, 2.0**31)


@pytest.mark.parametrize('values, match', [
    ([np.nan], 'NaN or infinite'), ([np.inf, 1.0], 'NaN or infinite'),
    ([20000.0], 'limit is 16384.*precision <= 15'),
])
def test_rejects_unencodable(values, match):
    with pytest.raises(ValueError, match=match):
        FixedPoint(2**31 - 1, 16).encode(np.array(values))



def test_range_edges_are_exact_and_negatives_map_to_p_minus_x():
    """p = 2^31 - 1, f = 16: max_int = 2^30 - 1 both signs encode (to x and p - |x|, Python
    integers as the reference), one unit more in either direction raises, and a NaN or an
    infinity anywhere (after a large value, or alone as -inf) is named as such."""
    p, f = 2**31 - 1, 16
    encoder = FixedPoint(p, f)
    edge = (2**30 - 1) / 2**f
    values = np.array([edge, -edge, 0.0, -0.0, -1 / 2**f, 3 / 2**f])
    expected = [2**30 - 1, p - (2**30 - 1), 0, 0, p - 1, 3]
    assert encoder.encode(values).tolist() == expected
    for beyond in (edge + 2**-f, -edge - 2**-f):
        with pytest.raises(FixedPointRangeError, match='fixed-point range'):
            encoder.encode(np.array([0.0, beyond]))
    for bad in ([edge, np.nan], [-np.inf], [np.nan, 1e300]):
        with pytest.raises(ValueError, match='NaN or infinite'):
            encoder.encode(np.array(bad))
    assert encoder.encode(np.float64(-1.0)).tolist() == p - 2**f  # a 0-d input

@pytest.mark.parametrize('kwargs, match', [
    (dict(modulus=2**62 + 1), r'modulus must be in \[3, 2\^62\]'),
    (dict(modulus=2), r'modulus must be in'),
    (dict(precision=-1), 'precision must be >= 0'),
    (dict(precision=1.5), 'precision must be an int'),
    (dict(limit=2**30), 'limit must be <= 1073741823'),
])
def test_bad_parameters(kwargs, match):
    args = dict(modulus=2**31 - 1, precision=16)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        FixedPoint(**args)


def test_bad_headroom_arguments():
    encoder = FixedPoint(2**31 - 1, 16)
    with pytest.raises(ValueError, match='num_terms must be >= 1'):
        encoder.check_headroom(0, 1.0)
    with pytest.raises(ValueError, match='expected one bound or 3 bounds'):
        encoder.check_headroom(3, [1.0, 2.0])
    with pytest.raises(ValueError, match='finite and non-negative'):
        encoder.check_headroom(2, [1.0, -1.0])
    with pytest.raises(ValueError, match=r'must lie in \[0, 2147483647\)'):
        encoder.decode(np.array([-1]))


def test_ring_limit_is_checked_on_encode_and_decode():
    """In Z_2^64 the limit is 2^62 - 1 (SMPC truncation headroom), below (m - 1) / 2."""
    encoding = Encoding(16)
    assert encoding.modulus == RING_MODULUS and encoding.max_int == 2**62 - 1
    with pytest.raises(FixedPointRangeError, match='fixed-point range'):
        encoding.encode([2.0**46])  # round(2^46 2^16) = 2^62
    edge = np.array([2**62 - 1, -(2**62 - 1)], dtype=np.int64).view(np.uint64)
    assert list(encoding.lift(edge)) == [2**62 - 1, -(2**62 - 1)]
    with pytest.raises(FixedPointRangeError, match='left the fixed-point range'):
        encoding.lift(np.array([2**62], dtype=np.int64).view(np.uint64))


def test_one_codec_and_one_error_type_for_every_scheme():
    """Shamir, SMPC and RLWE all encode through FixedPoint and raise its range error,
    which is also a ValueError (and an OverflowError, as the SMPC ring used to raise)."""
    params = rp.preset('n1024')
    encoders = [ShamirAggregator(precision=16).encoder, Encoding(16), Encoder(params, 4).fixed]
    assert all(isinstance(e, FixedPoint) for e in encoders)
    for encoder in encoders:
        with pytest.raises(FixedPointRangeError) as caught:
            encoder.encode(np.array([encoder.max_abs * 2 + 1]))
        assert isinstance(caught.value, ValueError) and isinstance(caught.value, OverflowError)
