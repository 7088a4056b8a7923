"""Client dropouts inside a round: never summed, and the noise they did not add is accounted.

Tolerances: the fixed-point aggregators are exact to k 2^-(f+1) per value (f >= 16 here,
k <= 8), far below the 1e-4 used; a sample variance of N = 2^15 iid values has relative
standard deviation sqrt(2/N) (Gaussian fourth moment), checked to 5 of those (3.9 %).
"""

import dataclasses
import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting import rdp

from tfpriv.data import load_mnist
from tfpriv.errors import DropoutError
from tfpriv.federated import distributed_dp, dropouts, fedavg, secure
from tfpriv.rng import RandomSource

SCHEMES = ['plain', 'shamir', 'smpc', 'rlwe', 'secagg']
DROPPED = np.array([False, True, False, False, True, False])


def _updates(m: int, dim: int):
    rng = np.random.default_rng(0)
    updates = [[rng.uniform(-0.5, 0.5, size=(dim // 4, 4))] for _ in range(m)]
    for i in np.flatnonzero(DROPPED[:m]):
        updates[i] = [np.full((dim // 4, 4), 3.0)]  # far off: visible in any mean that sums it
    return updates


@pytest.mark.parametrize('scheme', SCHEMES)
def test_dropped_clients_are_never_summed(scheme):
    """The weighted mean of the survivors only (reference: NumPy), for every aggregator."""
    m, dim = len(DROPPED), 40
    updates, weights = _updates(m, dim), [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    aggregator = secure.make_aggregator(scheme, RandomSource(seed=1), num_parties=m)
    average, stats = dropouts.aggregate(aggregator, updates, weights, DROPPED)
    keep = np.flatnonzero(~DROPPED)
    expected = sum(weights[i] * updates[i][0] for i in keep) / sum(weights[i] for i in keep)
    np.testing.assert_allclose(average[0], expected, atol=1e-4)
    everyone = sum(w * u[0] for w, u in zip(weights, updates)) / sum(weights)
    assert np.max(np.abs(everyone - expected)) > 0.5  # summing a dropped client would show
    if scheme == 'secagg':  # the masks of the two dropped clients were removed, not their inputs
        assert sorted(aggregator.last_round.submitted) == keep.tolist()
        assert aggregator.config.dropouts.indices == ()  # restored after the round
    if scheme == 'shamir':
        assert stats.num_dropped == 2 and aggregator.faults.silent_clients == ()


@pytest.mark.parametrize('scheme', SCHEMES[1:])
def test_ddgauss_with_dropouts_matches_plain_bit_for_bit(scheme):
    """Same client randomness: every protocol decodes the same survivors' noised sum."""
    m, dim = len(DROPPED), 300
    params = distributed_dp.DdgParams(1.0, 1.0, m, dim, bits=16)
    results = []
    for name in ('plain', scheme):
        aggregator = distributed_dp.DistributedDpAggregator(
            params, distributed_dp.inner_aggregator(name, 16, m, RandomSource(seed=1)),
            rng=RandomSource(seed=7))
        average, stats = dropouts.aggregate(aggregator, _updates(m, dim), None, DROPPED)
        assert stats.extra['contributors'] == 4
        results.append(average[0])
    np.testing.assert_array_equal(results[0], results[1])


def test_ddgauss_survivors_mean_without_noise():
    """σ = 0: the survivors' clipped mean (clip S = 10 clips nothing) to the rounding γ."""
    m, dim = len(DROPPED), 300
    params = distributed_dp.DdgParams(10.0, 0.0, m, dim, bits=16)
    aggregator = distributed_dp.DistributedDpAggregator(
        params, distributed_dp.inner_aggregator('secagg', 16, m, RandomSource(seed=1)),
        rng=RandomSource(seed=2))
    updates = _updates(m, dim)
    average = dropouts.aggregate(aggregator, updates, None, DROPPED)[0][0]
    expected = np.mean([updates[i][0] for i in np.flatnonzero(~DROPPED)], axis=0)
    gamma = 1.0 / params.scale
    assert np.max(np.abs(average - expected)) < 2 * gamma  # |rounding| < γ per coordinate


def test_noise_of_a_round_with_dropouts_is_that_of_the_survivors():
    """k of m shares arrive: Var of the decoded noise sum = (k/m) (σ S)^2, two-sided."""
    dim, m = 1 << 15, 8
    dropped = np.array([True, False, True, False, False, True, False, False])
    k = int(np.count_nonzero(~dropped))
    params = distributed_dp.DdgParams(1.0, 1.0, m, dim, bits=20, modclip_prob=1e-9)
    aggregator = distributed_dp.DistributedDpAggregator(
        params, distributed_dp.inner_aggregator('plain', 20, m), rng=RandomSource(seed=3))
    average, stats = aggregator.aggregate_with_dropouts([[np.zeros(dim)]] * m, None, dropped)
    noise = average[0] * k
    tol = 5 * math.sqrt(2.0 / dim)
    assert stats.extra['contributors'] == k
    assert abs(float(np.var(noise)) / (k / m) - 1.0) < tol
    assert abs(float(np.var(noise)) - 1.0) > tol  # not the m shares the clients were sized for
    assert params.noise_multiplier_with(k) == pytest.approx(
        params.noise_multiplier_with(m) * math.sqrt(k / m), rel=1e-12)


def test_every_client_of_a_round_dropping_is_refused_before_training():
    data = load_mnist().subset(100, 10)
    config = fedavg.FedConfig(clients=4, rounds=3, client_fraction=0.5, dropout_rate=0.999)
    with pytest.raises(DropoutError, match='every client sampled for round 1 drops'):
        fedavg.train(config, data)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match='dropout_rate'):
            fedavg.train(dataclasses.replace(config, dropout_rate=bad), data)


def test_distributed_dp_run_with_dropouts_accounts_for_the_shares_summed():
    """ε of each round from the k_r clients whose noise arrived (reference: dp_accounting)."""
    data = load_mnist().subset(800, 200)
    config = fedavg.FedConfig(clients=8, rounds=3, client_fraction=0.5, local_epochs=1,
                              batch_size=50, dp=True, noise_multiplier=1.0, l2_norm_clip=1.0,
                              dp_mode='distributed', secure_agg='shamir', dropout_rate=0.4, seed=1)
    result = fedavg.train(config, data)
    history, m = result.history, 4
    assert history['contributors'] == [m - d for d in history['dropped']]
    assert min(history['contributors']) < m  # this seed drops clients
    accountant = rdp.RdpAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    for r, k in enumerate(history['contributors']):
        # calibrated: m shares give σ_eff = σ, so k shares give σ sqrt(k / m)
        accountant.compose(dp_accounting.SampledWithoutReplacementDpEvent(
            8, int(k), dp_accounting.GaussianDpEvent(math.sqrt(k / m) / 2)))
        assert history['epsilon'][r] == pytest.approx(accountant.get_epsilon(result.delta),
                                                      rel=1e-6)
    full = fedavg.dp_fedavg.epsilons(8, m, 1.0, 3, result.delta)
    assert history['epsilon'][-1] > full[-1] * 1.01  # the missing noise costs privacy


@pytest.mark.parametrize('rate', ['1', '-0.5'])
def test_dropout_rate_flag_outside_its_range_exits_2(rate, capsys):
    from tfpriv.experiments.cli import main
    with pytest.raises(SystemExit) as info:
        main(['--federated', '--dropout-rate', rate])
    assert info.value.code == 2
    assert f'--dropout-rate must be in [0, 1), got {float(rate)}' in capsys.readouterr().err
