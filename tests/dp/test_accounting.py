import math

import dp_accounting
import dp_accounting.rdp
import pytest

from tfpriv.dp import accounting


def _sgm_log_moment(q: float, sigma: float, alpha: int) -> float:
    """log A_α of the Poisson-sampled Gaussian at an integer order α (Mironov, Talwar, Zhang
    2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", Sec. 3.3):
    A_α = Σ_k C(α, k) (1 − q)^(α−k) q^k exp((k² − k) / (2σ²)); its RDP is log A_α / (α − 1).
    Summed here in log space with Python floats, independently of dp_accounting."""
    if q == 1:  # no sampling: the Gaussian's α(α − 1)/(2σ²)
        return (alpha * alpha - alpha) / (2 * sigma ** 2)
    terms = [math.lgamma(alpha + 1) - math.lgamma(k + 1) - math.lgamma(alpha - k + 1)
             + (alpha - k) * math.log1p(-q) + k * math.log(q) + (k * k - k) / (2 * sigma ** 2)
             for k in range(alpha + 1)]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


INTEGER_ORDERS = tuple(range(2, 64)) + (128, 256, 512)


def _reference_dpsgd_epsilon(q: float, sigma: float, steps: int, delta: float) -> float:
    """min over INTEGER_ORDERS of T ε_α + log((α − 1)/α) − (log δ + log α)/(α − 1), the RDP to
    (ε, δ) conversion of Canonne, Kamath, Steinke 2020 ("The Discrete Gaussian for
    Differential Privacy", Prop. 12), with ε_α from `_sgm_log_moment`."""
    return min(steps * _sgm_log_moment(q, sigma, a) / (a - 1) + math.log1p(-1 / a)
               - math.log(delta * a) / (a - 1) for a in INTEGER_ORDERS)


@pytest.mark.parametrize('q, sigma, steps, delta', [
    (256 / 60000, 1.1, 14062, 1e-5),  # MNIST, batch 256, 60 epochs
    (0.01, 1.0, 1000, 1e-5), (0.1, 4.0, 100, 1e-6), (0.5, 2.0, 10, 1e-3), (1.0, 5.0, 3, 1e-5)])
def test_dpsgd_epsilon_matches_an_independent_rdp_formula(q, sigma, steps, delta):
    """On the integer orders the formula covers, tfpriv's DP-SGD event and accountant give the
    reference to 1e-9 (two-sided: a wrong q, σ, step count or neighbouring relation is far
    off). On the default grid, which adds fractional orders, ε can only be lower, and by
    less than 1 % (the fractional orders lie between integer ones that are in both grids)."""
    reference = _reference_dpsgd_epsilon(q, sigma, steps, delta)
    event = accounting.dpsgd_event(sigma, q, steps)
    on_integers = accounting.make_accountant(orders=[float(a) for a in INTEGER_ORDERS])
    assert on_integers.compose(event).get_epsilon(delta) == pytest.approx(reference, rel=1e-9)
    default = accounting.dpsgd_epsilon(sigma, q, steps, delta)
    assert 0.99 * reference <= default <= reference * (1 + 1e-12)


def test_reference_figures():
    """n=60000, batch 256, σ=1.1, 60 epochs (14062 steps), δ=1e-5: RDP 2.597, PLD 2.382.
    The RDP figure is the independent formula's 2.5970 (integer orders,
    `test_dpsgd_epsilon_matches_an_independent_rdp_formula`) lowered to 2.5966 by the
    default grid's fractional orders; PLD is tighter than RDP, as it must be."""
    assert _reference_dpsgd_epsilon(256 / 60000, 1.1, 14062, 1e-5) == pytest.approx(2.5970, abs=1e-4)
    q, steps = 256 / 60000, int(60 * 60000 / 256)
    assert accounting.dpsgd_epsilon(1.1, q, steps, 1e-5) == pytest.approx(2.597, abs=5e-4)
    assert accounting.dpsgd_epsilon(1.1, q, steps, 1e-5, 'pld') == pytest.approx(2.382, abs=5e-4)


def test_event_is_self_composed_poisson_gaussian():
    event = accounting.dpsgd_event(1.3, 0.01, 7)
    assert event == dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(1.3)), 7)


