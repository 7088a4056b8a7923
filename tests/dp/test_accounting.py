import dp_accounting
import pytest

from tfpriv.dp import accounting


def test_reference_figures():
    """n=60000, batch 256, σ=1.1, 60 epochs (14062 steps), δ=1e-5: RDP 2.597, PLD 2.382."""
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
    ((-1.0, 0.1, 10), 'noise_multiplier'),
    ((1.0, 0.0, 10), 'sampling_probability'),
    ((1.0, 1.5, 10), 'sampling_probability'),
    ((1.0, 0.1, -1), 'steps'),
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
