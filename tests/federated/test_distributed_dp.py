"""Distributed DP (DDGauss) under secure aggregation, Poisson client sampling and their ε.

Tolerances: a sample variance of N iid values has relative standard deviation
sqrt(2/N) (Gaussian fourth moment; the discrete Gaussian's is within 1e-30 of
it for σ_l >> 1), so ratios are checked to 5 of those; frequencies against
binomial standard deviations sqrt(N p (1 - p)), also to 5.
"""

import dataclasses
import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting import rdp

from tfpriv.data import load_mnist
from tfpriv.dp import accounting
from tfpriv.errors import RoundingError
from tfpriv.federated import distributed_dp, fedavg
from tfpriv.rng import Prg, RandomSource

DIM = 1 << 15  # a power of two: no padding, every decoded coordinate is a noise coordinate


def _zero_round(monkeypatch=None, drop_share: bool = False, m: int = 8, sigma: float = 1.0,
                clip: float = 1.0) -> np.ndarray:
    """m zero updates through DDGauss (plain inner sum): the decoded noise of the sum, Σ / m * m."""
    params = distributed_dp.DdgParams(clip, sigma, m, DIM, bits=20, modclip_prob=1e-9)
    if drop_share:  # the first client's noise share goes missing
        real, calls = distributed_dp.discrete_gaussian, []

        def sampler(s, size, prg):
            calls.append(1)
            return np.zeros(size, np.int64) if len(calls) == 1 else real(s, size, prg)
        monkeypatch.setattr(distributed_dp, 'discrete_gaussian', sampler)
    aggregator = distributed_dp.DistributedDpAggregator(
        params, distributed_dp.inner_aggregator('plain', 20, m), rng=RandomSource(seed=3))
    average, stats = aggregator.aggregate([[np.zeros(DIM)] for _ in range(m)])
    assert stats.extra['contributors'] == m
    return average[0] * m


def test_noise_of_the_decoded_sum_is_sigma_times_clip(monkeypatch):
    """Var of Σ noise per coordinate = (σ S)^2 (the central noise DP-FedAvg promises), two-sided."""
    tol = 5 * math.sqrt(2.0 / DIM)  # 3.9 %
    for sigma, clip in ((1.0, 1.0), (0.5, 3.0)):
        noise = _zero_round(sigma=sigma, clip=clip)
        ratio = float(np.var(noise)) / (sigma * clip) ** 2
        assert abs(ratio - 1.0) < tol, ratio
        assert abs(float(np.mean(noise))) < 5 * sigma * clip / math.sqrt(DIM)
    # one client's share missing: 7/8 of the variance, outside the tolerance
    short = _zero_round(monkeypatch, drop_share=True)
    assert abs(float(np.var(short)) - 7 / 8) < tol and abs(float(np.var(short)) - 1.0) > tol


def test_discrete_gaussian_sampler_matches_its_pmf():
    sigma, n = 2.5, 200_000
    samples = distributed_dp.discrete_gaussian(sigma, n, Prg(RandomSource(seed=5)))
    support = np.arange(-60, 61)
    pmf = np.exp(-support ** 2 / (2 * sigma ** 2))
    pmf /= pmf.sum()
    counts = np.array([(samples == v).sum() for v in support])
    z = (counts - n * pmf) / np.sqrt(n * pmf * (1 - pmf))
    assert np.max(np.abs(z[np.abs(support) <= 8])) < 5
    assert counts.sum() == n  # nothing outside ±24σ
    assert distributed_dp.discrete_gaussian(0.0, 10, Prg(RandomSource(seed=5))).tolist() == [0] * 10


def test_discrete_gaussian_at_a_client_sized_sigma_has_gaussian_moments():
    """σ = 1169.0 (σ_l of the 50 clients of the MNIST MLP at b = 16). By Poisson summation the
    discrete Gaussian's moments equal the continuous N(0, σ²)'s up to terms of order
    e^(-2π²σ²): variance σ², kurtosis 3. Two-sided, 5 standard errors: var within
    5 sqrt(2/n) relative, excess kurtosis within 5 sqrt(24/n), mean within 5 σ/sqrt(n). The
    discrete Laplace proposal alone (every candidate accepted) has kurtosis 6; half the
    noise has var σ²/4."""
    sigma, n = 1169.0, 400_000
    x = distributed_dp.discrete_gaussian(sigma, n, Prg(RandomSource(seed=8))).astype(np.float64)
    assert abs(x.var() / sigma ** 2 - 1.0) < 5 * math.sqrt(2.0 / n)
    excess = float(np.mean((x - x.mean()) ** 4) / x.var() ** 2) - 3.0
    assert abs(excess) < 5 * math.sqrt(24.0 / n)
    assert abs(x.mean()) < 5 * sigma / math.sqrt(n)


