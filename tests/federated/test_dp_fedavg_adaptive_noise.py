"""DP-FedAvg with adaptive clipping: the noise TFF's aggregator actually adds (issue #20).

`dp_fedavg.aggregator_factory(m, sigma, C0, adaptive=True)` builds TFF's
`gaussian_adaptive` (Andrew, Thakkar, McMahan, Ramaswamy, "Differentially Private
Learning with Adaptive Clipping", NeurIPS 2021). Its ε is accounted as ONE Gaussian of
noise multiplier sigma, so the two noised releases of a round (the clipped sum with value
noise sigma_v C, and the unclipped count with noise s_c) must together be that mechanism:
Andrew et al. (Sec. 3.3) compose them as one Gaussian with

    sigma^-2 = sigma_v^-2 + (2 s_c)^-2,   i.e.   sigma_v = (sigma^-2 - (2 s_c)^-2)^-1/2,

(the count's sensitivity is 1/2 after centring). tfpriv chooses s_c = max(0.05 m, sigma)
(its docstring). The reference sigma_v below is this formula evaluated in the test, not a
TFF or tfpriv call. In round 1 the clip is C0, so every coordinate of the aggregate
(divided by m) of zero client deltas is N(0, (sigma_v C0 / m)^2).

Tolerances (two-sided, 5 standard errors, p ~ 6e-7 per check): the sample variance of
n = 40,000 i.i.d. N(0, s^2) coordinates has se s^2 sqrt(2 / (n - 1)) (0.71 %), so the
variance is checked to +-3.5 %. The value noise of the fixed mechanism (sigma instead of
sigma_v) is 25 % low in variance for m = 3 and 6.25 % low for m = 40 (s_c = 0.05 m = 2):
both fail; so does half the noise.
"""

import numpy as np
import pytest

from tfpriv.federated import dp_fedavg
from tfpriv.federated.runtime import leftover_workers, tff_context

Z = 5.0
DIM = 40_000
SIGMA, CLIP0 = 1.0, 2.0


def _value_noise_multiplier(sigma: float, count_stddev: float) -> float:
    """Andrew et al. 2021, Sec. 3.3: the value noise that keeps the total multiplier sigma."""
    return (sigma ** -2 - (2.0 * count_stddev) ** -2) ** -0.5


@pytest.fixture(scope='module')
def adaptive_round():
    """run(client_deltas) -> TFF's adaptive DP-FedAvg aggregate of round 1 (m = len(deltas))."""
    import tensorflow_federated as tff

    def run(deltas):
        process = dp_fedavg.aggregator_factory(len(deltas), SIGMA, CLIP0, adaptive=True).create(
            tff.TensorType(np.float32, [DIM]))
        clients = [np.asarray(d, np.float32) for d in deltas]
        return np.asarray(process.next(process.initialize(), clients).result, np.float64)

    with tff_context():
        yield run
    assert leftover_workers() == []


@pytest.mark.parametrize('m,count_stddev', [(3, SIGMA), (40, 0.05 * 40)])
def test_adaptive_round_noise_is_sigma_v_c0_over_m(adaptive_round, m, count_stddev):
    """m = 3 (s_c = sigma = 1: sigma_v = 1.1547, sd 0.770) and m = 40 (s_c = 0.05 m = 2:
    sigma_v = 1.0328, sd 0.0516): zero deltas, so the aggregate is the noise alone; its
    variance within +-3.5 % (5 se) of (sigma_v C0 / m)^2 and its mean within 5 se of 0."""
    noise = adaptive_round([np.zeros(DIM)] * m)
    var = (_value_noise_multiplier(SIGMA, count_stddev) * CLIP0 / m) ** 2
    assert abs(noise.var(ddof=1) - var) <= Z * var * np.sqrt(2 / (DIM - 1)), (noise.var(), var)
    assert abs(noise.mean()) <= Z * np.sqrt(var / DIM)


def test_adaptive_round_clips_each_delta_to_the_initial_clip(adaptive_round):
    """m = 20 clients along e_0: 10 send norm 10 C0 (clipped to C0), 10 send C0 / 2 (kept):
    e_0 of the aggregate is 0.75 C0 plus N(0, sd^2), sd = sigma_v C0 / 20 = 0.103
    (s_c = sigma = 1 > 0.05 m): within 5 sd (+-0.52); unclipped it would be 5.25 C0."""
    m = 20
    big, small = np.zeros(DIM), np.zeros(DIM)
    big[0], small[0] = 10 * CLIP0, CLIP0 / 2
    result = adaptive_round([big] * 10 + [small] * 10)
    sd = _value_noise_multiplier(SIGMA, max(0.05 * m, SIGMA)) * CLIP0 / m
    assert abs(result[0] - 0.75 * CLIP0) <= Z * sd
    rest = result[1:]
    assert abs(rest.var(ddof=1) - sd ** 2) <= Z * sd ** 2 * np.sqrt(2 / (rest.size - 1))
