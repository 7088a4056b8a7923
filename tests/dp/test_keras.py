"""make_private as a Keras user calls it, and the noise it adds (issue #14 items 1, 3)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras.src.engine import compile_utils

from tfpriv.dp import accounting, make_private, replace_batchnorm
from tfpriv.dp.clipping import all_layers
from tfpriv.model import build_model
from tfpriv.errors import FastClippingError

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
    0: ∞) or dropping the noise (0) fails. Two consecutive empty-batch steps must draw
    independent noise: their sample correlation is about N(0, 1/d), within 5 / sqrt(d)
    of 0 (noise repeated from step to step would cancel in the difference of two updates).
    (Steps of different batch shapes through `train_on_batch` are another matter: README,
    "In your own Keras project".)
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
    noises = [(_update(noisy, weights, x, y) - clipped).astype(np.float64),
              _update(noisy, weights, x[:0], y[:0]).astype(np.float64),
              _update(noisy, weights, x[:0], y[:0]).astype(np.float64)]
    for noise in noises:
        ratio = np.mean(noise ** 2) / scale ** 2
        assert lo <= ratio <= hi, (ratio, lo, hi)
    assert abs(np.corrcoef(noises[1], noises[2])[0, 1]) <= 5 / np.sqrt(clipped.size)


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


# --- Issue #15: any loss, any model shape, bounded memory, clear errors -------------------------

TINY_CLIP, TINY_LR, TINY_BATCH = 0.01, 40.0, 4  # large steps: float32 weight differences stay exact to ~1e-5
RNG = np.random.default_rng(1)
X6 = RNG.normal(size=(8, 6)).astype(np.float32)
SEQS = RNG.normal(size=(8, 3, 2)).astype(np.float32)
CLASSES = np.array([0, 2, 1, 1, 0, 2, 1, 0])
BITS = (X6[:, 0] > 0).astype(np.float32)


class _Subclassed(tf.keras.Model):
    """A user-written model: its own `call`, no Functional graph."""

    def __init__(self):
        super().__init__()
        self.hidden = L.Dense(5, activation='tanh')
        self.out = L.Dense(1)

    def call(self, inputs, training=None):
        return self.out(self.hidden(inputs))


def _functional_two_in_two_out():
    a, b = tf.keras.Input((6,), name='a'), tf.keras.Input((3, 2), name='b')
    h = L.Concatenate()([L.Dense(4, activation='relu')(a), L.Flatten()(b)])
    return tf.keras.Model({'a': a, 'b': b}, {'score': L.Dense(2, name='score')(h),
                                             'label': L.Dense(1, name='label')(h)})


def _rnn(layer):
    return tf.keras.Sequential([tf.keras.Input((3, 2)), layer, L.Dense(3)])


# name: (model builder, make_private loss, x, y, expected path)
SHAPES = {
    'functional-sparse-default': (
        lambda: tf.keras.Sequential([tf.keras.Input((6,)), L.Dense(5, activation='relu'),
                                     L.Dense(3)]), None, X6, CLASSES, 'fast'),
    'sequential-no-input-onehot-probs': (
        lambda: tf.keras.Sequential([L.Dense(5, activation='relu'),
                                     L.Dense(3, activation='softmax')]),
        'categorical_crossentropy', X6, np.eye(3)[CLASSES], 'fast'),
    'subclassed-binary-logits-N': (
        _Subclassed, tf.keras.losses.BinaryCrossentropy(from_logits=True), X6, BITS, 'fast'),
    'sigmoid-binary-string-N1': (
        lambda: tf.keras.Sequential([tf.keras.Input((6,)), L.Dense(1, activation='sigmoid')]),
        'binary_crossentropy', X6, BITS[:, None], 'fast'),
    'regression-mse': (
        lambda: tf.keras.Sequential([tf.keras.Input((6,)), L.Dense(4, activation='relu'),
                                     L.Dense(2)]), 'mse', X6, X6[:, :2], 'fast'),
    'regression-huber': (
        lambda: tf.keras.Sequential([tf.keras.Input((6,)), L.Dense(2)]),
        tf.keras.losses.Huber(delta=0.5), X6, X6[:, 2:4] * 3, 'fast'),
    'multi-input-multi-output': (
        _functional_two_in_two_out, {'score': 'mae', 'label': 'binary_crossentropy'},
        {'a': X6, 'b': SEQS}, {'score': X6[:, :2], 'label': BITS}, 'fast'),
    'simple-rnn': (lambda: _rnn(L.SimpleRNN(3)), None, SEQS, CLASSES, 'fast'),
    'lstm': (lambda: _rnn(L.LSTM(2)), None, SEQS, CLASSES, 'fast'),
    'gru': (lambda: _rnn(L.GRU(2)), None, SEQS, CLASSES, 'fast'),
    'bidirectional-gru': (lambda: _rnn(L.Bidirectional(L.GRU(2))), None, SEQS, CLASSES, 'fast'),
}


def _take(structure, rows):
    return tf.nest.map_structure(lambda t: np.asarray(t)[rows], structure)


def _brute_force_clipped(model, loss, x, y, weight=1.0):
    """clip_C(grad of weight * Keras's loss of one example), by GradientTape on the user model."""
    keras_loss = compile_utils.LossesContainer(
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True) if loss is None else loss,
        output_names=getattr(model, 'output_names', None))
    with tf.GradientTape() as tape:
        value = weight * keras_loss(tf.nest.map_structure(tf.constant, y), model(x, training=True))
    grads = tape.gradient(value, model.trainable_variables)
    flat = np.concatenate([g.numpy().ravel() for g in grads])
    return flat, flat * min(1.0, TINY_CLIP / np.linalg.norm(flat))