def test_clipping_bound_and_unbiased_rounding():
    """σ = 0: a large update comes back clipped to norm S; a small one unchanged up to γ."""
    m, dim, clip = 4, 1000, 0.5
    params = distributed_dp.DdgParams(clip, 0.0, m, dim, bits=16)
    aggregator = distributed_dp.DistributedDpAggregator(
        params, distributed_dp.inner_aggregator('plain', 16, m), rng=RandomSource(seed=2))
    rng = np.random.default_rng(0)
    big = rng.normal(size=dim)
    updates = [[big * 10]] + [[np.zeros(dim)]] * (m - 1)
    decoded = aggregator.aggregate(updates)[0][0] * m
    gamma = 1.0 / params.scale
    assert np.linalg.norm(decoded) == pytest.approx(clip, abs=gamma * math.sqrt(1024))
    cosine = decoded @ big / (np.linalg.norm(decoded) * np.linalg.norm(big))
    assert cosine > 0.999
    small = rng.normal(size=dim) * 0.3 / math.sqrt(dim)  # norm 0.3 < S: not clipped
    decoded = aggregator.aggregate([[small]] + [[np.zeros(dim)]] * (m - 1))[0][0] * m
    assert np.max(np.abs(decoded - small)) < 2 * gamma  # |rounding| < γ per rotated coordinate
    assert np.linalg.norm(decoded) == pytest.approx(np.linalg.norm(small), abs=gamma * math.sqrt(1024))


@pytest.mark.parametrize('scheme', ['shamir', 'smpc', 'rlwe', 'secagg'])
def test_every_secure_aggregator_carries_the_integers_exactly(scheme):
    """Same client randomness: each protocol's decoded noised sum equals the plain sum bit for bit."""
    m, dim = 4, 300
    params = distributed_dp.DdgParams(1.0, 1.0, m, dim, bits=16)
    updates = [[np.random.default_rng(i).normal(size=(3, 100)) * 0.05] for i in range(m)]
    results = []
    for name in ('plain', scheme):
        aggregator = distributed_dp.DistributedDpAggregator(
            params, distributed_dp.inner_aggregator(name, 16, m, RandomSource(seed=1)),
            rng=RandomSource(seed=7))
        average, stats = aggregator.aggregate(updates)
        results.append(average[0])
        assert stats.scheme == f'ddgauss+{name}'
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize('scheme', ['rlwe', 'secagg'])
def test_fifty_clients_fit_the_fixed_point_range(scheme):
    """m = 50 (the DP-FedAvg benchmark's clients per round): RLWE's plaintext range used to
    refuse the sum from m = 17 at b = 16 (f = b + 1 + 2 log2 m is needless for its integer
    weights); the integers must come through bit for bit (SecAgg+ as a second wide case)."""
    m, dim = 50, 64
    params = distributed_dp.DdgParams(1.0, 1.0, m, dim, bits=16)
    updates = [[np.random.default_rng(i).normal(size=dim) * 0.1] for i in range(m)]
    results = []
    for name in ('plain', scheme):
        aggregator = distributed_dp.DistributedDpAggregator(
            params, distributed_dp.inner_aggregator(name, 16, m, RandomSource(seed=1)),
            rng=RandomSource(seed=7))
        results.append(aggregator.aggregate(updates)[0][0])
    np.testing.assert_array_equal(results[0], results[1])


def test_secagg_inside_ddgauss_rounds_deterministically():
    """The integers are recovered by rounding the sum (`_exact_sum`), so SecAgg+'s stochastic
    rounding would only cost keystream: the inner quantizer rounds to nearest, with the
    error bound that still leaves the sum exact: k clients' errors of 1/2 unit of 2^-f in the
    mean, times k 2^(b-1) to the integer sum, stay below 1/4."""
    m = 50
    inner = distributed_dp.inner_aggregator('secagg', 16, m, RandomSource(seed=1))
    quantizer = inner.config.quantizer
    assert quantizer.rounding == 'deterministic'
    assert m * quantizer.max_error_units * 2.0**-quantizer.precision * m * 2**15 < 0.25


