"""Tests written against the mutation survivors of round 8 (b) (docs/testing.md, issue #20):
Reed-Solomon decoding of Shamir shares, the fixed-point codec, the SMPC ring, protocols,
comparison, overflow checks and verified networks.

Every reference here is independent of the code under test: Python-int arithmetic, a
Lagrange interpolation over a small prime written in the test, two's complement by hand.
"""

import math
import re
from fractions import Fraction

import numpy as np
import pytest

from tfpriv.crypto.fixed_point import RING_MODULUS, FixedPoint
from tfpriv.crypto.shamir import reed_solomon
from tfpriv.crypto.smpc import Cluster, Encoding, SharedTensor, ring
from tfpriv.crypto.smpc.checked import VerifyingNetwork, verified_cluster
from tfpriv.crypto.smpc.party import Network, Party, Traffic
from tfpriv.errors import FixedPointRangeError, MalformedMessageError
from tfpriv.rng import Prg, RandomSource

U8 = np.dtype(np.uint64).str
P31 = 2**31 - 1


# ---- shamir/reed_solomon.py: robust decoding ----------------------------------------------

def _shares_by_hand(polys, xs, p):
    """Shares y_i = f(x_i) of each polynomial (coefficients, lowest first), Python ints."""
    return np.array([[sum(c * x**k for k, c in enumerate(f)) % p for f in polys] for x in xs],
                    dtype=np.int64)


def _poly_ref(a, p):
    """Coefficients (lowest first) without trailing zeros, reduced mod p."""
    a = [c % p for c in a]
    while a and a[-1] == 0:
        a.pop()
    return a


@pytest.mark.parametrize('a, b', [([3, 1, 4, 1, 5], [9, 2]), ([9, 2], [3, 1, 4, 1, 5]),
                                  ([0, 0, 7], [1]), ([5], [5]), ([], [2, 3]), ([2, 3], [])])
def test_polynomial_helpers_against_python_ints(a, b):
    """a - b, a b and a = q b + r over GF(13), written out coefficient by coefficient."""
    p, n = 13, max(len(a), len(b))
    padded = [(a + [0] * n)[:n], (b + [0] * n)[:n]]
    assert reed_solomon._sub(a, b, p) == _poly_ref([u - v for u, v in zip(*padded)], p)
    product = [0] * (len(a) + len(b))
    for i, u in enumerate(a):
        for j, v in enumerate(b):
            product[i + j] += u * v
    assert reed_solomon._mul(a, b, p) == _poly_ref(product, p)
    divisor = _poly_ref(b, p)
    if divisor:
        q, r = reed_solomon._divmod(a, divisor, p)
        assert len(r) < len(divisor) and len(q) <= max(len(a) - len(divisor) + 1, 0)
        qb = [0] * (len(q) + len(divisor))
        for i, u in enumerate(q):
            for j, v in enumerate(divisor):
                qb[i + j] += u * v
        assert _poly_ref([x + y for x, y in zip(qb, r + [0] * len(qb))], p) == _poly_ref(a, p)


def test_scalar_shares_outside_the_field_are_named():
    """One scalar shared among 7 (t = 3): a share of y + p and a negative one are wrong shares
    (the 1-D array is checked too), corrected, and their holders named."""
    xs, poly = [1, 2, 3, 4, 5, 6, 7], [123456, 7, 99]
    ys = _shares_by_hand([poly], xs, P31)[:, 0]
    ys[1] += P31  # the same residue, but no honest party sends it
    ys[5] = -ys[5]
    secret, bad = reed_solomon.decode(xs, ys, 3, P31, RandomSource(seed=1))
    assert secret.shape == () and int(secret) == 123456 and bad == (2, 6)
    zeroed, invalid = reed_solomon.out_of_field(ys, P31)
    assert invalid == (1, 5) and zeroed[1] == zeroed[5] == 0
    assert list(zeroed[[0, 2, 3, 4, 6]]) == list(ys[[0, 2, 3, 4, 6]])


@pytest.mark.parametrize('size', [1, 300])
def test_a_share_wrong_only_in_the_first_element_is_found(size):
    """Every element enters the probes, the first one too: party x = 4 wrong in element 0 only."""
    xs = [1, 2, 3, 4, 5, 6]
    polys = [[(17 * j + 5) % P31, j + 1, 3 * j] for j in range(size)]
    ys = _shares_by_hand(polys, xs, P31)
    ys[3, 0] = (ys[3, 0] + 1) % P31
    for seed in range(3):
        secret, bad = reed_solomon.decode(xs, ys, 3, P31, RandomSource(seed=seed))
        assert [int(v) for v in secret] == [f[0] for f in polys] and bad == (4,)



class _ZeroProbes(Prg):
    """A Prg whose `uniform_mod` draws are all 0 (every probe combination is 0), recorded."""

    def __init__(self):
        super().__init__(RandomSource(seed=0))
        self.calls = []

    def uniform_mod(self, modulus, shape):
        self.calls.append((modulus, shape))
        return np.zeros(shape, dtype=np.int64)


@pytest.mark.parametrize('p, m', [(P31, 6), (13, 6), (101, 9), (2**13 - 1, 5)])
def test_decoder_draws_from_the_given_rng_and_probes_until_escape_is_below_2_to_minus_40(p, m):
    """Probes that see nothing (all r_j = 0) never find the wrong party, so every full probe
    runs and decoding then fails: the k full probes are the fewest k >= 2 with m p^-k <= 2^-40
    (integers: m 2^40 <= p^k), each drawn from the rng given, after the sample's draw."""
    t = 2
    xs = list(range(1, m + 1))
    ys = _shares_by_hand([[j, 1] for j in range(10)], xs, p)
    ys[0] = (ys[0] + 1) % p
    prg = _ZeroProbes()
    with pytest.raises(reed_solomon.DecodingError):
        reed_solomon.decode(xs, ys, t, p, prg)
    k = 2
    while m * 2**40 > p**k:
        k += 1
    assert prg.calls == [(10, 10), (p, 10)] + [(p, 10)] * k