def _one_example_gradient(private, x, y, **kwargs):
    """The noiseless DP gradient of a one-example batch: -(update) q n / lr."""
    before = [w.copy() for w in private.model.get_weights()]
    private.model.train_on_batch(x, y, **kwargs)
    after = private.model.get_weights()
    return np.concatenate([(b - a).ravel() for a, b in zip(after, before)]) * TINY_BATCH / TINY_LR


def _private(model, loss, **kwargs):
    args = dict(num_examples=8, batch_size=TINY_BATCH, l2_norm_clip=TINY_CLIP,
                noise_multiplier=0.0, learning_rate=TINY_LR, loss=loss)
    private = make_private(model, **{**args, **kwargs})
    private.model.compile(optimizer=private.optimizer, loss=private.loss)
    return private


@pytest.mark.parametrize('name', list(SHAPES))
def test_one_example_update_is_the_brute_force_clipped_gradient(name):
    """For each loss kind and model shape: a one-example noiseless update is exactly
    clip_C(∇ loss) (brute force: GradientTape of Keras's own loss on the user model),
    two-sided: rtol 1e-4 (float32, a few hundred weights) and |update| <= C; the raw
    gradient exceeds C, so a path that did not clip (or clipped to another C, or
    used another loss or label shape) fails."""
    _check_one_example_update(name, clipping='auto')


# The per-example paths every model can take when the fast path cannot (or is not asked to).
FALLBACKS = [('sequential-no-input-onehot-probs', 'vectorized'),
             ('subclassed-binary-logits-N', 'vectorized'), ('multi-input-multi-output', 'vectorized'),
             ('lstm', 'microbatch'), ('bidirectional-gru', 'microbatch')]


@pytest.mark.parametrize('name,clipping', FALLBACKS)
def test_fallback_paths_give_the_brute_force_clipped_gradient(name, clipping):
    """The same two-sided check on the vectorized / microbatch paths, asked for explicitly."""
    _check_one_example_update(name, clipping=clipping)