def test_ddgauss_accounting_counts_only_the_noise_present():
    params = distributed_dp.DdgParams(0.9, 1.0, 10, 199_210, bits=16)
    sigma_eff = params.noise_multiplier_with(10)
    # the integer sensitivity exceeds S/γ only by the rounding inflation (< 0.1 % here)
    assert 0.999 * 1.0 < sigma_eff <= 1.0
    assert params.noise_multiplier_with(7) == pytest.approx(sigma_eff * math.sqrt(7 / 10))
    assert accounting.ddgauss_tau(params.local_stddev, 10) * params.padded_dim < 1e-30
    full = accounting.ddgauss_fedavg_epsilons(100, [10] * 3, [sigma_eff] * 3, 1e-3)
    acc = rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    acc.compose(dp_accounting.SampledWithoutReplacementDpEvent(
        100, 10, dp_accounting.GaussianDpEvent(sigma_eff / 2)), 3)
    assert full[-1] == pytest.approx(acc.get_epsilon(1e-3), rel=1e-9)
    # three clients dropped in round 2: their noise is missing, ε must grow
    dropped = accounting.ddgauss_fedavg_epsilons(
        100, [10, 7, 10], [sigma_eff, params.noise_multiplier_with(7), sigma_eff], 1e-3)
    assert dropped[0] == full[0] and dropped[-1] > full[-1] * 1.01
    with pytest.raises(ValueError, match='raise bits or noise_multiplier'):
        distributed_dp.make_aggregator('plain', 1.0, 1e-4, 10, 1000, bits=6)


def test_matching_params_give_the_requested_noise_multiplier():
    """σ_eff of all m shares equals σ (so ε equals central DP's); the rounding inflation
    is paid in noise: σ_l exceeds the uncalibrated one by Δ̃ / (S/γ)."""
    for sigma, clip, m, dim in ((1.0, 0.5, 50, 55050), (0.3, 1.0, 10, 1000), (2.0, 0.1, 3, 70)):
        params = distributed_dp.matching_params(sigma, clip, m, dim, bits=16)
        assert params.noise_multiplier_with(m) == pytest.approx(sigma, rel=1e-10)
        assert params.noise_multiplier_with(m) >= sigma
        assert params.noise_multiplier > sigma  # the request is raised, never lowered
        inflation = params.inflated_l2 / (clip * params.scale)
        assert params.noise_multiplier == pytest.approx(sigma * inflation, rel=1e-6)
        plain = distributed_dp.DdgParams(clip, sigma, m, dim, bits=16)
        assert plain.noise_multiplier_with(m) < sigma
    assert distributed_dp.matching_params(0.0, 1.0, 4, 100).noise_multiplier == 0.0


def test_poisson_client_sampling_and_its_add_remove_epsilon():
    schedule = fedavg.poisson_clients(100, 0.1, 2000, RandomSource(seed=4))
    counts = np.array([len(ids) for ids in schedule])
    # Binomial(100, 0.1): mean 10, variance 9; the mean of 2000 rounds has sd 0.067
    assert abs(counts.mean() - 10) < 5 * 3 / math.sqrt(2000)
    assert abs(counts.var() / 9 - 1) < 5 * math.sqrt(2 / 2000) * 1.2  # (excess kurtosis ~0.1)
    joined = np.bincount(np.concatenate(schedule), minlength=100)
    assert np.max(np.abs(joined - 200)) < 5 * math.sqrt(2000 * 0.1 * 0.9)
    poisson = accounting.fedavg_epsilons(20, 5, 1.0, 5, 1e-2, 'poisson', 0.25)
    acc = rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
    acc.compose(dp_accounting.PoissonSampledDpEvent(0.25, dp_accounting.GaussianDpEvent(1.0)), 5)
    assert poisson[-1] == pytest.approx(acc.get_epsilon(1e-2), rel=1e-9)
    fixed = accounting.fedavg_epsilons(20, 5, 1.0, 5, 1e-2)
    assert poisson[-1] < fixed[-1] / 3  # the 5 rounds of 5 of 20 clients
    with pytest.raises(ValueError, match='client_fraction'):
        accounting.fedavg_epsilons(20, 5, 1.0, 5, 1e-2, 'poisson')


