"""Quantizer: rounding error and bias, the centred decoding, the wire format."""

import numpy as np
import pytest

from tfpriv.crypto.masking import Quantizer
from tfpriv.errors import FixedPointRangeError
from tfpriv.rng import Prg, RandomSource


def signed(quantizer, encoded):
    """Centred lift computed here: values >= 2^(b-1) stand for value - 2^b."""
    values = encoded.astype(np.uint64).astype(object)
    half, modulus = 2**(quantizer.bits - 1), 2**quantizer.bits
    return np.array([v - modulus if v >= half else v for v in values], dtype=np.float64)


@pytest.mark.parametrize('value', [5.3, -5.3])
def test_stochastic_rounding_is_unbiased(value):
    """y = +-5.3 units: R(y) is floor(y) or floor(y) + 1 with mean y.

    The mean of N draws has standard deviation sqrt(0.3 * 0.7 / N) ~ 1.0e-3
    for N = 200,000; the test allows 6 of them on either side (false alarm 2e-9).
    """
    n = 200_000
    quantizer = Quantizer(bits=32, precision=4, bound=1.0, rounding='stochastic')
    encoded = quantizer.encode(np.full(n, value / 16), 1.0, Prg(RandomSource(seed=1)))
    units = signed(quantizer, encoded)
    assert set(np.unique(units)) == {np.floor(value), np.floor(value) + 1}
    assert abs(units.mean() - value) <= 6 * np.sqrt(0.21 / n)


def test_deterministic_rounding_is_to_nearest():
    quantizer = Quantizer(bits=20, precision=8, bound=4.0, rounding='deterministic')
    values = np.random.default_rng(0).uniform(-4, 4, size=10_000)
    units = signed(quantizer, quantizer.encode(values, 0.5, Prg(RandomSource(seed=0))))
    error = units - 0.5 * values * 2**8
    assert np.max(np.abs(error)) <= 0.5
    assert np.max(np.abs(error)) > 0.49  # rounding happened (not truncation to a coarser grid)


@pytest.mark.parametrize('bits', [12, 24, 32, 40, 64])
def test_sum_mod_2b_decodes_to_the_signed_sum(bits):
    quantizer = Quantizer(bits=bits, precision=2, bound=100.0, rounding='deterministic')
    rng = np.random.default_rng(bits)
    parts = [rng.integers(-400, 401, size=50) / 4 for _ in range(5)]  # exact at f = 2
    total = np.zeros(50, dtype=quantizer.dtype)
    for part in parts:
        total += quantizer.encode(part, 1.0, Prg(RandomSource(seed=0)))
    decoded = quantizer.decode(quantizer.mask(total), 2.0)
    np.testing.assert_array_equal(decoded, np.sum(parts, axis=0) / 2.0)


@pytest.mark.parametrize('bits', [9, 20, 32, 48, 64])
def test_wire_round_trip_and_size(bits):
    quantizer = Quantizer(bits=bits, precision=0, bound=1.0)
    words = RandomSource(seed=bits).uint64(1000) >> np.uint64(64 - bits)
    values = words.astype(quantizer.dtype)
    data = quantizer.to_wire(values)
    assert len(data) == 1000 * ((bits + 7) // 8)
    np.testing.assert_array_equal(quantizer.from_wire(data, 1000), values)
    with pytest.raises(ValueError, match='expected'):
        quantizer.from_wire(data[:-1], 1000)


def test_headroom_boundary():
    """ceil(B 2^f) + n <= 2^(b-1) - 1 passes; one unit more raises."""
    Quantizer(bits=10, precision=3, bound=63.0).check_headroom(7)  # 504 + 7 = 511
    with pytest.raises(FixedPointRangeError, match='raise bits to >= 11'):
        Quantizer(bits=10, precision=3, bound=63.0).check_headroom(8)


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(bits=7, precision=0, bound=1.0), ValueError, 'bits must be >= 8'),
    (dict(bits=16, precision=15, bound=1.0), ValueError, 'precision must be <= 14'),
    (dict(bits=16, precision=4, bound=0.0), ValueError, 'bound must be > 0'),
    (dict(bits=16.0, precision=4, bound=1.0), TypeError, 'bits must be an int'),
])
def test_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        Quantizer(**kwargs)


@pytest.mark.parametrize('bad', [8.5, -8.5, np.nan, np.inf])
def test_a_value_out_of_range_in_any_block_is_refused(bad):
    """The range check runs block by block: a bad value in the last block (or a NaN, which
    compares false with everything) must still be refused, never encoded."""
    quantizer = Quantizer(bits=32, precision=8, bound=8.0, rounding='deterministic')
    update = np.zeros(3 * (1 << 15) + 7)
    update[-1] = bad
    with pytest.raises(FixedPointRangeError, match='exceeds bound=8'):
        quantizer.encode(update, 1.0, Prg(RandomSource(seed=0)))
    update[-1] = 8.0  # the bound itself is allowed
    assert signed(quantizer, quantizer.encode(update, 1.0, Prg(RandomSource(seed=0))))[-1] == 2048


@pytest.mark.parametrize('bits', [32, 30, 20, 64, 40])
def test_wire_message_is_the_header_then_each_value_mod_2_to_the_bits(bits):
    """Written in place (whole little-endian containers) or through `to_wire` (packed):
    either way the message is the header, then each value mod 2^b in ceil(b / 8) bytes,
    checked against Python ints."""
    quantizer = Quantizer(bits=bits, precision=0, bound=1.0)
    words = np.random.default_rng(bits).integers(0, 2**63, size=1000, dtype=np.uint64)
    header = b'\x03\x00\x00\x00\x07\x00\x00\x00'

    def write(out):
        out[...] = words.astype(out.dtype)  # wraps to the container: mod 2^32 or 2^64
    message = quantizer.wire_message(words.size, header, write)
    width = (bits + 7) // 8
    assert bytes(message[:8]) == header and len(message) == 8 + width * words.size
    expected = b''.join((int(w) % 2**bits).to_bytes(width, 'little') for w in words)
    assert bytes(message[8:]) == expected