def test_epsilon_grows_with_steps_and_edge_cases():
    values = [accounting.dpsgd_epsilon(1.0, 0.01, s, 1e-5) for s in (100, 1000, 10000)]
    assert values == sorted(values) and values[0] > 0
    assert accounting.dpsgd_epsilon(1.0, 0.01, 0, 1e-5) == 0
    assert accounting.dpsgd_epsilon(0.0, 0.01, 10, 1e-5) == float('inf')


def test_calibration_meets_target_tightly():
    sigma = accounting.calibrate_noise_multiplier(1.0, 0.01, 2000, 1e-5)
    eps = accounting.dpsgd_epsilon(sigma, 0.01, 2000, 1e-5)
    assert 0.99 <= eps <= 1.0
    assert accounting.dpsgd_epsilon(sigma * 0.99, 0.01, 2000, 1e-5) > 1.0


@pytest.mark.parametrize('args,message', [
    ((-1.0, 0.1, 10), '^noise_multiplier must be'),
    ((1.0, 0.0, 10), '^sampling_probability must be'),
    ((1.0, 1.5, 10), '^sampling_probability must be'),
    ((1.0, 0.1, -1), '^steps must be'),
    ((1.0, 0.1, 1, 'uniform'), "^sampling must be one of \\('poisson', 'shuffle'\\)"),
    ((1.0, 0.1, 1, 'shuffle'), "^sampling='shuffle' needs num_examples$"),
])
def test_bad_event_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        accounting.dpsgd_event(*args)


def test_bad_delta_and_accountant():
    event = accounting.dpsgd_event(1.0, 0.1, 10)
    with pytest.raises(ValueError, match='delta'):
        accounting.epsilon(event, 0.0)
    with pytest.raises(ValueError, match='accountant'):
        accounting.epsilon(event, 1e-5, 'moments')


@pytest.mark.parametrize('n', [1, 2, 6, 10, 99, 100, 999, 1000, 1001, 1200, 60000, 10**6])
def test_default_delta_is_strictly_below_one_over_n(n):
    """Issue #14 item 5: δ must be < 1/n (a δ of 1/n allows releasing one record outright)."""
    delta = accounting.default_delta(n)
    assert 0 < delta < 1 / n
    assert delta <= 1e-2


def test_default_delta_figures():
    assert accounting.default_delta(60000) == 1e-5  # MNIST keeps the usual value
    assert accounting.default_delta(1000) == 1e-4 < 1e-3
    # n = 1 used to give δ = 1, with which epsilon() raises.
    assert accounting.dpsgd_epsilon(1.0, 1.0, 1, accounting.default_delta(1)) > 0
    with pytest.raises(TypeError, match='num_examples'):
        accounting.default_delta(1.5)


def _reference_fixed_size_epsilon(n, batch, sigma, steps, delta):
    """Straight from dp_accounting: replace-one RDP of sampling B of n without replacement.

    Replacing one example moves the clipped sum by up to 2C, so relative to that
    sensitivity the Gaussian's multiplier is σ/2 (Wang, Balle, Kasiviswanathan 2019, Thm. 27).
    """
    acc = dp_accounting.rdp.RdpAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    acc.compose(dp_accounting.SampledWithoutReplacementDpEvent(
        n, batch, dp_accounting.GaussianDpEvent(sigma / 2)), steps)
    return acc.get_epsilon(delta)


def test_shuffle_is_accounted_as_fixed_size_sampling_never_by_the_poisson_formula():
    """Issue #14 item 1, reference n = 60,000, batch 256, σ = 1.1, 60 epochs, δ = 1e-5.

    Poisson RDP ε = 2.597 (test_reference_figures). The issue's ~5.25 for fixed-size
    batches composes SampledWithoutReplacement(Gaussian(σ)), i.e. sensitivity C under
    replace-one; the sum of clipped gradients has replace-one sensitivity 2C, which gives
    24.08 (dp_accounting 0.4.3). So the honest figure is at least the issue's, and far
    from Poisson's.
    """
    q, steps = 256 / 60000, int(60 * 60000 / 256)
    shuffle = accounting.dpsgd_epsilon(1.1, q, steps, 1e-5, sampling='shuffle', num_examples=60000)
    assert shuffle == pytest.approx(_reference_fixed_size_epsilon(60000, 256, 1.1, steps, 1e-5))
    assert shuffle == pytest.approx(24.08, abs=0.01)
    assert shuffle > 5.24 > 2 * accounting.dpsgd_epsilon(1.1, q, steps, 1e-5)


