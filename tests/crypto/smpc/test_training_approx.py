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


def test_exp_meets_its_bound_at_30_fractional_bits():
    """At f = 30 the rounding term 144 u is 1.3e-7, so the bound (4.7e-7) is dominated by the
    Taylor remainder: a wrong polynomial (a coefficient off, extra Horner terms) errs by
    about 1e-6 near x = -6 and fails here while it hides under f = 24's 8.6e-6."""
    cluster = verified_cluster(2, Encoding(30), RandomSource(seed=30))
    x = np.linspace(-20, 0, 801)
    got = approx.exp(share(cluster, x)).reveal()
    assert np.max(np.abs(got - np.exp(x))) <= approx.exp_error_bound(30)


def test_exp_error_bound_is_the_documented_figure():
    """2.3e-7 (Taylor remainder, `test_exp_taylor_remainder_bound_holds_in_floats`) + e^-16
    (the clamp) + 144 u (the rounding analysis of the docstring)."""
    for f in (16, 24, 30):
        assert approx.exp_error_bound(f) == pytest.approx(2.3e-7 + math.exp(-16) + 144 * 2.0**-f,
                                                          rel=1e-12)


@pytest.mark.parametrize('lo,hi,f', [(1.0, 1.0, 24), (1.0, 1.0001, 24), (1.0, 2.0, 24),
                                     (1.0, 10.0, 24), (0.5, 64.0, 30), (1.0, 10.0, 16)])
def test_newton_steps_is_the_fewest_that_reach_one_unit(lo, hi, f):
    """k = newton_steps: the relative error rho^(2^k) of Newton's reciprocal from 2 / (lo + hi)
    is at most 2^-f, and with k - 1 steps it is not (rho = (hi - lo) / (hi + lo); k >= 1)."""
    k, rho = approx.newton_steps(lo, hi, f), (hi - lo) / (hi + lo)
    assert rho ** (2 ** k) <= 2.0 ** -f
    assert k == 1 or rho ** (2 ** (k - 1)) > 2.0 ** -f


@pytest.mark.parametrize('hi', [1.0, 1.5, 2.0, 10.0, 64.0])
def test_log_steps_is_the_fewest_newton_steps_from_both_worst_starts(hi):
    """Newton y <- y - 1 + s e^(-y) in floats from y0 = ln(hi) / 2 (the start `log` uses):
    log_steps(hi) is the fewest steps (at least 1) after which s = 1 and s = hi are both within
    2e-6 of ln s (the docstring: 5 for hi = 10)."""
    def steps_to_converge(s):
        y, steps = math.log(hi) / 2, 0
        while abs(y - math.log(s)) > approx.LOG_NEWTON_ERROR:
            y, steps = y - 1 + s * math.exp(-y), steps + 1
        return steps
    assert approx.log_steps(hi) == max(1, steps_to_converge(1.0), steps_to_converge(hi))
    if hi == 10.0:
        assert approx.log_steps(hi) == 5


def test_edge_ranges_of_reciprocal_and_log(cluster):
    """lo = hi is a valid reciprocal range; log's range [1, hi] may be [1, 1] or [1, 1.5]."""
    close = np.testing.assert_allclose
    close(approx.reciprocal(share(cluster, [2.0, 2.0]), 2.0, 2.0).reveal(), [0.5, 0.5], atol=4 * U)
    close(approx.log(share(cluster, [1.0]), 1.0).reveal(), [0.0], atol=4 * U)
    got = approx.log(share(cluster, [1.0, 1.25, 1.5]), 1.5).reveal()
    close(got, np.log([1.0, 1.25, 1.5]), atol=2e-6 + 1.5 * approx.exp_error_bound(F))
    with pytest.raises(ValueError, match=r'^log needs the range \[1, hi\] with hi >= 1, got '
                                         r'hi=0\.5$'):
        approx.log(share(cluster, [1.0]), 0.5)


@pytest.mark.parametrize('classes', [2, 10])
def test_softmax_of_a_dominant_logit(cluster, classes):
    """One logit 20 above the others: the sum of exponentials is 1 + (C - 1) e^-20, the bottom
    of the range [1, C] the reciprocal is run on; the probabilities are still within the
    bound (with C = 2 a reciprocal started for [2, 2] would be off by 25 %)."""
    z = np.full((4, classes), -20.0)
    z[np.arange(4), [0, 1, classes - 1, 1]] = 0.0
    probabilities, _, _ = approx.softmax(share(cluster, z))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    bound = 2 * classes * approx.exp_error_bound(F) + 4 * U
    assert np.max(np.abs(probabilities.reveal() - e / e.sum(axis=1, keepdims=True))) <= bound
