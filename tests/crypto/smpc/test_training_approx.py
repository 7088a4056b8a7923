"""Each secure operation of encrypted training against its float64 counterpart (NumPy).

Tolerances are the error bounds stated in `tfpriv.crypto.smpc.approx` at
f = 24 fractional bits (u = 2^-24), not fitted to the observed errors.
"""

import math

import numpy as np
import pytest

from tfpriv.crypto.smpc import Encoding, SharedTensor, approx
from tfpriv.crypto.smpc.checked import verified_cluster
from tfpriv.crypto.smpc.owners import standardize
from tfpriv.crypto.smpc.training import DenseLayer, PlainOps, SecureOps, backward, forward
from tfpriv.rng import RandomSource

F = 24  # the default of `train.py --encrypted-train --precision`
U = 2.0**-F


@pytest.fixture(scope='module', params=[2, 3, 4], ids=['2 parties', '3 parties', '4 parties'])
def cluster(request):
    return verified_cluster(request.param, Encoding(F), RandomSource(seed=request.param))


def share(cluster, values, **kwargs):
    return SharedTensor.share(cluster, np.asarray(values), **kwargs)


def test_exp_within_stated_bound(cluster):
    x = np.concatenate([np.linspace(-40, 0, 2001), [-1e3, -16.0, -4.27, 0.0]])
    got = approx.exp(share(cluster, x)).reveal()
    bound = approx.exp_error_bound(F)  # 2.3e-7 Taylor + 1.1e-7 clamp + 144 u
    assert np.max(np.abs(got - np.exp(x))) <= bound
    assert got[-1] == pytest.approx(1.0, abs=bound)


def test_exp_taylor_remainder_bound_holds_in_floats():
    # the analytic 2.3e-7 of the docstring, checked on a fine grid without any rounding
    x = np.linspace(-16, 0, 200001)
    t = x / 16
    taylor = sum(t**k / math.factorial(k) for k in range(approx.EXP_DEGREE + 1))
    assert approx.EXP_DEGREE == 5
    assert np.max(np.abs(taylor**16 - np.exp(x))) <= 2.3e-7


@pytest.mark.parametrize('lo,hi', [(1.0, 2.0), (1.0, 10.0), (0.5, 64.0)])
def test_reciprocal_within_stated_bound(cluster, lo, hi):
    x = np.linspace(lo, hi, 501)
    got = approx.reciprocal(share(cluster, x), lo, hi).reveal()
    # Newton error (1/lo) rho^(2^k) <= u/lo, rounding (1/lo + 2) u, the input's own u/2 / lo^2
    bound = U / lo + (1 / lo + 2) * U + U / (2 * lo**2)
    assert np.max(np.abs(got - 1 / x)) <= bound


def test_reciprocal_rejects_a_bad_range(cluster):
    with pytest.raises(ValueError, match='0 < lo <= hi'):
        approx.reciprocal(share(cluster, [1.0]), 0.0, 2.0)


def test_inv_sqrt_within_stated_bound(cluster):
    v = np.exp(np.linspace(math.log(4.0**-6), 0, 301))
    got = approx.inv_sqrt(share(cluster, v), 6).reveal()
    # against the encoded input: Newton 3e-12 and the last step's rounding 3 u
    encoded = np.round(v * 2**F) / 2**F
    assert np.all(np.abs(got * np.sqrt(encoded) - 1) <= 3e-12 + 3 * U)
    # against v itself: the input's rounding u / 2 adds u / (4 v)
    assert np.all(np.abs(got * np.sqrt(v) - 1) <= 3e-12 + 3 * U + U / (4 * v))


@pytest.mark.parametrize('hi', [2.0, 10.0])
def test_log_within_stated_bound(cluster, hi):
    s = np.linspace(1, hi, 301)
    got = approx.log(share(cluster, s), hi).reveal()
    # Newton 2e-6 plus the exp error relative to exp(-y) >= 1/hi, i.e. hi times it
    assert np.max(np.abs(got - np.log(s))) <= 2e-6 + hi * approx.exp_error_bound(F)