def test_shuffle_needs_rdp_and_num_examples():
    with pytest.raises(ValueError, match='pld'):
        accounting.dpsgd_epsilon(1.0, 0.01, 10, 1e-5, 'pld', 'shuffle', 1000)
    with pytest.raises(ValueError, match='num_examples'):
        accounting.dpsgd_event(1.0, 0.01, 10, 'shuffle')
    with pytest.raises(ValueError, match='sampling'):
        accounting.dpsgd_event(1.0, 0.01, 10, 'uniform')


def test_calibration_for_shuffle_meets_its_own_accounting():
    sigma = accounting.calibrate_noise_multiplier(3.0, 0.05, 200, 1e-4, 'shuffle', 1000)
    assert 2.97 <= _reference_fixed_size_epsilon(1000, 50, sigma, 200, 1e-4) <= 3.0
    assert sigma > accounting.calibrate_noise_multiplier(3.0, 0.05, 200, 1e-4)


def test_fedavg_and_pate_events_come_from_here():
    assert accounting.fedavg_event(10, 3, 1.0) == dp_accounting.SampledWithoutReplacementDpEvent(
        10, 3, dp_accounting.GaussianDpEvent(0.5))
    from tfpriv.dp.pate.aggregation import GNMax
    assert GNMax(2.0).dp_events([1, 2]) == [accounting.repeated(accounting.gaussian_event(2.0 / 2 ** 0.5), 2)]


@pytest.mark.parametrize('n, delta', [(1, 1e-2), (6, 1e-2), (99, 1e-2), (100, 1e-3),
                                      (999, 1e-3), (1000, 1e-4), (59999, 1e-5), (10**6, 1e-7)])
def test_default_delta_is_ten_to_minus_the_digit_count_at_most_1e_2(n, delta):
    """The documented rule, figures written out: n of d decimal digits gets 10^-max(d, 2)."""
    assert accounting.default_delta(n) == delta


@pytest.mark.parametrize('bad', [0, -5])
def test_default_delta_needs_a_positive_count(bad):
    with pytest.raises(ValueError, match='^num_examples must be'):
        accounting.default_delta(bad)


def test_fedavg_event_accepts_one_to_all_clients_per_round():
    assert accounting.fedavg_event(10, 1, 2.0) == dp_accounting.SampledWithoutReplacementDpEvent(
        10, 1, dp_accounting.GaussianDpEvent(1.0))
    for bad in (0, 11):
        with pytest.raises(ValueError, match=r'^clients_per_round must be in \[1, 10\], got'):
            accounting.fedavg_event(10, bad, 1.0)


@pytest.mark.parametrize('delta', [0.0, 1.0, 1.5, -1e-9])
def test_epsilon_needs_delta_strictly_inside_zero_one(delta):
    with pytest.raises(ValueError, match=r'^delta must be in \(0, 1\)'):
        accounting.epsilon(accounting.dpsgd_event(1.0, 0.1, 10), delta)
    with pytest.raises(ValueError, match=r'^delta must be in \(0, 1\)'):
        accounting.fedavg_epsilons(10, 3, 1.0, 2, delta)


def test_fedavg_event_accepts_all_clients_and_epsilon_defaults_to_poisson_rdp():
    assert accounting.fedavg_event(10, 10, 2.0) == dp_accounting.SampledWithoutReplacementDpEvent(
        10, 10, dp_accounting.GaussianDpEvent(1.0))
    q, steps = 256 / 60000, int(60 * 60000 / 256)  # the test_reference_figures setting
    assert accounting.epsilon(accounting.dpsgd_event(1.1, q, steps), 1e-5) == pytest.approx(
        2.597, abs=5e-4)


