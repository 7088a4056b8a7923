"""make_private as a Keras user calls it, and the noise it adds (issue #14 items 1, 3)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tfpriv.dp import accounting, make_private, replace_batchnorm
from tfpriv.dp.clipping import all_layers
from tfpriv.model import build_model

L = tf.keras.layers


def test_user_compile_fit_and_epsilon(mnist):
    x, y = mnist.x_train[:1200], mnist.y_train[:1200]
    model = build_model('mlp', (28, 28, 1), 10, dropout=0.0)
    private = make_private(model, num_examples=1200, batch_size=60, l2_norm_clip=1.0,
                           noise_multiplier=1.1, learning_rate=0.5)
    assert private.sampling == 'poisson' and private.clipping == 'fast'
    private.model.compile(optimizer=private.optimizer, loss=private.loss, metrics=['accuracy'])
    history = private.model.fit(private.dataset(x, y), epochs=2, verbose=0,
                                callbacks=[private.epsilon_callback])
    assert history.history['epsilon'] == pytest.approx([private.epsilon(1), private.epsilon(2)])
    assert history.history['epsilon'][-1] == pytest.approx(
        accounting.dpsgd_epsilon(1.1, 60 / 1200, 40, 1e-4))
    assert history.history['epsilon_pld'][-1] < history.history['epsilon'][-1]
    assert history.history['accuracy'][-1] > 0.3  # it learns (chance 0.1)
    # The user's own model shares the trained weights.
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), private.model.get_weights()))
    assert private.delta == 1e-4 == accounting.default_delta(1200)


def test_shuffle_sampling_is_accounted_as_fixed_size():
    model = build_model('mlp', (28, 28, 1), 10, dropout=0.0)
    private = make_private(model, num_examples=1000, batch_size=50, l2_norm_clip=1.0,
                           noise_multiplier=1.0, sampling='shuffle')
    assert private.epsilon(2) == pytest.approx(accounting.dpsgd_epsilon(
        1.0, 0.05, 40, 1e-4, sampling='shuffle', num_examples=1000))
    assert private.epsilon(2) > accounting.dpsgd_epsilon(1.0, 0.05, 40, 1e-4)
    assert not private.epsilon_callback.pld


def test_target_epsilon_calibrates_noise():
    model = build_model('mlp', (28, 28, 1), 10, dropout=0.0)
    private = make_private(model, num_examples=60000, batch_size=256, l2_norm_clip=1.0,
                           target_epsilon=2.0, epochs=10)
    assert 1.98 <= private.epsilon(10) <= 2.0
    assert private.epsilon(11) > 2.0


SIGMA, CLIP, LR, BATCH = 1.3, 0.5, 2.0, 20


def _update(private, weights, x, y):
    private.model.set_weights(weights)
    private.model.train_on_batch(x, y)
    return np.concatenate([(a - b).ravel() for a, b in zip(private.model.get_weights(), weights)])


@pytest.mark.parametrize('clipping', ['fast', 'vectorized', 'microbatch'])
def test_noise_is_scaled_to_the_expected_batch_size(mnist, clipping):
    """The update is lr (sum of clipped grads + N(0, σ²C² I)) / (q n), q n = 20 here.

    With a batch of 7 examples the clipped part (measured with σ = 0 from the same
    weights) is subtracted; with an empty Poisson batch there is none. The rest is
    N(0, s²) per coordinate, s = lr σ C / (q n) = 0.065, independently over the
    d = 55,050 weights, so sum(noise²)/s² ~ χ²(d). Accepted in the two-sided 1e-6
    quantiles of χ²(d)/d (about ±2.6 %); dividing by the actual batch size (7: s × 2.9;
    0: ∞) or dropping the noise (0) fails.
    """
    tf.keras.utils.set_random_seed(5)
    model = build_model('mlp', (28, 28, 1), 10, dropout=0.0)
    kwargs = dict(num_examples=1000, batch_size=BATCH, l2_norm_clip=CLIP, learning_rate=LR,
                  clipping=clipping)
    noisy = make_private(model, noise_multiplier=SIGMA, **kwargs)
    exact = make_private(model, noise_multiplier=0.0, **kwargs)
    for private in (noisy, exact):
        private.model.compile(optimizer=private.optimizer, loss=private.loss)
    weights = model.get_weights()
    x, y = mnist.x_train[:7], mnist.y_train[:7]
    clipped = _update(exact, weights, x, y)
    assert 0 < np.linalg.norm(clipped) <= LR * 7 * CLIP / BATCH * (1 + 1e-5)
    scale = LR * SIGMA * CLIP / BATCH
    lo, hi = (stats.chi2.ppf(p, clipped.size) / clipped.size for p in (5e-7, 1 - 5e-7))
    for noise in (_update(noisy, weights, x, y) - clipped, _update(noisy, weights, x[:0], y[:0])):
        ratio = np.mean(noise.astype(np.float64) ** 2) / scale ** 2
        assert lo <= ratio <= hi, (ratio, lo, hi)


@pytest.mark.parametrize('kwargs,message', [
    ({'batch_size': 0}, 'batch_size'),
    ({'batch_size': 101}, 'batch_size'),
    ({'l2_norm_clip': 0.0}, 'l2_norm_clip'),
    ({'noise_multiplier': None}, 'exactly one'),
    ({'target_epsilon': 1.0}, 'exactly one'),
    ({'noise_multiplier': None, 'target_epsilon': 1.0}, 'needs epochs'),
    ({'delta': 2.0}, 'delta'),
    ({'delta': 0.01}, r'delta must be < 1/num_examples'),
    ({'clipping': 'ghost'}, 'clipping'),
    ({'optimizer': 'rmsprop'}, 'optimizer'),
    ({'sampling': 'uniform'}, 'sampling'),
])
def test_bad_arguments(kwargs, message):
    model = build_model('mlp', (28, 28, 1), 10, dropout=kwargs.pop('dropout', 0.0))
    args = {'num_examples': 100, 'batch_size': 10, 'l2_norm_clip': 1.0, 'noise_multiplier': 1.0,
            **kwargs}
    with pytest.raises(ValueError, match=message):
        make_private(model, **args)


def test_not_a_model():
    with pytest.raises(TypeError, match='tf.keras.Model'):
        make_private(L.Dense(3), num_examples=10, batch_size=1, l2_norm_clip=1.0,
                     noise_multiplier=1.0)
    with pytest.raises(TypeError, match='num_examples'):
        make_private(build_model('mlp', (28, 28, 1), 10), num_examples=10.0, batch_size=1,
                     l2_norm_clip=1.0, noise_multiplier=1.0)


def _functional_with_batchnorm():
    inner = tf.keras.Sequential([L.Dense(8, input_shape=(16,)), L.BatchNormalization()],
                                name='inner')
    inputs = tf.keras.Input((28, 28, 1))
    h = L.Conv2D(4, 3, name='conv')(inputs)
    h = L.BatchNormalization(name='bn_top')(h)
    h = L.Dense(16)(L.Flatten()(h))
    return tf.keras.Model(inputs, L.Dense(10)(inner(h)))


def _sequential_with_batchnorm():
    return tf.keras.Sequential([tf.keras.Input((28, 28, 1)), L.Flatten(), L.Dense(12, name='d1'),
                                L.BatchNormalization(name='bn'), L.Dense(10)])


@pytest.mark.parametrize('build,names', [(_functional_with_batchnorm, ['bn_top', 'batch_normalization']),
                                         (_sequential_with_batchnorm, ['bn'])])
def test_batchnorm_is_refused_with_the_reason_and_the_fix(build, names):
    """Issue #14 item 3: BatchNorm (also nested) mixes examples and leaks its moving statistics."""
    with pytest.raises(ValueError) as error:
        make_private(build(), num_examples=100, batch_size=10, l2_norm_clip=1.0, noise_multiplier=1.0)
    message = str(error.value)
    assert all(f"'{name}" in message for name in names), message
    for part in ('statistics of the whole batch', 'leak', 'GroupNormalization',
                 'LayerNormalization', 'replace_batchnorm'):
        assert part in message