class _TopDraws(Prg):
    """A Prg whose `uniform_mod` draws are all modulus - 1 (probe coefficients r_j = -1)."""

    def __init__(self):
        super().__init__(RandomSource(seed=0))

    def uniform_mod(self, modulus, shape):
        return np.full(shape, modulus - 1, dtype=np.int64)


@pytest.mark.parametrize('size', [1, 2, 5])
def test_sampled_elements_are_indices_of_the_tensor(size):
    """The largest draw of the sample must still name an element (size - 1 for size >= 2,
    element 0 for one element); probes with r_j = -1 still find the one wrong party."""
    xs = [1, 2, 3, 4, 5]
    polys = [[40 + j, 3, 1] for j in range(size)]
    ys = _shares_by_hand(polys, xs, 101)
    ys[2, size - 1] = (ys[2, size - 1] + 1) % 101
    secret, bad = reed_solomon.decode(xs, ys, 3, 101, _TopDraws())  # m = 5, t = 3: e = 1
    assert [int(v) for v in secret] == [f[0] for f in polys] and bad == (3,)


def test_each_element_enters_a_full_probe_once_even_in_a_small_field():
    """GF(13), 13 elements, r_j = -1: a full probe is -sum_j y_ij, so a party wrong only in
    element 12 is found (were element j weighted j + 1 times, 13 r_12 = 0 would hide it; the
    sample, 13 copies of element 12, sums to 13 r y = 0 and finds nothing)."""
    xs = [1, 2, 3, 4, 5, 6]
    polys = [[j, 7] for j in range(13)]
    ys = _shares_by_hand(polys, xs, 13)
    ys[1, 12] = (ys[1, 12] + 1) % 13
    secret, bad = reed_solomon.decode(xs, ys, 2, 13, _TopDraws())
    assert [int(v) for v in secret] == list(range(13)) and bad == (2,)


def test_decoding_error_message_names_the_bound():
    xs = [1, 2, 3, 4, 5, 6]
    ys = _shares_by_hand([[5, 1, 2]], xs, P31)
    ys[[0, 3]] = (ys[[0, 3]] + 1) % P31
    with pytest.raises(reed_solomon.DecodingError) as error:
        reed_solomon.decode(xs, ys, 3, P31, RandomSource(seed=2))
    assert str(error.value) == (
        'more than 1 of the 6 shares are wrong: with threshold 3, 6 shares can correct at most '
        'floor((m - t) / 2) = 1; gather more shares or exclude the faulty parties')

# ---- smpc/checked.py: the verifying network -------------------------------------------------

def _words(*values):
    return np.array(values, dtype=np.uint64)


def test_well_formed_broadcast_is_the_plain_networks_sum_and_traffic():
    """Three well-formed messages: the same combined values and the same counts as `Network`."""
    contributions = [(_words(1, 2), _words(5)), (_words(10, 20), _words(6)),
                     (_words(100, 200), _words(7))]
    verifying, plain = VerifyingNetwork(3), Network()
    got = verifying.broadcast(contributions, (np.add, np.bitwise_xor))
    want = plain.broadcast(contributions, (np.add, np.bitwise_xor))
    assert [list(a) for a in got] == [[111, 222], [5 ^ 6 ^ 7]] == [list(a) for a in want]
    assert verifying.online == plain.online


@pytest.mark.parametrize('count', [2, 4])
def test_a_round_needs_exactly_one_message_per_party(count):
    network = VerifyingNetwork(3)
    with pytest.raises(MalformedMessageError) as error:
        network.broadcast([(_words(1),)] * count, (np.add,))
    assert str(error.value) == (f'a broadcast round needs one message from each of the 3 '
                                f'parties, got {count}')


def test_the_minority_sender_is_named_against_the_majority_form():
    network = VerifyingNetwork(4)
    good = (_words(1, 2),)
    with network.operation('multiply'), pytest.raises(MalformedMessageError) as error:
        network.broadcast([good, good, (_words(1),), good], (np.add,))
    assert str(error.value) == (
        f"malformed message in a broadcast round of multiply: party2 sent (((1,), '{U8}'),), "
        f"the others sent (((2,), '{U8}'),); stopping rather than computing a wrong result")


def test_without_a_majority_every_sender_is_named():
    """Two parties (a tie), or a majority form with the wrong number of arrays."""
    with pytest.raises(MalformedMessageError) as error:
        VerifyingNetwork(2).broadcast([(_words(1, 2),), (_words(1, 2, 3),)], (np.add,))
    assert str(error.value) == (
        f"malformed message in a broadcast round of a protocol step: party0 sent "
        f"(((2,), '{U8}'),); party1 sent (((3,), '{U8}'),); stopping rather than computing "
        f"a wrong result")
    pair = (_words(1), _words(2))
    with pytest.raises(MalformedMessageError) as error:  # all agree, but 2 arrays for 1 combiner
        VerifyingNetwork(3).broadcast([pair, pair, pair], (np.add,))
    assert re.search(r'party0 sent .*; party1 sent .*; party2 sent .*; stopping', str(error.value))
    assert 'the others sent' not in str(error.value)
    with pytest.raises(MalformedMessageError, match='party1 sent'):  # majority of 3: 2 arrays
        VerifyingNetwork(3).broadcast([pair, (_words(1),), pair], (np.add,))


