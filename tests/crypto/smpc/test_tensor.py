"""Every SharedTensor operation against its plaintext result, with 2 and 3 parties."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tfpriv.crypto.smpc import Cluster, Encoding, SharedTensor, ring, stack
from tfpriv.errors import FixedPointRangeError
from tfpriv.rng import RandomSource

ULP = 2.0**-16
SETTINGS = dict(max_examples=12, deadline=None)


@pytest.fixture(scope='module', params=[2, 3], ids=['2 parties', '3 parties'])
def cluster(request):
    return Cluster(request.param, rng=RandomSource(seed=request.param))


def floats(shape, bound=1000.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, width=32))


def share(cluster, values, **kwargs):
    return SharedTensor.share(cluster, values, **kwargs)


def close(shared, expected, tol):
    got = shared.reveal()
    assert got.shape == np.shape(expected)
    error = np.abs(got - np.asarray(expected))
    assert np.all(error <= tol), f'max error {error.max()} above {np.max(tol)}'


@settings(**SETTINGS)
@given(x=floats((3, 4)), y=floats((3, 4)), c=st.floats(-100, 100))
def test_linear_operations(cluster, x, y, c):
    a, b = share(cluster, x), share(cluster, y)
    close(a + b, x + y, 2 * ULP)
    close(a - b, x - y, 2 * ULP)
    close(-a, -x, ULP)
    close(a + c, x + c, 2 * ULP)
    close(c - a, c - x, 2 * ULP)
    close(y + a, x + y, 2 * ULP)  # ndarray + SharedTensor
    close(a + y[0], x + y[0], 2 * ULP)  # broadcasting
    close(a.sum(), x.sum(), 12 * ULP)
    close(a.sum(axis=0), x.sum(axis=0), 3 * ULP)
    close(a.reshape(4, 3), x.reshape(4, 3), ULP)
    close(a.T, x.T, ULP)
    close(a.transpose(1, 0)[1:3], x.T[1:3], ULP)


@settings(**SETTINGS)
@given(x=floats((3, 4), 100.0), y=floats((3, 4), 100.0), c=st.floats(-100, 100),
       k=st.integers(-1000, 1000))
def test_products(cluster, x, y, c, k):
    a, b = share(cluster, x), share(cluster, y)
    # each input rounds by ULP/2; the product of bounded inputs adds |x|+|y| of that, + 1 ULP
    close(a * b, x * y, (np.abs(x) + np.abs(y) + 2) * ULP)
    close(a * c, x * c, (abs(c) + np.abs(x) + 2) * ULP)
    close(a * k, x * k, (abs(k) + 1) * ULP)
    close(k * a, x * k, (abs(k) + 1) * ULP)
    close(a * np.arange(4), x * np.arange(4), 4 * ULP)


@settings(**SETTINGS)
@given(x=floats((5, 6), 10.0), w=floats((6, 3), 10.0))
def test_matmul_shared_and_public(cluster, x, w):
    a, b = share(cluster, x), share(cluster, w)
    tol = 6 * 20 * ULP + 2 * ULP
    close(a @ b, x @ w, tol)
    close(a @ w, x @ w, tol)
    close(x.T @ share(cluster, x), x.T @ x, 5 * 20 * ULP + 2 * ULP)
    close(a @ np.arange(18).reshape(6, 3), x @ np.arange(18).reshape(6, 3), 100 * ULP)


def test_mean(cluster):
    x = np.linspace(-50, 50, 24).reshape(4, 6)
    a = share(cluster, x)
    close(a.mean(), x.mean(), 1e-3)
    close(a.mean(axis=1), x.mean(axis=1), 1e-3)


def _conv_reference(x, w, stride, padding):
    kh, kw = w.shape[:2]
    if padding == 'same':
        out_h, out_w = -(-x.shape[1] // stride), -(-x.shape[2] // stride)
        ph = max((out_h - 1) * stride + kh - x.shape[1], 0)
        pw = max((out_w - 1) * stride + kw - x.shape[2], 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, w.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('padding', ['valid', 'same'])
def test_conv2d_matches_reference(cluster, stride, padding):
    rng = np.random.default_rng(stride)
    x, w = rng.normal(size=(2, 7, 6, 3)), rng.normal(size=(3, 2, 3, 4))
    expected = _conv_reference(x, w, stride, padding)
    a = share(cluster, x)
    close(a.conv2d(share(cluster, w), stride, padding), expected, 60 * ULP)
    close(a.conv2d(w, (stride, stride), padding), expected, 60 * ULP)


@settings(**SETTINGS)
@given(x=floats((12,), 1e6), y=floats((12,), 1e6))
def test_comparisons_are_exact(cluster, x, y):
    encoding = cluster.encoding
    x, y = encoding.decode(encoding.encode(x)), encoding.decode(encoding.encode(y))
    y[:3] = x[:3]  # ties
    a, b = share(cluster, x), share(cluster, y)
    assert np.array_equal((a < b).reveal(), x < y)
    assert np.array_equal((a > b).reveal(), x > y)
    assert np.array_equal((a <= b).reveal(), x <= y)
    assert np.array_equal((a >= b).reveal(), x >= y)
    assert np.array_equal((a < 0.5).reveal(), x < 0.5)
    assert (a < b).precision == 0


def test_comparisons_near_the_range_limits(cluster):
    limit = cluster.encoding.max_abs
    x = np.array([limit * 0.99, -limit * 0.99, 2.0**-16, -2.0**-16, 0.0, limit / 2])
    y = np.array([-limit * 0.99, limit * 0.99, 0.0, 0.0, 0.0, limit / 2 - 1.0])
    a, b = share(cluster, x), share(cluster, y)
    assert np.array_equal((a > b).reveal(), x > y)
    assert np.array_equal(a.relu().reveal(), np.maximum(x, 0))
    assert np.array_equal(a.maximum(b).reveal(), np.maximum(x, y))
    np.testing.assert_allclose((a + b).reveal(), x + y, atol=ULP)
    with pytest.raises(OverflowError, match='left the fixed-point range'):
        (a - b).reveal()  # 1.98 times the limit


@settings(**SETTINGS)
@given(x=floats((4, 5), 1e4))
def test_relu_and_maximum(cluster, x):
    x = cluster.encoding.decode(cluster.encoding.encode(x))
    a = share(cluster, x)
    assert np.array_equal(a.relu().reveal(), np.maximum(x, 0))
    assert np.array_equal(a.maximum(x[::-1]).reveal(), np.maximum(x, x[::-1]))
    assert np.array_equal(a.maximum(share(cluster, -x)).reveal(), np.abs(x))


@pytest.mark.parametrize('pool,strides', [(2, 1), (2, 2), ((3, 2), (1, 2))])
def test_max_pool2d(cluster, pool, strides):
    rng = np.random.default_rng(0)
    x = cluster.encoding.decode(cluster.encoding.encode(rng.normal(size=(2, 6, 7, 3))))
    ph, pw = (pool, pool) if isinstance(pool, int) else pool
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    oh, ow = (6 - ph) // sh + 1, (7 - pw) // sw + 1
    expected = np.array([[[x[:, i * sh:i * sh + ph, j * sw:j * sw + pw].max(axis=(1, 2))
                           for j in range(ow)] for i in range(oh)]]).squeeze(0)
    expected = expected.transpose(2, 0, 1, 3)
    assert np.array_equal(share(cluster, x).max_pool2d(pool, strides).reveal(), expected)


@settings(**SETTINGS)
@given(x=hnp.arrays(np.float64, (6, 7), elements=st.sampled_from([-3.5, -1.0, 0.0, 0.25, 2.0])))
def test_argmax_first_of_ties(cluster, x):
    a = share(cluster, x)
    assert np.array_equal(a.argmax().reveal(), np.argmax(x, axis=-1))
    assert np.array_equal(a.argmax(0).reveal(), np.argmax(x, axis=0))


def test_integer_tensors_and_promotion(cluster):
    ints = share(cluster, np.array([3, -4, 5]), precision=0)
    assert np.array_equal(ints.reveal(), [3, -4, 5]) and ints.reveal().dtype == np.int64
    mixed = ints + share(cluster, np.array([0.5, 0.5, 0.5]))
    close(mixed, [3.5, -3.5, 5.5], ULP)
    close(ints * share(cluster, np.array([1.5, 2.0, -1.0])), [4.5, -8.0, -5.0], 2 * ULP)
    close(ints + 0.25, [3.25, -3.75, 5.25], ULP)


def test_stack(cluster):
    x = np.arange(6.0).reshape(2, 3)
    close(stack([share(cluster, x), share(cluster, -x)], axis=1), np.stack([x, -x], 1), ULP)


def test_reveal_to_a_party_counts_its_messages(cluster):
    alice = cluster.client('alice')
    a = share(cluster, np.ones(10), owner=alice)
    before = cluster.network.online.bytes
    np.testing.assert_allclose(a.reveal(to=alice), np.ones(10))
    assert cluster.network.online.bytes - before == cluster.num_parties * 80
    before = cluster.network.online.bytes
    a.reveal(to=cluster.parties[0])  # party 0 already holds its own share
    assert cluster.network.online.bytes - before == (cluster.num_parties - 1) * 80


def test_traffic_is_counted_per_operation(cluster):
    n = cluster.num_parties
    a = share(cluster, np.linspace(-1, 1, 10))
    cluster.network.by_operation.clear()
    a.relu()
    relu = cluster.network.by_operation['relu']
    assert relu.rounds == 8  # 1 opening, 6 AND levels, 1 bit injection
    # every online message is part of an all-to-all opening: n (n - 1) messages each
    assert relu.messages > 0 and relu.messages % (n * (n - 1)) == 0 and relu.bytes > 0
    (a * a)
    multiply = cluster.network.by_operation['multiply']
    assert multiply.rounds == 2  # Beaver + truncation
    # three openings (d = x - a and e = y - b in one round, then the truncation's masked
    # value), each of the 10 words (8 bytes) sent by every party to the n - 1 others
    assert multiply.messages == 3 * n * (n - 1) and multiply.bytes == multiply.messages * 10 * 8
    (a * 3)
    assert cluster.network.by_operation['multiply'].rounds == 2  # integer factor: local
    assert cluster.network.offline.bytes > 0


def test_no_party_holds_another_partys_share(cluster):
    x = np.linspace(-1, 1, 8)
    a = share(cluster, x)
    shares = [party.share(a._handle) for party in cluster.parties]
    for i, party in enumerate(cluster.parties):
        assert party.share(a._handle) is shares[i]
        assert all(party.share(a._handle) is not shares[j] for j in range(len(shares)) if j != i)
    # any n - 1 shares are uniform words, unrelated to x: they do not decode to it
    partial = np.sum(shares[:-1], axis=0, dtype=np.uint64)
    assert not np.allclose(ring.signed(partial) / 2.0**16, x, atol=1.0)
    handle = a._handle
    del a
    assert all(handle not in party._store for party in cluster.parties)  # dropped with the tensor


def test_errors_are_clear(cluster):
    a = share(cluster, np.ones((2, 3)))
    other = Cluster(cluster.num_parties, rng=RandomSource(seed=9))
    with pytest.raises(ValueError, match='different parties'):
        a + share(other, np.ones((2, 3)))
    with pytest.raises(ValueError, match='do not broadcast'):
        a + share(cluster, np.ones((4,)))
    with pytest.raises(ValueError, match='do not broadcast'):
        a * np.ones((3, 2))
    with pytest.raises(ValueError, match='matmul needs'):
        a @ np.ones((2, 2))
    with pytest.raises(ValueError, match='channels'):
        share(cluster, np.ones((1, 4, 4, 2))).conv2d(np.ones((2, 2, 3, 1)))
    with pytest.raises(ValueError, match='padding'):
        share(cluster, np.ones((1, 4, 4, 2))).conv2d(np.ones((2, 2, 2, 1)), padding='full')
    with pytest.raises(OverflowError, match='fixed-point range'):
        share(cluster, [1e20])
    with pytest.raises(TypeError, match='cannot combine'):
        a + 'x'
    with pytest.raises(ValueError, match='precision'):
        share(cluster, [1.0], precision=8)
    with pytest.raises(TypeError, match='integers'):
        share(cluster, [1.5], precision=0)
    with pytest.raises(ValueError, match='at least 2'):
        Cluster(1)
    with pytest.raises(ValueError, match='reshape'):
        a.reshape(4, 2)
    with pytest.raises(ValueError, match='axis'):
        a.argmax(2)
    with pytest.raises(TypeError, match='Party'):
        a.reveal(to='alice')


def test_mismatched_parties_and_encodings_raise():
    first = Cluster(2, encoding=Encoding(16), rng=RandomSource(seed=1))
    other = Cluster(3, encoding=Encoding(20), rng=RandomSource(seed=1))
    a, b = share(first, [1.0]), share(other, [1.0])
    for op in (lambda: a + b, lambda: a * b, lambda: a @ b.reshape(1, 1), lambda: a.maximum(b)):
        with pytest.raises(ValueError, match='2 vs 3 parties.*encodings differ: 16 vs 20'):
            op()


def test_overflow_is_detected_on_reveal():
    cluster = Cluster(3, rng=RandomSource(seed=3))
    big = share(cluster, np.full(8, 2.0**45))
    with pytest.raises(OverflowError, match='left the fixed-point range'):
        (big + big + big + big).reveal()  # 2^47 is beyond 2^(62 - 16)


def test_product_overflow_is_detected_with_check_overflow():
    cluster = Cluster(3, rng=RandomSource(seed=3), check_overflow=True)
    ok = share(cluster, np.full(8, 1000.0))
    np.testing.assert_allclose((ok * ok).reveal(), 1e6)  # 10^6 < 2^30: fine
    big = share(cluster, np.linspace(1e5, 3e5, 8))  # products above 2^30
    with pytest.raises(OverflowError, match='product value.*left the fixed-point range'):
        big * big
    with pytest.raises(OverflowError, match='left the fixed-point range'):
        big @ share(cluster, np.full((8, 1), 1e5))


def test_check_overflow_bounds_operands_before_the_product_wraps():
    """Issue #17: 2^16.5 * 2^16.5 at f = 16 is 2^65 in words, which wraps modulo 2^64 to
    about 0.135 after truncation, so a range test of the product cannot see it. The operands
    are bounded before multiplying: shared x shared needs |words| < 2^31 (|x| < 2^15 here),
    a dot product of K = 8 terms |words| < 2^29; a public factor sets the bound exactly."""
    cluster = Cluster(3, rng=RandomSource(seed=4), check_overflow=True)
    x = share(cluster, np.full(4, 2.0**16.5))
    with pytest.raises(FixedPointRangeError, match='product value.*left the fixed-point range'):
        x * x
    unchecked = Cluster(3, rng=RandomSource(seed=4))
    y = share(unchecked, np.full(4, 2.0**16.5))
    assert np.all(np.abs((y * y).reveal()) < 1)  # what the check prevents: a silent wrap
    row = share(cluster, np.full((1, 8), 2.0**15))  # 8 products of 2^62 words: 2^65 ≡ 0
    with pytest.raises(FixedPointRangeError):
        row @ share(cluster, np.full((8, 1), 2.0**15))
    with pytest.raises(FixedPointRangeError):
        row @ np.full((8, 1), 2.0**15)  # public factor
    small = share(cluster, np.full((1, 8), 2.0**12))
    np.testing.assert_allclose((small @ np.full((8, 1), 2.0**10)).reveal(), 8 * 2.0**22)
    np.testing.assert_allclose((x * 0.5).reveal(), 2.0**15.5, rtol=1e-6)  # fits with a public 0.5