def _check_one_example_update(name, clipping):
    build, loss, x, y, path = SHAPES[name]
    tf.keras.utils.set_random_seed(3)
    model = build()
    private = _private(model, loss, clipping=clipping)
    expected_path = path if clipping == 'auto' else clipping
    assert private.clipping == expected_path and (loss is None or private.loss is loss)
    x1, y1 = _take(x, [2]), _take(y, [2])
    model(x1)  # subclassed / Input-less models build here; the snapshot needs the weights
    raw, expected = _brute_force_clipped(model, loss, x1, y1)
    assert np.linalg.norm(raw) > 2 * TINY_CLIP
    got = _one_example_gradient(private, x1, y1)
    assert np.linalg.norm(got) <= TINY_CLIP * (1 + 1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * TINY_CLIP)
    # One fit step on the private feed trains (finite loss).
    history = private.model.fit(private.dataset(x, y, seed=0), epochs=1, verbose=0)
    assert np.isfinite(history.history['loss'][0])


def test_unbuilt_sequential_builds_inside_the_first_fast_step():
    """A Sequential without `Input`, never called before training, builds inside the first
    traced step, where Keras infers each layer's output on a `<layer>_scratch_graph`: those
    calls run untapped (not refused as nested graphs), and that first one-example update is
    the brute-force clipped gradient (a twin with the same seeded initializers gives the
    weights before it). The model ends built as Keras builds it without DP, with its
    inputs known (refusing those calls would make Keras fall back to its deferred mode,
    with `model.inputs` None, silently)."""
    def build():
        return tf.keras.Sequential([
            L.Dense(5, activation='relu', kernel_initializer=tf.keras.initializers.GlorotUniform(1)),
            L.Dense(3, kernel_initializer=tf.keras.initializers.GlorotUniform(2))])

    model, twin = build(), build()
    private = _private(model, None, clipping='fast')
    x1, y1 = X6[2:3], CLASSES[2:3]
    twin(x1)
    raw, expected = _brute_force_clipped(twin, None, x1, y1)
    assert np.linalg.norm(raw) > 2 * TINY_CLIP and not model.built
    private.model.train_on_batch(x1, y1)
    got = np.concatenate([(b - a).ravel() for a, b in zip(model.get_weights(), twin.get_weights())])
    np.testing.assert_allclose(got * TINY_BATCH / TINY_LR, expected, rtol=1e-4,
                               atol=1e-4 * TINY_CLIP)
    assert model.inputs is not None and [t.shape[-1] for t in model.inputs] == [6]


@pytest.mark.parametrize('clipping', ['fast', 'vectorized', 'microbatch'])
def test_sample_weight_scales_the_loss_before_the_clip(clipping):
    """Weight 50 on one example: the update is clip_C(50 ∇l), still of norm <= C."""
    tf.keras.utils.set_random_seed(4)
    model = SHAPES['regression-mse'][0]()
    private = _private(model, 'mse', clipping=clipping)
    x1, y1 = X6[:1], X6[:1, :2]
    _, expected = _brute_force_clipped(model, 'mse', x1, y1, weight=50.0)
    got = _one_example_gradient(private, x1, y1, sample_weight=np.array([50.0]))
    assert np.linalg.norm(got) <= TINY_CLIP * (1 + 1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * TINY_CLIP)
    small = _one_example_gradient(private, x1, y1, sample_weight=np.array([1e-4]))
    assert np.linalg.norm(small) < 0.9 * TINY_CLIP  # a tiny weight is not clipped up


def test_virtual_steps_give_the_same_summed_clipped_gradient():
    """7 examples in virtual steps of 3 (3 + 3 + 1) = one vectorized step = the microbatch loop
    = the brute-force sum of the 7 clipped gradients."""
    tf.keras.utils.set_random_seed(5)
    model = SHAPES['functional-sparse-default'][0]()
    sums = []
    for kwargs in ({'clipping': 'vectorized', 'virtual_batch_size': 3},
                   {'clipping': 'vectorized', 'virtual_batch_size': 64},
                   {'clipping': 'microbatch'}):
        private = _private(model, None, **kwargs)
        weights = model.get_weights()
        sums.append(_one_example_gradient(private, X6[:7], CLASSES[:7]))
        model.set_weights(weights)
    reference = sum(_brute_force_clipped(model, None, X6[i:i + 1], CLASSES[i:i + 1])[1]
                    for i in range(7))
    for got in sums:  # a dropped or repeated chunk moves the sum by about C
        np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-4 * TINY_CLIP)