@pytest.mark.parametrize('build,groups', [(_functional_with_batchnorm, 4),
                                          (_sequential_with_batchnorm, None)])
def test_replace_batchnorm_gives_a_trainable_model_with_the_same_weights(mnist, build, groups):
    model = build()
    fixed = replace_batchnorm(model, groups=groups)
    kinds = [type(layer) for layer in all_layers(fixed)]
    assert L.GroupNormalization in kinds
    assert not any(issubclass(kind, L.BatchNormalization) for kind in kinds)
    assert any(issubclass(type(layer), L.BatchNormalization) for layer in all_layers(model))
    first = fixed.layers[1] if isinstance(fixed, tf.keras.Sequential) else fixed.get_layer('conv')
    original = model.get_layer(first.name)
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), original.get_weights()))
    assert fixed(mnist.x_train[:3]).shape == (3, 10)
    private = make_private(fixed, num_examples=20, batch_size=10, l2_norm_clip=1.0,
                           noise_multiplier=1.0)
    private.model.compile(optimizer=private.optimizer, loss=private.loss)
    history = private.model.fit(private.dataset(mnist.x_train[:20], mnist.y_train[:20]),
                                epochs=1, verbose=0)
    assert np.isfinite(history.history['loss'][0])
    with pytest.raises(ValueError, match='groups must divide'):
        replace_batchnorm(model, groups=5)


def test_microbatch_path_handles_a_last_partial_batch(mnist):
    """130 examples, expected batch 60: the microbatch loop takes any batch size."""
    model = build_model('mlp', (28, 28, 1), 10)
    private = make_private(model, num_examples=130, batch_size=60, l2_norm_clip=1.0,
                           noise_multiplier=1.0, clipping='microbatch')
    private.model.compile(optimizer=private.optimizer, loss=private.loss)
    history = private.model.fit(private.dataset(mnist.x_train[:130], mnist.y_train[:130]),
                                epochs=1, verbose=0, callbacks=[private.epsilon_callback])
    assert np.isfinite(history.history['loss'][0])
    assert history.history['epsilon'][0] == pytest.approx(private.epsilon(1))