@pytest.fixture(scope='module')
def small():
    return load_mnist().subset(600, 200)


BASE = fedavg.FedConfig(clients=4, rounds=1, client_fraction=0.5, local_epochs=1, batch_size=20,
                        dp=True, noise_multiplier=1.0, l2_norm_clip=1.0)


def test_dp_with_secure_aggregation_trains_and_reports_its_epsilon(small):
    config = dataclasses.replace(BASE, dp_mode='distributed', secure_agg='shamir')
    result = fedavg.train(config, small, RandomSource(seed=0))
    assert 'DDGauss' in result.accounting and result.rounds_done == 1
    # the shares are calibrated to σ_eff = σ: the ε of central DP-FedAvg at the same σ
    assert result.epsilon == pytest.approx(
        accounting.fedavg_epsilons(4, 2, 1.0, 1, result.delta)[0], rel=1e-9)
    assert result.history['contributors'] == [2.0]
    for bad, match in ((dict(client_sampling='poisson'), "needs client_sampling='fixed'"),
                       (dict(dp_mode='central'), "needs dp_mode='distributed'"),
                       (dict(client_sampling='uniform'), 'client_sampling')):
        with pytest.raises(ValueError, match=match):
            fedavg.train(dataclasses.replace(config, **bad), small, RandomSource(seed=0))


def test_poisson_sampled_central_dp_run(small):
    config = dataclasses.replace(BASE, client_sampling='poisson', rounds=2)
    result = fedavg.train(config, small, RandomSource(seed=0))
    assert result.history['epsilon'] == pytest.approx(
        accounting.fedavg_epsilons(4, 2, 1.0, 2, result.delta, 'poisson', 0.5), rel=1e-9)
    assert 'PoissonSampled' in result.accounting


def test_central_and_distributed_runs_pair_by_seed(small):
    """σ = 0: with the same seed both modes start from the same weights and train the same
    clients on the same batches, so their models differ only by the DDGauss rounding: the
    mean of m rounding errors has L2 norm at most γ sqrt(d') (one unit per rotated
    coordinate, rotation orthonormal). Another seed is far outside that bound."""
    config = dataclasses.replace(BASE, noise_multiplier=0.0, l2_norm_clip=10.0, seed=3)
    central = fedavg.train(config, small).model.get_weights()
    distributed = fedavg.train(dataclasses.replace(config, dp_mode='distributed'), small)
    other = fedavg.train(dataclasses.replace(config, seed=4), small).model.get_weights()
    params = distributed_dp.DdgParams(10.0, 0.0, 2, distributed.model.count_params())
    bound = math.sqrt(params.padded_dim) / params.scale

    def distance(a, b):
        return math.sqrt(sum(float(np.sum((x - y) ** 2)) for x, y in zip(a, b)))

    assert distance(central, distributed.model.get_weights()) <= bound
    assert distance(central, other) > 10 * bound


def _walsh(d: int) -> np.ndarray:
    """H_d[i, j] = (-1)^popcount(i & j) / sqrt(d): the orthonormal Walsh-Hadamard matrix by
    its closed form (not Sylvester's recursion nor the Kronecker factors the code uses)."""
    i = np.arange(d)
    bits = np.vectorize(lambda v: bin(v).count('1'))(i[:, None] & i[None, :])
    return (1.0 - 2.0 * (bits % 2)) / math.sqrt(d)


def test_hadamard_is_the_walsh_matrix_in_float64_and_refuses_other_sizes():
    """d = 1 … 2^7 (one Kronecker factor up to 2^6, two above) against the closed form, exact to
    1e-12 also for a float32 input (the transform is computed in float64); d = 0, 3, 6, 12 are
    refused with the documented message."""
    rng = np.random.default_rng(1)
    for d in (1, 2, 4, 64, 128):
        x = rng.normal(size=d).astype(np.float32)
        np.testing.assert_allclose(distributed_dp.hadamard(x), _walsh(d) @ x.astype(np.float64),
                                   rtol=0, atol=1e-12)
    for d in (0, 3, 6, 12):
        with pytest.raises(ValueError, match=rf'^the Walsh-Hadamard transform needs a '
                                             rf'power-of-two size, got {d}$'):
            distributed_dp.hadamard(np.ones(d))