def test_default_virtual_step_keeps_per_example_gradients_within_the_memory_budget():
    from tfpriv.dp.sgd import GRADIENT_MEMORY_BYTES
    model = tf.keras.Sequential([tf.keras.Input((1000,)), L.Dense(1000), L.Dense(3)])
    private = _private(model, None, clipping='vectorized')
    weights = 1000 * 1000 + 1000 + 3 * 1000 + 3
    assert private.model.chunk_size() == GRADIENT_MEMORY_BYTES // (4 * weights) == 16


def test_tf_data_and_array_feeds_draw_the_same_batches():
    """A tf.data.Dataset of single examples is read once; the same seed draws the same rows."""
    private = _private(SHAPES['multi-input-multi-output'][0](), {'score': 'mae', 'label': 'mse'})
    x, y = SHAPES['multi-input-multi-output'][2:4]
    from_arrays = list(private.dataset(x, y, seed=7))
    from_data = list(private.dataset(tf.data.Dataset.from_tensor_slices((x, y)), seed=7))
    for a, b in zip(from_arrays, from_data):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    with pytest.raises(ValueError, match=r'num_examples=8.*unbatch\(\)'):
        private.dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(4))
    with pytest.raises(ValueError, match='inside its'):
        private.dataset(tf.data.Dataset.from_tensor_slices((x, y)), y)


