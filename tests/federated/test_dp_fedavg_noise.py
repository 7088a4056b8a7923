"""DP-FedAvg: the noise and clipping that TFF's DP aggregator actually applies (issue #20).

`dp_fedavg.aggregator_factory(m, sigma, C)` must make TFF release
(sum of the m client deltas, each clipped to L2 norm C + N(0, (sigma C)^2 I)) / m,
the mechanism whose ε `dp_fedavg.epsilons` reports. The aggregation process runs here on
chosen client deltas, so the noise is read off TFF's own output, not off our parameters.

Tolerances (two-sided, 5 standard errors, p ~ 6e-7 per check): the sample variance of
n = 20,000 i.i.d. N(0, s^2) coordinates has se s^2 sqrt(2 / (n - 1)) (1 %), their mean
se s / sqrt(n). Half the noise (variance / 4) or none fails by far.
"""

import numpy as np
import pytest

from tfpriv.federated import dp_fedavg
from tfpriv.federated.runtime import leftover_workers, tff_context

Z = 5.0
DIM = 20_000
SIGMA, CLIP = 1.0, 2.0


@pytest.fixture(scope='module')
def aggregate():
    """run(client_deltas) -> TFF's DP-FedAvg aggregate (one round, m = len(client_deltas))."""
    import tensorflow_federated as tff

    def run(deltas):
        factory = dp_fedavg.aggregator_factory(len(deltas), SIGMA, CLIP)
        process = factory.create(tff.TensorType(np.float32, [DIM]))
        output = process.next(process.initialize(), [np.asarray(d, np.float32) for d in deltas])
        return np.asarray(output.result, dtype=np.float64)

    with tff_context():
        yield run
    assert leftover_workers() == []


def test_aggregate_noise_is_sigma_c_over_m_per_coordinate(aggregate):
    """Zero deltas from m = 3 clients: every coordinate of the aggregate is N(0, (sigma C / m)^2),
    sd 2/3 here; its variance within 5 se (+-5 %) and mean within 5 se of 0."""
    m = 3
    noise = aggregate([np.zeros(DIM)] * m)
    var = (SIGMA * CLIP / m) ** 2
    assert abs(noise.var(ddof=1) - var) <= Z * var * np.sqrt(2 / (DIM - 1))
    assert abs(noise.mean()) <= Z * np.sqrt(var / DIM)


def test_each_client_delta_is_clipped_to_c_before_the_noise(aggregate):
    """m = 20 clients along e_0: 10 send norm 10 C (clipped to C), 10 send C / 2 (kept).
    The aggregate's e_0 coordinate is (10 C + 10 C/2) / 20 = 0.75 C plus N(0, (sigma C / 20)^2):
    within 5 sd (+-0.5 for C = 2); without clipping it would be 5.25 C. The other coordinates
    carry noise only (variance (sigma C / 20)^2 within 5 se)."""
    m = 20
    big, small = np.zeros(DIM), np.zeros(DIM)
    big[0], small[0] = 10 * CLIP, CLIP / 2
    result = aggregate([big] * 10 + [small] * 10)
    sd = SIGMA * CLIP / m
    assert abs(result[0] - 0.75 * CLIP) <= Z * sd
    rest = result[1:]
    assert abs(rest.var(ddof=1) - sd**2) <= Z * sd**2 * np.sqrt(2 / (rest.size - 1))