def test_rotation_signs_are_fair_independent_signs_per_round():
    """D is a vector of `size` values ±1, each +1 with probability 1/2 (count within 5
    binomial sd of n/2, two-sided), and a new round draws new signs."""
    n = 20_000
    signs = distributed_dp.rotation_signs(7, 3, n)
    assert signs.shape == (n,) and set(np.unique(signs)) == {-1.0, 1.0}
    assert abs((signs > 0).sum() - n / 2) < 5 * math.sqrt(n / 4)
    other = distributed_dp.rotation_signs(7, 4, n)
    assert abs((signs == other).sum() - n / 2) < 5 * math.sqrt(n / 4)
    np.testing.assert_array_equal(signs, distributed_dp.rotation_signs(7, 3, n))


def test_centred_mod_is_the_representative_in_the_half_open_range():
    """z mod 2^b in [-2^(b-1), 2^(b-1)), by Python ints, b = 4 and 16, for values on both edges
    and several wraps away; float inputs holding integers come back as int64."""
    for bits in (4, 16):
        m, h = 1 << bits, 1 << (bits - 1)
        z = [0, 1, -1, h - 1, h, -h, -h - 1, m, m + 3, -m - 3, 5 * m + h, -7 * m - h + 2]
        want = [((v + h) % m) - h for v in z]
        out = distributed_dp.centred_mod(np.array(z, dtype=np.float64), bits)
        assert out.dtype == np.int64 and out.tolist() == want
        assert min(want) == -h and max(want) == h - 1


def test_conditional_rounding_keeps_a_norm_equal_to_the_bound_and_names_a_failure():
    """An integer y rounds to itself; ||y|| = bound exactly is accepted (the bound is <=).
    y = (1.5, 1.5) with bound 1: every rounding has norm >= sqrt 2, so it is refused with the
    documented message."""
    prg = Prg(RandomSource(seed=1))
    out = distributed_dp.conditional_round(np.array([3.0, 4.0]), 5.0, prg)
    assert out.dtype == np.int64 and out.tolist() == [3, 4]
    with pytest.raises(RoundingError,
                       match=r'^conditional rounding found no rounding of norm <= 1 in 1000 '
                             r'draws \(\|\|y\|\| = 2\.12132\)$'):
        distributed_dp.conditional_round(np.array([1.5, 1.5]), 1.0, prg)


def test_an_update_between_the_clip_and_norm_one_is_clipped():
    """S = 0.25 and an update of norm 0.8: the decoded sum (σ = 0) has norm S, not 0.8, within
    the rounding error γ sqrt(d')."""
    m, dim, clip = 2, 64, 0.25
    params = distributed_dp.DdgParams(clip, 0.0, m, dim, bits=16)
    aggregator = distributed_dp.DistributedDpAggregator(
        params, distributed_dp.inner_aggregator('plain', 16, m), rng=RandomSource(seed=2))
    update = np.random.default_rng(3).normal(size=dim)
    update *= 0.8 / np.linalg.norm(update)
    decoded = aggregator.aggregate([[update], [np.zeros(dim)]])[0][0] * m
    assert np.linalg.norm(decoded) == pytest.approx(clip, abs=math.sqrt(dim) / params.scale)


def _tau_d(params) -> float:
    """τ d' = 10 Σ_{j<m} exp(-2π² σ_l² j/(j+1)) d' (Kairouz, Liu, Steinke 2021, Thm. 1),
    written out here."""
    m, s = params.clients_per_round, params.local_stddev
    return 10.0 * sum(math.exp(-2.0 * math.pi ** 2 * s * s * j / (j + 1))
                      for j in range(1, m)) * params.padded_dim


def test_aggregator_refuses_noise_whose_tau_d_exceeds_1e_minus_6():
    """The coarse-noise check is on τ d' (not τ / d'): with d' = 1024 and m = 2, a σ whose
    τ d' lies in (1e-5, 1e-3) is refused (τ / d' < 1e-9 there), one with τ d' < 1e-7 accepted;
    a non-aggregator inner and a float rotation_seed are named."""
    inner = distributed_dp.inner_aggregator('plain', 16, 2)
    grid = [distributed_dp.DdgParams(1.0, s, 2, 1024, bits=16)
            for s in np.geomspace(1e-6, 1e-4, 400)]
    coarse = next(p for p in grid if 1e-5 < _tau_d(p) < 1e-3)
    fine = next(p for p in grid if _tau_d(p) < 1e-7)
    with pytest.raises(ValueError, match=r'^the discrete noise is too coarse \(τ d = '):
        distributed_dp.DistributedDpAggregator(coarse, inner)
    assert distributed_dp.DistributedDpAggregator(fine, inner).rounds == 0
    with pytest.raises(TypeError, match=r'^inner must be a SecureAggregator, got object$'):
        distributed_dp.DistributedDpAggregator(fine, object())
    with pytest.raises(TypeError, match=r'^rotation_seed must be an int'):
        distributed_dp.DistributedDpAggregator(fine, inner, rotation_seed=1.5)