def test_non_array_messages_are_described():
    good = (_words(1),)
    with pytest.raises(MalformedMessageError) as error:
        VerifyingNetwork(3).broadcast([good, _words(1), good], (np.add,))
    assert "party1 sent ('not a tuple of arrays: ndarray',)," in str(error.value)
    with pytest.raises(MalformedMessageError) as error:
        VerifyingNetwork(3).broadcast([good, good, [7]], (np.add,))
    assert "party2 sent (('not an array: int',),)," in str(error.value)
    with pytest.raises(MalformedMessageError) as error:  # a float64 array among uint64 ones
        VerifyingNetwork(3).broadcast([good, (np.array([1.0]),), good], (np.add,))
    assert "party1 sent (((1,), '<f8'),)," in str(error.value)
    # a NumPy scalar is an array message: its form is shape () and its dtype
    scalar = (np.uint64(3),)
    assert [int(v) for v in VerifyingNetwork(2).broadcast([scalar, scalar], (np.add,))] == [6]


def test_verified_cluster_wires_the_network_dealer_and_options():
    cluster = verified_cluster(3, Encoding(12), RandomSource(seed=1), check_overflow=True)
    assert isinstance(cluster.network, VerifyingNetwork) and cluster.network.num_parties == 3
    assert cluster.encoding == Encoding(12) and cluster.check_overflow is True
    assert cluster.dealer._network is cluster.network  # preprocessing counted on the same one
    cluster.dealer.triple(np.multiply, (2,), (2,), False, np.uint64)
    assert cluster.network.offline.rounds == 1 and cluster.network.offline.messages == 3
    network = VerifyingNetwork(2)
    own = verified_cluster(2, network=network)
    assert own.network is network and own.dealer._network is network
    assert own.check_overflow is False and own.encoding == Encoding()
    seeded = [verified_cluster(2, rng=RandomSource(seed=5)) for _ in range(2)]
    unseeded = [verified_cluster(2) for _ in range(2)]
    draws = [c.dealer.triple(np.multiply, (4,), (4,), False, np.uint64)[0][0] for c in seeded]
    assert np.array_equal(*draws)  # the given source keys the dealer
    owners = [c.client('input owner').prg.uint64(4) for c in seeded]
    assert np.array_equal(*owners)  # ... and the cluster: parties and input owners
    assert np.array_equal(*[c.parties[1].prg.uint64(4) for c in seeded])
    draws = [c.dealer.triple(np.multiply, (4,), (4,), False, np.uint64)[0][0] for c in unseeded]
    assert not np.array_equal(*draws)  # default: the OS CSPRNG, fresh each time


# ---- crypto/fixed_point.py: range and headroom checks -------------------------------------

def _units(bound, f):
    """floor(bound 2^f + 1/2) with exact rationals (a float bound is a dyadic rational)."""
    value = Fraction(bound) * 2**f
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


@pytest.mark.parametrize('modulus, ok', [(3, True), (2**62, True), (2**64, True), (2, False),
                                         (2**62 + 1, False), (2**63, False), (2**64 - 1, False),
                                         (2**64 + 1, False)])
def test_modulus_is_3_to_2_62_or_exactly_2_64(modulus, ok):
    if ok:
        assert FixedPoint(modulus, 0).max_int == (modulus - 1) // 2
    else:
        with pytest.raises(ValueError, match=rf'modulus must be in \[3, 2\^62\] or be 2\^64, '
                                             rf'got {modulus}$'):
            FixedPoint(modulus, 0)


def test_precision_and_limit_bounds_are_inclusive():
    assert FixedPoint(1009, 0).scale == 1.0 and FixedPoint(1009, 62).scale == 2.0**62
    with pytest.raises(ValueError, match='precision must be <= 62'):
        FixedPoint(1009, 63)
    for limit in (1, 504):
        assert FixedPoint(1009, 2, limit).max_int == limit
        assert FixedPoint(1009, 2, limit).max_abs == limit / 4
    for limit, match in ((0, 'limit must be >= 1'), (505, 'limit must be <= 504')):
        with pytest.raises(ValueError, match=match):
            FixedPoint(1009, 2, limit)


def test_encode_and_lift_at_the_edges_of_the_range():
    """m = 1009, f = 0: L = 504; residues 0..504 stand for themselves, 505..1008 for r - m."""
    fp = FixedPoint(1009, 0)
    assert list(fp.encode(np.array([0.0, 504.0, -504.0, -1.0]))) == [0, 504, 505, 1008]
    lifted = fp.lift(np.array([0, 504, 505, 1008], dtype=np.int32))
    assert lifted.dtype == np.int64 and list(lifted) == [0, 504, -504, -1]
    for outside in (505.0, -505.0):
        with pytest.raises(FixedPointRangeError, match='limit is 504'):
            fp.encode(np.array([outside]))
    for residue in (-1, 1009):
        with pytest.raises(ValueError, match=r'must lie in \[0, 1009\)'):
            fp.lift(np.array([residue]))
    assert fp.encode(np.zeros(0)).size == 0 and fp.lift(np.zeros(0, np.int64)).size == 0
    with pytest.raises(TypeError, match='encoded values must be integers, got dtype float64'):
        fp.lift(np.array([1.0]))
    # an even modulus: 2^61 is not a value of Z_2^62 (its negative is not representable)
    even = FixedPoint(2**62, 0)
    assert list(even.lift(np.array([2**61 - 1, 2**61 + 1]))) == [2**61 - 1, -(2**61 - 1)]
    with pytest.raises(FixedPointRangeError, match=f'magnitude {2**61} > {2**61 - 1}'):
        even.lift(np.array([2**61]))