@pytest.mark.parametrize('build,kwargs,message', [
    (lambda: tf.keras.Sequential([tf.keras.Input(batch_shape=(4, 3, 2)),
                                  L.LSTM(2, stateful=True), L.Dense(3)]), {},
     r"layer 'lstm.*' \(LSTM\) is stateful.*stateful=False"),
    (lambda: _rnn(L.Bidirectional(L.GRU(2))), {'clipping': 'vectorized'},
     r"\(GRU\) runs a tf.while_loop.*clipping='microbatch'"),
    (lambda: _rnn(L.GRU(2)), {'loss': 'binary_crossentropyy'},
     r"loss 'binary_crossentropyy' is not a Keras loss"),
    (lambda: _rnn(L.GRU(2)), {'loss': {'out': tf.keras.layers.Dense(1)}},
     r'loss Dense is not a Keras loss'),
    (lambda: _rnn(L.GRU(2)), {'virtual_batch_size': 0}, 'virtual_batch_size'),
    (_functional_two_in_two_out, {'loss': {'score': 'mse', 'labels': 'mse'}},
     r"loss has keys \['labels'\] that are not outputs.*\['label', 'score'\]"),
])
def test_unsupported_is_refused_up_front_by_name(build, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_private(build(), num_examples=8, batch_size=4, l2_norm_clip=1.0,
                     noise_multiplier=1.0, **kwargs)


def _nested_activity_regularizer() -> tf.keras.Model:
    inner = tf.keras.Sequential([L.Dense(4, activity_regularizer='l2')], name='inner')
    return tf.keras.Sequential([tf.keras.Input((3,)), inner, L.Dense(2)])


@pytest.mark.parametrize('clipping', ['auto', 'fast', 'vectorized', 'microbatch'])
def test_activity_regularizer_is_refused_on_every_path(clipping):
    """An activity penalty is a loss on the whole batch's activations that no path clips
    (it was silently dropped before); a kernel_regularizer is data-independent and accepted."""
    with pytest.raises(ValueError, match=r"'dense.*' \(Dense\) has an activity_regularizer.*"
                       r'kernel_regularizer'):
        make_private(_nested_activity_regularizer(), num_examples=8, batch_size=4,
                     l2_norm_clip=1.0, noise_multiplier=1.0, clipping=clipping)
    weights_only = tf.keras.Sequential([tf.keras.Input((3,)), L.Dense(2, kernel_regularizer='l2')])
    assert make_private(weights_only, num_examples=8, batch_size=4, l2_norm_clip=1.0,
                        noise_multiplier=1.0, clipping=clipping).clipping in (clipping, 'fast')


@pytest.mark.parametrize('clipping', ['vectorized', 'microbatch'])
def test_dropout_model_one_example_update_is_clipped_to_c(clipping):
    """Stochastic layers: no brute-force equality (another dropout mask), but the update of one
    example whose raw gradient is >= 10 C has norm in (0.5 C, C]: clipped, not dropped."""
    tf.keras.utils.set_random_seed(6)
    model = tf.keras.Sequential([L.Dense(16, activation='relu'), L.Dropout(0.5), L.Dense(3)])
    private = _private(model, None, clipping=clipping)
    model(X6[:1])
    raw, _ = _brute_force_clipped(model, None, X6[:1], CLASSES[:1])
    assert np.linalg.norm(raw) > 10 * TINY_CLIP
    got = _one_example_gradient(private, X6[:1], CLASSES[:1])
    assert 0.5 * TINY_CLIP < np.linalg.norm(got) <= TINY_CLIP * (1 + 1e-5)



def test_fast_path_refusal_at_fit_is_one_error_not_a_staging_traceback():
    from tests.dp.grad_sample.test_engine import _Looped  # calls its Dense inside tf.map_fn
    model = _Looped()
    model(np.zeros((2, 6), np.float32))
    private = _private(model, None, clipping='fast')
    with pytest.raises(FastClippingError, match='nested graph') as caught:
        private.model.fit(private.dataset(X6, CLASSES), epochs=1, verbose=0)
    assert 'StagingError' not in str(caught.value) and '\n' not in str(caught.value)


def _batches(private, x, y, epochs):
    """The batches of `epochs` calls of `private.dataset` (seeds 0..epochs-1) as row-index lists;
    each row's label is checked to still be its own (y = 3 x + 1)."""
    rows = []
    for seed in range(epochs):
        for xb, yb in private.dataset(x, y, seed=seed):
            index = xb.numpy()[:, 0].astype(np.int64)
            np.testing.assert_array_equal(yb.numpy()[:, 0], 3 * index + 1)
            rows.append(index)
    return rows


@pytest.mark.parametrize('sampling', ['poisson', 'shuffle'])
def test_dataset_samples_as_its_epsilon_assumes(sampling):
    """n = 200, batch 20 (q = 0.1), 10 steps per epoch, 40 epochs: 400 batches of distinct rows,
    each with its own label. Poisson (the accountant's PoissonSampled event): sizes
    Binomial(200, 0.1), mean 20, variance 18; the mean of 400 within 5 se (0.21) and the sample
    variance within 5 se (sqrt(2/399), x 1.05 for the binomial's excess kurtosis), so
    fixed-size batches (variance 0) or a rate of 1.25 q fail. Shuffle (SampledWithoutReplacement):
    exactly 20 rows each. Either way each row is in a batch with probability 0.1, independently
    across batches: its count c is Binomial(400, 0.1), mean 40, variance 36, and
    sum (c - 40)^2 / 36 over the 200 rows is about chi2(200) (chi2(199) for shuffle, whose
    total is fixed), checked two-sided at 1e-6 per tail."""
    n = 200
    x = np.arange(n, dtype=np.float32)[:, None]
    y = 3 * x + 1
    model = tf.keras.Sequential([tf.keras.Input((1,)), L.Dense(1)])
    private = make_private(model, num_examples=n, batch_size=20, l2_norm_clip=1.0,
                           noise_multiplier=1.0, sampling=sampling)
    assert private.sampling == sampling and private.steps_per_epoch == 10
    rows = _batches(private, x, y, 40)
    assert len(rows) == 400 and all(len(set(r.tolist())) == len(r) for r in rows)
    sizes = np.array([len(r) for r in rows])
    counts = np.bincount(np.concatenate(rows), minlength=n)
    if sampling == 'shuffle':
        assert set(sizes.tolist()) == {20}
    else:
        assert abs(sizes.mean() - 20) <= 5 * np.sqrt(18 / 400)
        assert abs(sizes.var(ddof=1) / 18 - 1) <= 5 * 1.05 * np.sqrt(2 / 399)
    statistic, dof = float(((counts - 40) ** 2).sum() / 36), n if sampling == 'poisson' else n - 1
    assert stats.chi2.ppf(1e-6, dof) < statistic < stats.chi2.isf(1e-6, dof), statistic
