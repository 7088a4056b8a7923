"""The batches `PrivateTraining.dataset` feeds are the ones the accountant assumes (issue #14 items 1, 6)."""

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.dp import make_private
from tfpriv.dp.sampling import fixed_size_batches, poisson_batches
from tfpriv.model import build_model

N = 200


def _rows(dataset):
    """The row ids of every batch (x holds each row's id)."""
    return [x.numpy().astype(int).ravel() for x, _ in dataset]


def _ids():
    return np.arange(N, dtype=np.float32)[:, None], np.zeros(N, dtype=np.int64)


def test_poisson_batches_have_binomial_sizes_and_empty_batches():
    """Each example joins each step independently w.p. q: the total count over S steps is
    Binomial(S n, q); we accept it within 5 standard deviations (two-sided, p < 1e-6)."""
    tf.keras.utils.set_random_seed(0)
    q, steps = 0.01, 300
    batches = _rows(poisson_batches(*_ids(), q, steps))
    sizes = np.array([len(b) for b in batches])
    assert len(batches) == steps
    mean, sd = steps * N * q, np.sqrt(steps * N * q * (1 - q))
    assert abs(sizes.sum() - mean) <= 5 * sd, sizes.sum()
    # P(empty) = 0.99^200 = 0.134: among 300 steps Binomial(300, 0.134), mean 40, sd 5.9.
    assert 10 <= np.sum(sizes == 0) <= 70
    assert len(set(sizes.tolist())) > 3  # sizes vary
    assert all(len(set(b.tolist())) == len(b) for b in batches)  # no row twice in a step
    # Every example is sampled about equally: per-row counts Binomial(300, 0.01), mean 3.
    counts = np.bincount(np.concatenate(batches), minlength=N)
    assert counts.max() <= 14


def test_poisson_rate_batch_size_variance_and_row_counts_two_sided():
    """q = 0.1, n = 200, S = 500 steps, against the Binomial laws of Poisson sampling:
    - total rows Binomial(S n, q): mean 10,000, sd 94.9; 5 sd is +-4.7 %, so a rate off by
      10 % (11,000) fails by 10 sd;
    - batch sizes i.i.d. Binomial(n, q), variance n q (1 - q) = 18; the sample variance of
      500 has se ~ 18 sqrt(2 / 499) (6.3 %): within 5 se, so fixed-size batches (variance 0)
      fail;
    - per-row counts i.i.d. Binomial(S, q) (rows join independently): the sum of
      (c - S q)^2 / (S q (1 - q)) is ~ chi-square with n = 200 df; inside its two-sided
      0.1 % region (scipy quantiles), so skewed or too-even row coverage fails."""
    from scipy import stats
    tf.keras.utils.set_random_seed(1)
    q, steps = 0.1, 500
    batches = _rows(poisson_batches(*_ids(), q, steps))
    sizes = np.array([len(b) for b in batches])
    mean, sd = steps * N * q, np.sqrt(steps * N * q * (1 - q))
    assert abs(sizes.sum() - mean) <= 5 * sd, sizes.sum()
    var = N * q * (1 - q)
    assert abs(sizes.var(ddof=1) - var) <= 5 * var * np.sqrt(2 / (steps - 1)), sizes.var()
    counts = np.bincount(np.concatenate(batches), minlength=N)
    statistic = float(((counts - steps * q) ** 2).sum() / (steps * q * (1 - q)))
    low, high = stats.chi2.ppf([0.001, 0.999], N)
    assert low < statistic < high, statistic


def test_each_epoch_draws_new_batches():
    tf.keras.utils.set_random_seed(0)
    for dataset in (poisson_batches(*_ids(), 0.1, 5), fixed_size_batches(*_ids(), 20, 5)):
        first, second = _rows(dataset), _rows(dataset)
        assert any(not np.array_equal(a, b) for a, b in zip(first, second))