_DDG = dict(l2_norm_clip=1.0, noise_multiplier=1.0, clients_per_round=4, dim=100)


@pytest.mark.parametrize('change, error, message', [
    ({'l2_norm_clip': 0.0}, ValueError, r'l2_norm_clip must be > 0, got 0\.0'),
    ({'noise_multiplier': -0.5}, ValueError, r'noise_multiplier must be >= 0, got -0\.5'),
    ({'clients_per_round': 0}, ValueError, r'clients_per_round must be >= 1, got 0'),
    ({'clients_per_round': 2.0}, TypeError, r'clients_per_round must be an int, got float 2\.0'),
    ({'dim': 0}, ValueError, r'dim must be >= 1, got 0'),
    ({'dim': 8.0}, TypeError, r'dim must be an int, got float 8\.0'),
    ({'bits': 1}, ValueError, r'bits must be >= 2, got 1'),
    ({'bits': 31}, ValueError, r'bits must be <= 30, got 31'),
    ({'beta': -0.1}, ValueError, r'beta must be >= 0, got -0\.1'),
    ({'beta': 1.0}, ValueError, r'beta must be in \[0, 1\), got 1\.0'),
    ({'beta': 1.5}, ValueError, r'beta must be <= 1, got 1\.5'),
    ({'modclip_prob': 0.0}, ValueError, r'modclip_prob must be > 0, got 0\.0'),
    ({'modclip_prob': 1.5}, ValueError, r'modclip_prob must be <= 1, got 1\.5'),
    ({'bits': 4, 'clients_per_round': 17}, ValueError,
     r'bits=4 leaves no room for 17 clients at modclip_prob=0\.0001: raise bits'),
])
def test_ddg_params_name_each_bad_argument_and_its_bound(change, error, message):
    """Each argument's bound, exactly: the value just outside is refused naming it, the bound
    itself (or just inside) accepted. The room check 2^(2b) > m k², k = Φ^-1(1 - p/2) = 3.8906
    at p = 1e-4: b = 4 holds m = 16 (242.2 < 256), not m = 17 (257.3)."""
    with pytest.raises(error, match=f'^{message}$'):
        distributed_dp.DdgParams(**{**_DDG, **change})


@pytest.mark.parametrize('change', [
    {'l2_norm_clip': 1e-9}, {'noise_multiplier': 0.0}, {'clients_per_round': 1}, {'dim': 1},
    {'bits': 2, 'clients_per_round': 1}, {'bits': 30}, {'beta': 0.0}, {'modclip_prob': 1.0},
    {'bits': 4, 'clients_per_round': 16}])
def test_ddg_params_accept_the_bounds(change):
    params = distributed_dp.DdgParams(**{**_DDG, **change})
    assert all(getattr(params, key) == value for key, value in change.items())


def test_discrete_gaussian_below_sigma_one_matches_its_pmf_in_int64():
    """σ = 0.8 (proposal scale t = floor σ + 1 = 1, the smallest): counts at |x| <= 3 within 5
    binomial sd of n P(x), P(x) ∝ exp(-x² / (2σ²)) summed here; samples and zeros are int64."""
    sigma, n = 0.8, 100_000
    samples = distributed_dp.discrete_gaussian(sigma, n, Prg(RandomSource(seed=6)))
    support = np.arange(-30, 31)
    pmf = np.exp(-support ** 2 / (2 * sigma ** 2))
    pmf /= pmf.sum()
    for v, p in zip(support[27:34], pmf[27:34]):
        assert abs((samples == v).sum() - n * p) < 5 * math.sqrt(n * p * (1 - p)), v
    assert samples.dtype == np.int64
    assert distributed_dp.discrete_gaussian(0.0, 4, Prg(RandomSource(seed=6))).dtype == np.int64