def test_fedavg_epsilons_per_round_from_dp_accounting_directly():
    """K = 6, m = 3, sigma = 1: replace-one RDP of SampledWithoutReplacement(Gaussian(sigma / 2)),
    composed round by round; the reference is built here from dp_accounting's classes."""
    got = accounting.fedavg_epsilons(6, 3, 1.0, 3, 1e-2)
    for rounds, value in enumerate(got, start=1):
        acc = dp_accounting.rdp.RdpAccountant(
            neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
        acc.compose(dp_accounting.SampledWithoutReplacementDpEvent(
            6, 3, dp_accounting.GaussianDpEvent(0.5)), rounds)
        assert value == pytest.approx(acc.get_epsilon(1e-2), rel=1e-9)
    assert got[0] < got[1] < got[2]
    assert accounting.fedavg_epsilons(6, 3, 0.0, 2, 1e-2) == [float('inf')] * 2


# --- distributed DP (DDGauss) and Poisson client sampling: NumPy-only references (issue #20) ---

def _rdp_epsilons(events, delta, relation):
    """ε(δ) after each prefix of `events`, from dp_accounting's RdpAccountant built here."""
    acc, out = dp_accounting.rdp.RdpAccountant(neighboring_relation=relation), []
    for event in events:
        acc.compose(event)
        out.append(acc.get_epsilon(delta))
    return out


@pytest.mark.parametrize('sigma_l, k', [(0.5, 2), (0.3, 3), (0.25, 5)])
def test_ddgauss_tau_is_kairouz_liu_steinke_theorem_1(sigma_l, k):
    """τ = 10 Σ_{j=1}^{k-1} exp(-2π² σ_l² j/(j+1)) (Kairouz, Liu, Steinke 2021, Thm. 1), summed
    here term by term; the σ_l are small enough that every term matters (τ > 1e-3)."""
    terms = [math.exp(-2 * math.pi ** 2 * sigma_l ** 2 * j / (j + 1)) for j in range(1, k)]
    assert accounting.ddgauss_tau(sigma_l, k) == pytest.approx(10 * sum(terms), rel=1e-12)
    assert accounting.ddgauss_tau(sigma_l, k) > 1e-3
    assert accounting.ddgauss_tau(sigma_l, 1) == 0.0  # one share: no sum, no gap


def test_ddgauss_tau_figure():
    """σ_l = 0.5, k = 2: 10 exp(-π²/4) = 0.8480 (one term, j = 1, by hand)."""
    assert accounting.ddgauss_tau(0.5, 2) == pytest.approx(0.84804, abs=1e-5)


def test_ddgauss_noise_multiplier_is_sqrt_k_sigma_over_sensitivity():
    """σ_eff = sqrt(k) σ_l / Δ: 4 shares of σ_l = 3 over Δ = 2 give 3.0; 9 shares of 1 over 1.5
    give 2.0."""
    assert accounting.ddgauss_noise_multiplier(3.0, 2.0, 4) == pytest.approx(3.0, rel=1e-12)
    assert accounting.ddgauss_noise_multiplier(1.0, 1.5, 9) == pytest.approx(2.0, rel=1e-12)
    assert accounting.ddgauss_noise_multiplier(1.0, 1.0, 1) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize('call, message', [
    (lambda: accounting.ddgauss_noise_multiplier(1.0, 0.0, 4), '^l2_sensitivity'),
    (lambda: accounting.ddgauss_noise_multiplier(1.0, 1.0, 0), '^contributors'),
    (lambda: accounting.ddgauss_tau(1.0, 0), '^contributors'),
    (lambda: accounting.poisson_fedavg_event(0.0, 1.0), '^client_fraction'),
    (lambda: accounting.poisson_fedavg_event(1.5, 1.0), '^client_fraction'),
    (lambda: accounting.fedavg_epsilons(20, 5, 1.0, 2, 1e-2, 'poisson'),
     "^client_sampling='poisson' needs client_fraction$"),
    (lambda: accounting.fedavg_epsilons(20, 5, 1.0, 2, 1e-2, 'uniform'), '^client_sampling'),
    (lambda: accounting.ddgauss_fedavg_epsilons(100, [10, 10], [1.0], 1e-3),
     r'^contributors \(2\) and noise_multipliers \(1\) must have one entry per round'),
    (lambda: accounting.ddgauss_fedavg_epsilons(100, [10], [1.0], 1.0), r'^delta must be in \(0, 1\)'),
])
def test_ddgauss_and_poisson_fedavg_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_ddgauss_fedavg_epsilons_per_round_from_dp_accounting_directly():
    """K = 50 clients; rounds of k = 10, 7, 10 noise shares with σ_eff = 1.2, 1.0, 1.2: each a
    replace-one SampledWithoutReplacement(K, k, Gaussian(σ/2)); the reference composes them
    with dp_accounting's own classes, round by round."""
    ks, sigmas = [10, 7, 10], [1.2, 1.0, 1.2]
    got = accounting.ddgauss_fedavg_epsilons(50, ks, sigmas, 1e-3)
    ref = _rdp_epsilons([dp_accounting.SampledWithoutReplacementDpEvent(
        50, k, dp_accounting.GaussianDpEvent(s / 2)) for k, s in zip(ks, sigmas)], 1e-3,
        dp_accounting.NeighboringRelation.REPLACE_ONE)
    assert got == pytest.approx(ref, rel=1e-9)
    assert len(got) == 3 and got[0] < got[1] < got[2]


def test_a_round_without_noise_makes_every_later_epsilon_infinite():
    """A σ = 0 round releases the clipped sum in the clear: ε = ∞ from it on, finite before."""
    got = accounting.ddgauss_fedavg_epsilons(50, [10, 10, 10], [1.0, 0.0, 1.0], 1e-3)
    ref = _rdp_epsilons([dp_accounting.SampledWithoutReplacementDpEvent(
        50, 10, dp_accounting.GaussianDpEvent(0.5))], 1e-3,
        dp_accounting.NeighboringRelation.REPLACE_ONE)
    assert got[0] == pytest.approx(ref[0], rel=1e-9) and math.isfinite(got[0])
    assert got[1:] == [math.inf, math.inf]


def test_poisson_fedavg_is_the_poisson_sampled_gaussian_add_remove():
    """Poisson client sampling with fraction C: PoissonSampled(C, Gaussian(σ)) under add/remove-
    one (McMahan et al. 2018); C = 0.25, σ = 1.0, 4 rounds, δ = 1e-2, reference from
    dp_accounting; C = 1 (every client) is allowed."""
    assert accounting.poisson_fedavg_event(0.25, 1.0) == dp_accounting.PoissonSampledDpEvent(
        0.25, dp_accounting.GaussianDpEvent(1.0))
    assert accounting.poisson_fedavg_event(1.0, 2.0) == dp_accounting.PoissonSampledDpEvent(
        1.0, dp_accounting.GaussianDpEvent(2.0))
    got = accounting.fedavg_epsilons(20, 5, 1.0, 4, 1e-2, 'poisson', 0.25)
    ref = _rdp_epsilons([dp_accounting.PoissonSampledDpEvent(
        0.25, dp_accounting.GaussianDpEvent(1.0))] * 4, 1e-2,
        dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
    assert got == pytest.approx(ref, rel=1e-9)


def test_repeated_needs_a_count_of_at_least_zero():
    event = accounting.gaussian_event(1.0)
    assert accounting.repeated(event, 0) == dp_accounting.SelfComposedDpEvent(event, 0)
    with pytest.raises(ValueError, match='^count must be'):
        accounting.repeated(event, -1)


def test_epsilon_names_an_event_the_accountant_cannot_handle():
    with pytest.raises(ValueError, match=r'^the pld accountant cannot account for'):
        accounting.epsilon(dp_accounting.UnsupportedDpEvent(), 1e-5, 'pld')


def test_epsilon_of_composes_under_rdp_by_default():
    """Gaussian(2) then Laplace(1.5), δ = 1e-5: the default is dp_accounting's add/remove RDP
    accountant (built here); PLD (given explicitly) is a different, smaller figure. Laplace(b)
    of sensitivity 1 alone is pure (1/b)-DP: PLD at δ = 1e-12 gives 1/b (to its 1e-4
    discretization); δ >= 1 is refused."""
    events = [dp_accounting.GaussianDpEvent(2.0), dp_accounting.LaplaceDpEvent(1.5)]
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.ComposedDpEvent(events))
    rdp_eps = acc.get_epsilon(1e-5)
    assert accounting.epsilon_of(events, 1e-5) == pytest.approx(rdp_eps, rel=1e-9)
    pld_eps = accounting.epsilon_of(events, 1e-5, 'pld')
    assert pld_eps < 0.95 * rdp_eps
    laplace = accounting.epsilon_of([dp_accounting.LaplaceDpEvent(1.5)], 1e-12, 'pld')
    assert laplace == pytest.approx(1 / 1.5, rel=1e-3)
    for bad in (1.0, 1.5, -1e-9):
        with pytest.raises(ValueError, match=r'^delta must be in \[0, 1\)'):
            accounting.epsilon_of(events, bad)


def test_calibration_names_its_target_and_reaches_below_one():
    """A target needing σ < 1 (ε = 8 after 100 steps at q = 0.01, δ = 1e-5): the bracket starts at
    1e-3, so the smallest σ meeting it is found (ε(σ) within 1 % of the target, ε(0.99 σ) above)."""
    sigma = accounting.calibrate_noise_multiplier(8.0, 0.01, 100, 1e-5)
    assert sigma < 1.0
    eps = accounting.dpsgd_epsilon(sigma, 0.01, 100, 1e-5)
    assert 0.99 * 8.0 <= eps <= 8.0
    assert accounting.dpsgd_epsilon(0.99 * sigma, 0.01, 100, 1e-5) > 8.0
    with pytest.raises(ValueError, match='^target_epsilon'):
        accounting.calibrate_noise_multiplier(0.0, 0.01, 100, 1e-5)


def test_fixed_size_event_bounds_and_the_smallest_shuffle_batch():
    """population >= 1 and 1 <= sample_size <= population, each named; a shuffle batch
    round(q n) of 0 is raised to 1 (q = 0.001, n = 100), and 0 steps are allowed."""
    one = dp_accounting.SampledWithoutReplacementDpEvent(1, 1, dp_accounting.GaussianDpEvent(0.5))
    assert accounting.fixed_size_event(1, 1, 1.0) == one
    with pytest.raises(ValueError, match='^population must be >= 1'):
        accounting.fixed_size_event(0, 1, 1.0)
    with pytest.raises(ValueError, match='^sample_size must be <= 10'):
        accounting.fixed_size_event(10, 11, 1.0)
    assert accounting.dpsgd_event(1.0, 0.001, 3, 'shuffle', 100) == dp_accounting.SelfComposedDpEvent(
        dp_accounting.SampledWithoutReplacementDpEvent(100, 1, dp_accounting.GaussianDpEvent(0.5)), 3)
    assert accounting.dpsgd_event(1.0, 0.1, 0) == dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.GaussianDpEvent(1.0)), 0)