def test_check_range_and_a_limit_below_half_the_modulus():
    fp = FixedPoint(1009, 1, limit=100)
    fp.check_range(np.array([-100, 100]))
    for value in (-101, 101):
        with pytest.raises(FixedPointRangeError, match=f'magnitude 101 > 100: the computation'):
            fp.check_range(np.array([0, value]))
    assert list(fp.encode(np.array([50.0, -50.0]))) == [100, 909]
    with pytest.raises(FixedPointRangeError):
        fp.encode(np.array([50.5]))
    with pytest.raises(FixedPointRangeError, match='magnitude 101'):
        fp.lift(np.array([101]))
    assert fp.decode(np.array([100, 909])).tolist() == [50.0, -50.0]
    assert fp.decode(np.array([100]), precision=3).tolist() == [12.5]


def test_values_whose_scaled_magnitude_reaches_2_63_are_refused_not_wrapped():
    """round(x 2^f) = 2^63 would wrap to -2^63 in int64, whose |.| is negative again."""
    ring = FixedPoint(RING_MODULUS, 1)
    for value in (2.0**62, -(2.0**62), 2.0**70):
        with pytest.raises(FixedPointRangeError, match='does not fit the fixed-point range'):
            ring.encode(np.array([1.0, value]))
    top = FixedPoint(RING_MODULUS, 0)
    assert top.lift(top.encode(np.array([2.0**62]))).tolist() == [2**62]


def test_units_and_largest_precision_against_exact_rationals():
    fp = FixedPoint(2**31 - 1, 16)
    for bound in (0.0, 0.5, 1.0, 2.5, 3.0 / 7, 1000.25, 2.0**-17, 3 * 2.0**-18):
        assert fp.units(bound) == _units(bound, 16)
        assert fp.units(bound, 3) == _units(bound, 3)
    for bounds in ([1.0], [0.75, 0.75, 2.0], [2.0**30 - 1], [0.0], [2.0**31]):
        fits = [f for f in range(63) if sum(_units(b, f) for b in bounds) <= 2**30 - 1]
        assert fp.largest_precision(bounds) == (max(fits) if fits else -1)


def test_headroom_accepts_exactly_what_fits_and_names_the_figures():
    fp = FixedPoint(1009, 3)  # L = 504; units(2.5) = 20
    fp.check_headroom(3, 0.0)
    fp.check_headroom(2, [0.0, 63.0])  # 504 exactly
    with pytest.raises(FixedPointRangeError) as error:
        fp.check_headroom(2, [0.0625, 63.0])  # units 1 (round half up) + 504
    assert str(error.value) == (
        'summing 2 fixed-point values bounded by [0.0625, 63.0] at precision 3 needs up to 505 '
        'but modulus 1009 only represents magnitudes up to 504: use precision <= 2 bits')
    with pytest.raises(FixedPointRangeError) as error:
        fp.check_headroom(26, 2.5)
    assert str(error.value).endswith('needs up to 520 but modulus 1009 only represents '
                                     'magnitudes up to 504: at most 25 terms of this bound '
                                     'fit, or use precision <= 2 bits')
    for bad in ([1.0, np.nan], [1.0, np.inf], [-0.5, 1.0]):
        with pytest.raises(ValueError, match='bounds must be finite and non-negative'):
            fp.check_headroom(2, bad)
    with pytest.raises(ValueError, match=r'expected one bound or 2 bounds, got shape \(3,\)'):
        fp.check_headroom(2, [1.0, 1.0, 1.0])


def test_argument_names_and_exact_messages():
    with pytest.raises(TypeError, match=r'^modulus must be an int, got float 1009.0$'):
        FixedPoint(1009.0, 2)
    with pytest.raises(ValueError, match=rf'^limit must be <= {2**61 - 1}, got {2**61}$'):
        FixedPoint(2**62, 0, limit=2**61)  # (m - 1) // 2 exactly, not a float near it
    with pytest.raises(ValueError, match='^limit must be <= 504, got 505$'):
        FixedPoint(1009, 0, limit=505)
    with pytest.raises(ValueError, match='^cannot encode NaN or infinite values$'):
        FixedPoint(1009, 0).encode(np.array([np.nan]))
    fp = FixedPoint(1009, 3)  # L = 504: the sum 300 + 200.5 fits at f = 0 only
    with pytest.raises(FixedPointRangeError, match='needs up to 4004 .* use precision <= 0 bits$'):
        fp.check_headroom(2, [300.0, 200.5])
    with pytest.raises(FixedPointRangeError, match=': no precision fits: lower the bound or use '
                                                   'a larger modulus$'):
        fp.check_headroom(2, [300.0, 205.0])


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.int16, np.int64])
def test_narrow_inputs_are_scaled_in_float64(dtype):
    """1000 2^8 overflows float16 (largest 65504): the scaling must not stay in the input dtype."""
    ring = FixedPoint(RING_MODULUS, 8)
    values = np.array([3, -2, 1000], dtype=dtype)
    want = [3 * 2**8, 2**64 - 2 * 2**8, 1000 * 2**8]
    assert [int(w) for w in ring.encode(values)] == want


def test_bounds_given_as_huge_python_ints_are_range_errors():
    fp = FixedPoint(1009, 3)
    with pytest.raises(FixedPointRangeError, match='at most 0 terms of this bound fit'):
        fp.check_headroom(1, 2**70)
    with pytest.raises(FixedPointRangeError, match='no precision fits'):
        fp.check_headroom(2, [2**70, 1])


# ---- smpc/ring.py: words, bit planes, limb matmul -------------------------------------------

def test_signed_and_from_int_convert_any_integer_dtype_by_value():
    """Two's complement written out: w >= 2^63 stands for w - 2^64."""
    words = [0, 1, 2**32 - 1]
    for dtype in (np.uint8, np.uint32, np.uint64):
        narrow = np.array([w % np.iinfo(dtype).max for w in words], dtype=dtype)
        assert ring.signed(narrow).tolist() == [int(w) for w in narrow]
    assert ring.signed([2**64 - 1, 2**63, 5]).tolist() == [-1, -2**63, 5]
    for dtype in (np.int8, np.int32, np.int64):
        values = np.array([-1, 0, 7, -100], dtype=dtype)
        assert ring.from_int(values).tolist() == [v % 2**64 for v in (-1, 0, 7, -100)]
    assert ring.from_int([-2**63, 2**63 - 1]).tolist() == [2**63, 2**63 - 1]


