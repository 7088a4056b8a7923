"""The DP-SGD run's optimizer: learning-rate schedules and momentum (`make_optimizer`)."""

import math

import pytest

from tfpriv.experiments.dpsgd import TrainConfig, make_optimizer


def _rate(optimizer, step):
    schedule = optimizer._learning_rate  # pylint: disable=protected-access  (schedule or variable)
    return float(schedule(step)) if callable(schedule) else float(schedule)


@pytest.mark.parametrize('step', [0, 1, 37, 75, 120, 150])
def test_cosine_follows_the_half_cosine(step):
    """η_t = η (1 + cos(π t / T)) / 2 with T = epochs x steps per epoch = 5 x 30."""
    optimizer = make_optimizer(TrainConfig(learning_rate=4.0, epochs=5, lr_schedule='cosine'), 30)
    assert _rate(optimizer, step) == pytest.approx(4.0 * (1 + math.cos(math.pi * step / 150)) / 2,
                                                   rel=1e-5, abs=1e-6)


def test_constant_schedule_and_momentum():
    optimizer = make_optimizer(TrainConfig(learning_rate=0.3, momentum=0.9), 10)
    assert _rate(optimizer, 0) == _rate(optimizer, 1000) == pytest.approx(0.3)
    assert optimizer.momentum == pytest.approx(0.9)
    assert type(make_optimizer(TrainConfig(optimizer='adam'), 10)).__name__ == 'Adam'