def test_randomized_response_adds_to_what_the_rdp_accountant_already_holds():
    """Gaussian(2) then RR(0.5) under RDP: the composition spends more than either alone
    (an accountant that overwrote its RDP curve with the RR one would report RR alone)."""
    from tfpriv.dp.randomized_response import RandomizedResponseDpEvent
    gaussian, rr = dp_accounting.GaussianDpEvent(2.0), RandomizedResponseDpEvent(0.5)
    both = accounting.epsilon_of([gaussian, rr], 1e-5)
    alone = [accounting.epsilon_of([event], 1e-5) for event in (gaussian, rr)]
    assert both > max(alone) * 1.05


def test_make_accountant_defaults_and_names():
    """RDP under add/remove by default; a bad sampling or size is refused by name."""
    acc = accounting.make_accountant()
    assert isinstance(acc, dp_accounting.rdp.RdpAccountant)
    assert acc.neighboring_relation == dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
    with pytest.raises(ValueError, match="^sampling must be one of"):
        accounting.make_accountant(sampling='uniform')
    with pytest.raises(ValueError, match='^sample_size must be >= 1'):
        accounting.fixed_size_event(10, 0, 1.0)


def test_pld_refuses_shuffle_by_name_and_rdp_orders_are_used():
    """PLD cannot account for fixed-size batches: refused with the documented message. Given
    orders replace dp_accounting's default grid: Gaussian(1) at orders 2 and 4 only gives the
    figure dp_accounting computes on that grid, larger than on the default grid."""
    with pytest.raises(ValueError, match=r"^accountant='pld' cannot account for "
                                         r"sampling='shuffle' \(fixed-size batches\); use "
                                         r"accountant='rdp'$"):
        accounting.make_accountant('pld', sampling='shuffle')
    event = dp_accounting.GaussianDpEvent(1.0)
    coarse = accounting.make_accountant(orders=[2.0, 4.0]).compose(event).get_epsilon(1e-5)
    ref = dp_accounting.rdp.RdpAccountant(orders=[2.0, 4.0]).compose(event).get_epsilon(1e-5)
    fine = accounting.make_accountant().compose(event).get_epsilon(1e-5)
    assert coarse == pytest.approx(ref, rel=1e-12)
    assert fine == pytest.approx(dp_accounting.rdp.RdpAccountant().compose(event).get_epsilon(1e-5),
                                 rel=1e-12)
    assert coarse > fine * 1.01