def test_encoding_precision_bound_is_named_exactly():
    with pytest.raises(ValueError, match='^precision must be <= 40, got 41$'):
        Encoding(41)
    assert Encoding(40).max_product == 2.0**62 / 2.0**80


@pytest.mark.parametrize('count', [1, 8, 13])
def test_bit_planes_of_narrower_words_by_value(count):
    """Bit j of word i sits at bit i mod 8 of byte i // 8 of plane j (Python ints)."""
    values = [(2654435761 * (i + 1)) % 2**32 for i in range(count)]
    planes = ring.bit_planes(np.array(values, dtype=np.uint32))
    assert planes.shape == (64, -(-count // 8))
    for j in range(64):
        for i, v in enumerate(values):
            assert (int(planes[j, i // 8]) >> (i % 8)) & 1 == (v >> j) & 1


def test_matmul_takes_a_vector_on_the_left_and_only_a_matrix_on_the_right():
    prg = Prg(RandomSource(seed=9))
    a, b = prg.uint64((300,)), prg.uint64((300, 2))
    want = [sum(int(x) * int(y[n]) for x, y in zip(a, b)) % 2**64 for n in range(2)]
    assert ring.matmul(a, b).tolist() == want
    for left, right in (((2, 3), (3,)), ((2, 3), (3, 2, 1)), ((), (1, 2))):
        with pytest.raises(ValueError, match=re.escape(f'cannot multiply shapes {left} and '
                                                       f'{right}')):
            ring.matmul(np.zeros(left, np.uint64), np.zeros(right, np.uint64))


# ---- smpc/tensor.py: operands bounded before the product wraps -----------------------------

def _integers(cluster, values):
    return SharedTensor.share(cluster, np.array(values, dtype=np.int64), precision=0)


def _checked(num_parties=3, precision=16):
    return Cluster(num_parties, Encoding(precision), rng=RandomSource(seed=21),
                   check_overflow=True)


@pytest.mark.parametrize('num_parties', [2, 3])
def test_shared_operands_are_bounded_at_exactly_2_to_the_31_and_30_words(num_parties):
    """Element-wise (K = 1): |words| < 2^31, i.e. -2^31 and 2^31 - 1 pass, 2^31 and -2^31 - 1
    do not; a dot product of K = 2 terms: 2^30 (K A B <= 2^62 with A = B)."""
    cluster = _checked(num_parties)
    for bound, left, ones in ((2**31, [[1, 1]], [[1], [1]]), (2**30, [[1, 1]], [[1], [1]])):
        pair = bound == 2**30
        ok = _integers(cluster, [[bound - 1, -bound]])
        if pair:
            assert (ok @ _integers(cluster, ones)).reveal().tolist() == [[-1]]
        else:
            assert (ok * _integers(cluster, left)).reveal().tolist() == [[bound - 1, -bound]]
        for outside in (bound, -bound - 1):
            bad = _integers(cluster, [[outside, 0]])
            with pytest.raises(FixedPointRangeError, match='^1 operand value'):
                bad @ _integers(cluster, ones) if pair else bad * _integers(cluster, left)
    with pytest.raises(FixedPointRangeError, match='^2 operand value'):  # both operands count
        _integers(cluster, [2**31]) * _integers(cluster, [-2**31 - 1])


@pytest.mark.parametrize('factor, limit', [(3, 2**62 // 3), (-1, 2**62), (2**62 - 1, 1)])
def test_a_public_factor_bounds_the_other_operand_exactly(factor, limit):
    """|x| < floor(2^62 / (K |b|)) words, in integers (2^62 // 3 = 1537228672809129301, not
    the float 2^62 / 3); at most 2^62 - 1 words can be shared at all."""
    cluster = _checked()
    inside = [min(limit, 2**62) - 1, -min(limit, 2**62 - 1)]
    got = (_integers(cluster, inside) * factor).reveal().tolist()
    assert got == [v * factor for v in inside]
    if limit < 2**62:
        with pytest.raises(FixedPointRangeError, match='^1 operand value'):
            _integers(cluster, [limit]) * factor
    empty = _integers(cluster, np.zeros(0, np.int64)) * np.zeros(0, np.int64)
    assert empty.reveal().shape == (0,)  # no largest public word: nothing to bound


def test_the_refusal_gives_the_bound_in_real_units():
    """f = 16, x * y shared: words below 2^31, so |x| reaches 2^31 / 2^16 = 32768."""
    cluster = _checked()
    x = SharedTensor.share(cluster, np.array([40000.0, 1.0]))
    with pytest.raises(FixedPointRangeError) as error:
        x * x
    assert str(error.value).startswith(
        '2 operand value(s) of a product reach 32768 in magnitude: the product value could')


def test_public_matrix_on_the_left_is_checked_in_its_own_orientation():
    cluster = _checked()
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.arange(12, dtype=np.int64).reshape(3, 4) - 5
    got = (a @ _integers(cluster, b)).reveal()
    want = [[sum(int(a[i, k]) * int(b[k, j]) for k in range(3)) for j in range(4)]
            for i in range(2)]
    assert got.tolist() == want


def test_mean_checks_the_sum_before_truncating_only_when_asked():
    """A sum of 3 2^61 words is beyond 2^62: refused with check_overflow, before truncation;
    a valid mean costs one round (the truncation) without the check."""
    cluster = _checked()
    big = SharedTensor.share(cluster, np.array([3 * 2.0**44, 3 * 2.0**44]))
    with pytest.raises(FixedPointRangeError) as error:
        big.mean()
    assert str(error.value) == ('a sum left the fixed-point range: it must stay below 2^62 '
                                'words before truncation')
    small = SharedTensor.share(cluster, np.array([1.5, 2.5, -1.0, 4.0]))
    assert abs(small.mean().reveal() - 1.75) <= 2.0**-16  # truncation: at most one unit
    plain = Cluster(3, rng=RandomSource(seed=22))
    values = SharedTensor.share(plain, np.array([1.5, 2.5, -1.0, 4.0]))
    before = plain.network.online.rounds
    mean = values.mean()
    assert plain.network.online.rounds - before == 1
    assert abs(mean.reveal() - 1.75) <= 2.0**-16


def test_sharing_and_revealing_are_counted_under_their_names_and_refuse_bad_arguments():
    cluster = Cluster(3, rng=RandomSource(seed=23))
    x = SharedTensor.share(cluster, np.ones((2, 5)))
    assert cluster.network.by_operation['share'] == Traffic(1, 3, 3 * 80)
    x.reveal(to=cluster.parties[0])
    assert cluster.network.by_operation['reveal'] == Traffic(1, 2, 2 * 80)
    with pytest.raises(TypeError, match='^cluster must be a Cluster, got str$'):
        SharedTensor.share('cluster', np.ones(2))
    with pytest.raises(TypeError, match='^to must be a Party or None, got int$'):
        x.reveal(to=0)


def test_the_input_owner_given_draws_the_shares():
    """The same owner (seeded) in two differently seeded clusters deals the same shares."""
    shares = []
    for seed in (1, 2):
        cluster = Cluster(2, rng=RandomSource(seed=seed))
        owner = Party('alice', RandomSource(seed=7))
        shares.append(SharedTensor.share(cluster, np.ones(4), owner=owner)._shares()[1])
    assert np.array_equal(*shares)


def test_public_addends_keep_integers_exact_and_broadcast_every_share():
    cluster = Cluster(3, rng=RandomSource(seed=24))
    x = _integers(cluster, [1, -2, 3])
    total = x + np.array([10, 20, 30])
    assert total.precision == 0 and total.reveal().tolist() == [11, 18, 33]
    wide = x + np.array([[0, 0, 0], [1, 1, 1]])
    assert [s.shape for s in wide._shares()] == [(2, 3)] * 3
    assert wide.reshape(6).reveal().tolist() == [1, -2, 3, 2, -1, 4]
    with pytest.raises(ValueError, match=re.escape('shapes (3,) and (2,) do not broadcast')):
        x + np.array([1, 2])


# ---- round 9 (b): the Shamir and SMPC secure aggregators (shamir/secagg.py, smpc/secagg.py) ----

def _recorder(calls):
    def progress(label, done, total, values=None):
        del values
        calls.append((label, done, total))
    return progress


def test_shamir_bound_is_inclusive_and_an_empty_update_needs_no_bound_check():
    """|u| = B exactly is allowed (the headroom proof covers |u| <= B); a zero-size update has
    no value to check, whatever B is."""
    from tfpriv.crypto.shamir.secagg import ShamirAggregator  # pylint: disable=import-outside-toplevel
    aggregator = ShamirAggregator(bound=0.5, rng=RandomSource(seed=1))
    average, _ = aggregator.aggregate([[np.array([0.5, -0.5])], [np.array([0.25, 0.0])]])
    assert np.allclose(average[0], [0.375, -0.25], atol=2**-20)
    empty, _ = aggregator.aggregate([[np.zeros(0)], [np.zeros(0)]])
    assert empty[0].shape == (0,)


def test_shamir_holder_sums_are_drawn_from_the_aggregator_rng():
    """Holder 0's sum of shares (seen through a pass-through `corrupt` hook) repeats with the
    same seeded rng and changes with another seed: the shares come from `rng`."""
    from tfpriv.crypto.secagg import Faults  # pylint: disable=import-outside-toplevel
    from tfpriv.crypto.shamir.secagg import ShamirAggregator  # pylint: disable=import-outside-toplevel
    updates = [[np.array([0.1, -0.2, 0.3])], [np.array([0.0, 0.5, -0.5])]]

    def holder_zero(seed):
        seen = []
        faults = Faults(corrupt={0: lambda row: seen.append(row.copy()) or row})
        ShamirAggregator(rng=RandomSource(seed=seed), faults=faults).aggregate(updates)
        return seen[0]
    assert np.array_equal(holder_zero(5), holder_zero(5))
    assert not np.array_equal(holder_zero(5), holder_zero(6))


def test_shamir_errors_name_the_setting_the_client_and_the_tolerance():
    from tfpriv.crypto.secagg import Faults  # pylint: disable=import-outside-toplevel
    from tfpriv.crypto.shamir.secagg import ShamirAggregator  # pylint: disable=import-outside-toplevel
    updates = [[np.array([0.1])], [np.array([0.2])]]
    with pytest.raises(ValueError, match=re.escape('silent_clients must be indices in [0, 2), '
                                                   'got [5]')):
        ShamirAggregator(faults=Faults(silent_clients=[5])).aggregate(updates)
    with pytest.raises(ValueError, match='^no client with a positive weight sent its shares: '
                                         'nothing to aggregate$'):
        ShamirAggregator(faults=Faults(silent_clients=[0])).aggregate(updates, [1.0, 0.0])
    with pytest.raises(ValueError, match=re.escape('threshold 3 are needed (at most 2 may drop)')):
        ShamirAggregator(5, 3, faults=Faults(dropped_holders=[0, 1, 2])).aggregate(updates)
    with pytest.raises(FixedPointRangeError, match='^client 1 has an update value of magnitude '
                                                   '600 above the public bound 512'):
        ShamirAggregator().aggregate([[np.array([0.1])], [np.array([600.0])]])


def test_shamir_progress_counts_the_sending_clients():
    from tfpriv.crypto.secagg import Faults  # pylint: disable=import-outside-toplevel
    from tfpriv.crypto.shamir.secagg import ShamirAggregator  # pylint: disable=import-outside-toplevel
    calls = []
    ShamirAggregator(faults=Faults(silent_clients=[1]), progress=_recorder(calls)).aggregate(
        [[np.array([0.1])], [np.array([0.2])], [np.array([0.3])]])
    assert calls == [('clients', 0, 2), ('clients', 1, 2), ('clients', 2, 2)]


def test_shamir_correction_is_logged_with_the_holder(caplog):
    from tfpriv.crypto.secagg import Faults  # pylint: disable=import-outside-toplevel
    from tfpriv.crypto.shamir.secagg import ShamirAggregator  # pylint: disable=import-outside-toplevel
    with caplog.at_level('WARNING'):
        ShamirAggregator(rng=RandomSource(seed=2), faults=Faults(corrupt=[1])).aggregate(
            [[np.array([0.1, 0.2])], [np.array([0.3, 0.4])]])
    assert ('Shamir aggregation: holders [1] sent wrong sums and were corrected'
            in caplog.text), caplog.text


def test_shamir_without_robust_decoding_reads_the_first_t_holders_only():
    """robust=False interpolates the first t answering holders: a wrong sum from holder 4 of 5
    (t = 3) is never read, so the average is exact; reading all five would include it."""
    from tfpriv.crypto.secagg import Faults  # pylint: disable=import-outside-toplevel
    from tfpriv.crypto.shamir.secagg import ShamirAggregator  # pylint: disable=import-outside-toplevel
    updates = [[np.array([0.1, -0.2])], [np.array([0.3, 0.4])]]
    average, stats = ShamirAggregator(5, 3, robust=False, rng=RandomSource(seed=4),
                                      faults=Faults(corrupt=[4])).aggregate(updates)
    assert np.allclose(average[0], [0.2, 0.1], atol=2**-19)
    assert stats.extra['bad_holders'] == 0.0


def test_smpc_defaults_and_stats():
    """Three parties and 32 fractional bits by default (module docstring); the stats say so and
    time the call itself (between 0 and the wall time around it)."""
    import time  # pylint: disable=import-outside-toplevel
    from tfpriv.crypto.smpc.secagg import SmpcAggregator  # pylint: disable=import-outside-toplevel
    aggregator = SmpcAggregator(rng=RandomSource(seed=1))
    start = time.perf_counter()
    average, stats = aggregator.aggregate([[np.array([2.0**-32, 1.0])], [np.array([0.0, 1.0])]])
    elapsed = time.perf_counter() - start
    assert aggregator.num_parties == 3
    assert stats.extra == {'rounds': 2.0, 'parties': 3.0, 'precision': 32.0}
    assert 0.0 <= stats.seconds <= elapsed
    assert average[0][1] == 1.0


def test_smpc_shares_are_drawn_from_the_given_rng_or_the_os(monkeypatch):
    """The cluster that deals the round's shares gets the aggregator's rng: the one passed in,
    or a fresh OS-backed `RandomSource` when none is."""
    from tfpriv.crypto.smpc import secagg as smpc_secagg  # pylint: disable=import-outside-toplevel
    dealt = []

    class Spy(smpc_secagg.Cluster):
        def __init__(self, num_parties, encoding, rng=None):
            dealt.append(rng)
            super().__init__(num_parties, encoding, rng)
    monkeypatch.setattr(smpc_secagg, 'Cluster', Spy)
    updates = [[np.array([0.5])], [np.array([0.25])]]
    mine = RandomSource(seed=9)
    smpc_secagg.SmpcAggregator(rng=mine).aggregate(updates)
    assert dealt[-1] is mine
    smpc_secagg.SmpcAggregator().aggregate(updates)
    assert isinstance(dealt[-1], RandomSource) and dealt[-1] is not mine


def test_smpc_progress_counts_every_client():
    from tfpriv.crypto.smpc.secagg import SmpcAggregator  # pylint: disable=import-outside-toplevel
    calls = []
    SmpcAggregator(progress=_recorder(calls)).aggregate([[np.array([0.1])], [np.array([0.2])]])
    assert calls == [('clients', 0, 2), ('clients', 1, 2), ('clients', 2, 2)]


# ---- round 9 (b): the RLWE aggregator (rlwe/secagg.py) -------------------------------------

def _two_updates():
    return [[np.array([0.5, -0.25, 1.0])], [np.array([0.0, 0.75, -1.0])]]


def test_rlwe_bound_is_inclusive_and_an_empty_update_is_refused_in_one_line():
    """|u| = B is allowed; updates with no values are refused before any key is made (they
    used to fail inside the serializer: 'corrupt header (kind 1, seeded 0, batch 0)')."""
    from tfpriv.crypto.rlwe.secagg import RlweAggregator  # pylint: disable=import-outside-toplevel
    aggregator = RlweAggregator(precision=12, bound=0.5, rng=RandomSource(seed=1))
    average, _ = aggregator.aggregate([[np.array([0.5, -0.5])], [np.array([0.25, 0.0])]])
    assert np.allclose(average[0], [0.375, -0.25], atol=2**-12)
    with pytest.raises(ValueError, match='^the updates hold no values: there is nothing to '
                                         'encrypt$'):
        aggregator.aggregate([[np.zeros(0)], [np.zeros(0)]])
    with pytest.raises(FixedPointRangeError, match='^client 1 has an update value of magnitude '
                                                   '0.75 above the public bound 0.5'):
        aggregator.aggregate([[np.array([0.5])], [np.array([0.75])]])


def test_rlwe_round_is_drawn_from_the_aggregator_rng():
    """Key shares, encryptions and smudged partial decryptions all come from `rng`: the server's
    whole transcript repeats with the same seed and changes with another."""
    from tfpriv.crypto.rlwe.secagg import RlweAggregator  # pylint: disable=import-outside-toplevel

    def transcript(seed):
        aggregator = RlweAggregator('n2048', precision=12, bound=4.0, kappa=0,
                                    rng=RandomSource(seed=seed))
        aggregator.aggregate(_two_updates())
        view = aggregator.transcript
        return ([view.public_key_shares[i] for i in sorted(view.public_key_shares)],
                view.ciphertexts, [view.partial_decryptions[i]
                                   for i in sorted(view.partial_decryptions)])

    first, again, other = transcript(3), transcript(3), transcript(4)
    for part in range(3):
        assert all(np.array_equal(a, b) for a, b in zip(first[part], again[part]))
        assert not any(np.array_equal(a, b) for a, b in zip(first[part], other[part]))


def test_rlwe_noise_bounds_use_the_collective_key(monkeypatch):
    """The collective key is the sum of N ternary key shares, so ||s||^2 can exceed n (the
    single-key default of `modswitch`): choosing widths, compressing and decompressing must
    bound noise with the key's own ||s||^2, the received ciphertexts are parsed for N key
    parties, and the widths keep kappa + log2 T + 2 bits of room (kappa for the smudging, log2 T
    for the T partial decryptions summed, 2 spare)."""
    from tfpriv.crypto.rlwe import secagg as rlwe_secagg  # pylint: disable=import-outside-toplevel
    seen = {'key': [], 'norms': [], 'parties': [], 'reserve': []}

    def spy(module, name, record):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            record(args, kwargs)
            return original(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)

    original_setup = rlwe_secagg.multiparty.setup_keys

    def setup_keys(*args, **kwargs):
        result = original_setup(*args, **kwargs)
        seen['key'].append(result[1])
        return result
    monkeypatch.setattr(rlwe_secagg.multiparty, 'setup_keys', setup_keys)
    spy(rlwe_secagg.modswitch, 'choose_widths',
        lambda a, k: (seen['reserve'].append(a[4]), seen['norms'].append(a[5])))
    spy(rlwe_secagg.modswitch, 'compress', lambda a, k: seen['norms'].append(a[3]))
    spy(rlwe_secagg.modswitch, 'decompress', lambda a, k: seen['norms'].append(a[1]))
    spy(rlwe_secagg.serialize, 'loads', lambda a, k: seen['parties'].append(k['key_parties']))
    aggregator = rlwe_secagg.RlweAggregator('n2048', precision=12, bound=4.0, weight_bits=6,
                                            compress_updates=True, kappa=0,
                                            rng=RandomSource(seed=5))
    updates = _two_updates() + [[np.array([0.25, 0.25, 0.25])]]
    _, stats = aggregator.aggregate(updates)
    key = seen['key'][0]
    assert key.num_parties == 3 and key.secret_norm2 > aggregator.params.n
    assert seen['norms'] == [key.secret_norm2] * 5  # widths, 3 compressions, 1 decompression
    assert seen['parties'] == [3, 3, 3]
    threshold = int(stats.extra['threshold'])
    assert threshold == 2 and seen['reserve'] == [0 + math.log2(threshold) + 2]


def test_rlwe_weights_exact_when_integer_quantized_when_huge_and_refused_when_empty():
    from tfpriv.crypto.rlwe.secagg import RlweAggregator  # pylint: disable=import-outside-toplevel
    aggregator = RlweAggregator(precision=12, bound=4.0, rng=RandomSource(seed=6))
    updates = _two_updates()
    only_first, _ = aggregator.aggregate(updates, [1, 0])  # integer weights summing to 1
    assert np.allclose(only_first[0], updates[0][0], atol=2**-12)
    # past 2^62 integer weights are no longer exact in int64 arithmetic: quantized instead
    huge, _ = aggregator.aggregate(updates, [2**62 - 2**11, 2**11 + 1])
    assert np.allclose(huge[0], updates[0][0], atol=2**-9)
    five = [[np.array([0.1])]] * 5
    with pytest.raises(ValueError, match='^all weights round to 0 at weight_bits = 1: raise '
                                         'weight_bits$'):
        RlweAggregator(weight_bits=1).aggregate(five, [0.5] * 5)


def test_rlwe_weighted_sum_past_the_plaintext_range_is_refused_with_its_size():
    """2^30 (the weight sum) x 2^16 (one bound in fixed point) exceeds the plaintext range."""
    from tfpriv.crypto.rlwe.secagg import RlweAggregator  # pylint: disable=import-outside-toplevel
    aggregator = RlweAggregator(precision=16, bound=1.0)
    limit = aggregator.encoder.fixed.max_int
    reach = (2**30 + 3) * 2**16
    assert reach > limit
    with pytest.raises(FixedPointRangeError, match=re.escape(
            f'the weighted sum could reach {reach} > {limit} (t = {aggregator.params.t})')):
        aggregator.aggregate(_two_updates(), [2**30, 3])


def test_rlwe_stats_time_the_round_and_its_key_setup():
    import time  # pylint: disable=import-outside-toplevel
    from tfpriv.crypto.rlwe.secagg import RlweAggregator  # pylint: disable=import-outside-toplevel
    start = time.perf_counter()
    _, stats = RlweAggregator(rng=RandomSource(seed=7)).aggregate(_two_updates())
    elapsed = time.perf_counter() - start
    assert 0.0 < stats.extra['setup_seconds'] <= stats.seconds <= elapsed