def test_row_max_is_exact(cluster):
    z = np.random.default_rng(1).normal(size=(16, 7)) * 5
    got = approx.row_max(share(cluster, z)).reveal()
    assert np.max(np.abs(got - z.max(axis=1))) <= U  # only the encoding's rounding


def test_softmax_within_stated_bound(cluster):
    z = np.random.default_rng(2).normal(size=(32, 10)) * 6
    probabilities, top, total = approx.softmax(share(cluster, z))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    exact = e / e.sum(axis=1, keepdims=True)
    # each exp term errs by <= exp-bound, the sum by 10x that, the reciprocal by ~3 u
    bound = 2 * 10 * approx.exp_error_bound(F) + 4 * U
    assert np.max(np.abs(probabilities.reveal() - exact)) <= bound
    assert np.max(np.abs(total.reveal() - e.sum(axis=1))) <= 10 * approx.exp_error_bound(F)
    assert np.max(np.abs(top.reveal() - z.max(axis=1))) <= U


def test_dense_relu_layer_forward_and_backward(cluster):
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(8, 5)), rng.normal(size=(5, 4)) * 0.5, rng.normal(size=4) * 0.1
    g = rng.normal(size=(8, 4))
    plain = [DenseLayer(w, b, relu=True)]
    secure = [DenseLayer(share(cluster, w), share(cluster, b), relu=True)]
    out, cache = forward(secure, SecureOps, share(cluster, x))
    expected = np.maximum(x @ w + b, 0)
    # each product term rounds by <= (|x| + |w| + 2) u / 2 and the truncation adds u
    dot_error = (np.abs(x) @ np.abs(w) + np.abs(x).sum(1, keepdims=True) + 5 * 2) * U + 2 * U
    assert np.all(np.abs(out.reveal() - expected) <= dot_error)
    (d_w, d_b), = backward(secure, cache, share(cluster, g))
    (ref_w, ref_b), = backward(plain, forward(plain, PlainOps, x)[1], g)
    assert np.max(np.abs(d_w.reveal() - ref_w)) <= 8 * (np.abs(x).max() + np.abs(g).max() + 3) * U
    assert np.max(np.abs(d_b.reveal() - ref_b)) <= 8 * U


def test_secure_standardization_matches_numpy(cluster):
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.normal(50, 20, 200), rng.integers(0, 2, 200),
                         rng.exponential(3e4, 200)])
    bounds = 2.0 ** np.ceil(np.log2(np.abs(x).max(axis=0)))
    z_train, z_test = standardize(SecureOps, share(cluster, x), share(cluster, x[:10]), bounds)
    scaled = x / bounds
    reference = (scaled - scaled.mean(0)) / np.sqrt(scaled.var(0) + 4.0**-6)
    # a = x / b and its mean err by <= 1.5 u and 3.5 u, so a - m by 5 u; v = mean((a - m)^2)
    # by 2 |a - m| 5 u + u + 2 u <= 13 u, so 1/sqrt(v) by 3 u + 6.5 u / v relative
    # (approx.inv_sqrt); z = (a - m) / sqrt(v) adds 5 u / sqrt(v) + u; |z| <= 10 here
    assert np.abs(reference).max() <= 10
    v = scaled.var(0) + 4.0**-6
    tolerance = 10 * (3 * U + 6.5 * U / v) + 5 * U / np.sqrt(v) + U
    assert np.all(np.abs(z_train.reveal() - reference) <= tolerance)
    assert np.all(np.abs(z_test.reveal() - reference[:10]) <= tolerance)
    assert np.all(np.abs(z_train.reveal().mean(0)) <= 1e-3)
    assert np.all(np.abs(z_train.reveal().std(0) - 1) <= 0.02)