def test_fixed_size_batches_are_uniform_subsets_of_exactly_b():
    tf.keras.utils.set_random_seed(0)
    batches = _rows(fixed_size_batches(*_ids(), 20, 100))
    assert all(len(b) == 20 == len(set(b.tolist())) for b in batches)
    counts = np.bincount(np.concatenate(batches), minlength=N)
    # Each row in a step w.p. B / n = 0.1, so its count has variance S (B/n)(1 - B/n) = 9;
    # the counts sum to S B exactly, so sum (c - 10)^2 / 9 is ~ chi-square with n - 1 df.
    # Two-sided 0.1 % region (scipy quantiles): a biased or a round-robin picker fails.
    from scipy import stats
    statistic = float(((counts - 10) ** 2).sum() / 9)
    low, high = stats.chi2.ppf([0.001, 0.999], N - 1)
    assert low < statistic < high, statistic


def _private(**kwargs):
    model = build_model('mlp', (28, 28, 1), 10, dropout=0.0)
    args = dict(num_examples=1000, batch_size=50, l2_norm_clip=1.0, noise_multiplier=1.0)
    return make_private(model, **{**args, **kwargs})


def test_dataset_refuses_data_of_another_size(mnist):
    """Issue #14 item 6: num_examples=60000 with 6,000 fitted reported ε 0.84 instead of 2.08."""
    private = _private()
    with pytest.raises(ValueError, match='num_examples=500'):
        private.dataset(mnist.x_train[:500], mnist.y_train[:500])
    with pytest.raises(ValueError, match='same length'):
        private.dataset(mnist.x_train[:1000], mnist.y_train[:999])


def test_fit_takes_only_the_private_feed(mnist):
    private = _private()
    private.model.compile(optimizer=private.optimizer, loss=private.loss)
    x, y = mnist.x_train[:1000], mnist.y_train[:1000]
    with pytest.raises(ValueError, match=r'private.dataset\(x, y\)'):
        private.model.fit(x, y, batch_size=50, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r'private.dataset\(x, y\)'):
        private.model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(50), verbose=0)
    history = private.model.fit(private.dataset(x, y), epochs=1, verbose=0)
    assert np.isfinite(history.history['loss'][0])


@pytest.mark.parametrize('make, message', [
    (lambda: fixed_size_batches(*_ids(), 0, 5), '^batch_size must be >= 1'),
    (lambda: fixed_size_batches(*_ids(), N + 1, 5), f'^batch_size must be <= {N}'),
    (lambda: fixed_size_batches(*_ids(), 10, 0), '^steps must be >= 1'),
    (lambda: poisson_batches(*_ids(), 0.0, 5), '^sampling_probability must be'),
    (lambda: poisson_batches(*_ids(), 1.5, 5), '^sampling_probability must be'),
    (lambda: poisson_batches(*_ids(), 0.1, 0), '^steps must be >= 1'),
])
def test_sampler_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_whole_population_and_q_one_take_every_row_once():
    """B = n and q = 1 are allowed (the bounds are inclusive): every step is all n rows;
    B = 1 gives one row per step."""
    assert [len(b) for b in _rows(fixed_size_batches(*_ids(), 1, 4))] == [1, 1, 1, 1]
    for dataset in (fixed_size_batches(*_ids(), N, 3), poisson_batches(*_ids(), 1.0, 3)):
        batches = _rows(dataset)
        assert len(batches) == 3
        assert all(sorted(b.tolist()) == list(range(N)) for b in batches)


def test_a_seed_fixes_the_batches_and_sample_weights_ride_along():
    """The same seed draws the same batches from two datasets, another seed others; with a
    sample_weight each batch is (x, y, w) with w the rows of x (here w = 10 x id)."""
    x, y = _ids()
    weight = 10 * x[:, 0]
    for make in (lambda s, w=None: fixed_size_batches(x, y, 20, 4, seed=s, sample_weight=w),
                 lambda s, w=None: poisson_batches(x, y, 0.1, 4, seed=s, sample_weight=w)):
        first, again, other = _rows(make(7)), _rows(make(7)), _rows(make(8))
        assert all(np.array_equal(a, b) for a, b in zip(first, again))
        assert not all(np.array_equal(a, b) for a, b in zip(first, other))
        for xb, yb, wb in make(7, weight):
            np.testing.assert_array_equal(wb.numpy(), 10 * xb.numpy()[:, 0])
            assert len(yb) == len(xb)
