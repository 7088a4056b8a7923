"""The engine on the model shapes Keras users write, inside tf.function, and its clip bound.

Reference and tolerance as in `test_layers.py` (brute force per-example tapes,
rtol 1e-4 for float32).
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.dp.grad_sample import reference
from tfpriv.dp.clipping import all_layers
from tfpriv.dp.grad_sample import clipped_sum, per_example_norms
from tfpriv.errors import FastClippingError

L = tf.keras.layers


class _Block(tf.keras.layers.Layer):
    """A custom composite layer: conv + group norm (code in its call is trusted)."""

    def __init__(self):
        super().__init__()
        self.conv = L.Conv2D(4, 3, padding='same')
        self.norm = L.GroupNormalization(groups=2)

    def call(self, inputs):
        return tf.nn.relu(self.norm(self.conv(inputs))) + tf.reduce_mean(inputs, -1, keepdims=True)


class _Subclassed(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.block = _Block()
        self.depthwise = L.DepthwiseConv2D(3)
        self.head = L.Dense(3)

    def call(self, inputs, training=None):
        return self.head(tf.reshape(self.depthwise(self.block(inputs)), [tf.shape(inputs)[0], -1]))


class _Shared(tf.keras.Model):
    """One Dense called twice: its per-example gradient is the sum of both calls' terms."""

    def __init__(self):
        super().__init__()
        self.dense = L.Dense(6, activation='tanh')
        self.head = L.Dense(3)

    def call(self, inputs):
        return self.head(self.dense(self.dense(inputs)))


def _functional_multi_io():
    image, tokens = tf.keras.Input((5, 5, 2), name='image'), tf.keras.Input((4,), name='tokens',
                                                                         dtype='int32')
    inner = tf.keras.Sequential([L.Dense(4, activation='relu'), L.LayerNormalization()])
    merged = L.Concatenate()([L.Flatten()(L.Conv2D(2, 3)(image)),
                              L.GlobalAveragePooling1D()(inner(L.Embedding(9, 4)(tokens)))])
    return tf.keras.Model({'image': image, 'tokens': tokens},
                          {'a': L.Dense(3)(merged), 'b': L.Dense(2)(merged)})


def _dict_loss(y, y_pred):
    return reference.squared_error(y['a'], y_pred['a']) + reference.squared_error(y['b'], y_pred['b'])


def _case(kind, rng):
    x = rng.normal(size=(5, 6, 6, 2)).astype(np.float32)
    y = rng.normal(size=(5, 3)).astype(np.float32)
    if kind == 'sequential_without_input':
        model = tf.keras.Sequential([L.Conv2D(3, 3), L.Flatten(), L.Dense(3)])
    elif kind == 'subclassed':
        model = _Subclassed()
    elif kind == 'shared_layer':
        model, x = _Shared(), rng.normal(size=(5, 6)).astype(np.float32)
        y = rng.normal(size=(5, 3)).astype(np.float32)
    else:
        model = _functional_multi_io()
        x = {'image': rng.normal(size=(5, 5, 5, 2)).astype(np.float32),
             'tokens': rng.integers(0, 9, (5, 4)).astype(np.int32)}
        y = {'a': y, 'b': rng.normal(size=(5, 2)).astype(np.float32)}
    model(x)  # build
    return model, x, y, _dict_loss if isinstance(y, dict) else reference.squared_error


@pytest.mark.parametrize('kind', ['sequential_without_input', 'subclassed', 'shared_layer',
                                  'multi_input_multi_output'])
@pytest.mark.parametrize('compiled', [False, True])
def test_model_shapes_equal_brute_force(kind, compiled):
    tf.keras.utils.set_random_seed(11)
    model, x, y, loss = _case(kind, np.random.default_rng(11))
    per_example = reference.per_example_gradients(
        model, loss, x if not isinstance(x, dict) else _Indexable(x),
        y if not isinstance(y, dict) else _Indexable(y))
    l2_norm_clip = float(np.median(reference.norms(per_example)))
    run = tf.function(clipped_sum, autograph=False) if compiled else clipped_sum
    summed, _ = run(model, loss, x, y, l2_norm_clip)
    for got, want, variable in zip(summed, reference.clipped_sum(per_example, l2_norm_clip),
                                   model.trainable_variables):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=variable.name)
    assert not any('call' in vars(layer) for layer in all_layers(model))  # interception undone


class _Indexable(dict):
    """A dict of arrays sliced on the example axis (for the reference loop)."""

    def __len__(self):
        return len(next(iter(self.values())))

    def __getitem__(self, key):
        if isinstance(key, slice):
            return {name: value[key] for name, value in self.items()}
        return dict.__getitem__(self, key)


def _dropout_model():
    inputs = tf.keras.Input((8, 8, 1))
    hidden = L.Dropout(0.5)(L.Conv2D(4, 3, activation='relu')(L.GaussianNoise(0.3)(inputs)))
    hidden = L.SpatialDropout2D(0.3)(L.SeparableConv2D(4, 3)(hidden))
    return tf.keras.Model(inputs, L.Dense(3)(L.Dropout(0.5)(L.Flatten()(hidden))))


@pytest.mark.parametrize('compiled', [False, True])
def test_one_example_update_is_exactly_c_with_stochastic_layers(compiled):
    """The clip bound itself, two-sided: one example's clipped gradient has norm exactly C.

    With Dropout/noise, a path whose norms come from a different forward pass than
    its gradient (TF Privacy's two passes) gives norms != C; removing the clip gives
    the raw norm, which the huge-C run shows is far above C. Tolerance: float32
    rounding of one norm and one scaling, relative 1e-5.
    """
    tf.keras.utils.set_random_seed(5)
    model = _dropout_model()
    rng = np.random.default_rng(5)
    run = tf.function(clipped_sum) if compiled else clipped_sum
    raw_norms, l2_norm_clip = [], 0.05
    for _ in range(8):
        x = rng.normal(size=(1, 8, 8, 1)).astype(np.float32)
        y = rng.normal(size=(1, 3)).astype(np.float32)
        clipped, _ = run(model, reference.squared_error, x, y, l2_norm_clip)
        unclipped, _ = run(model, reference.squared_error, x, y, 1e9)
        norm = np.sqrt(sum(np.sum(np.square(g)) for g in clipped))
        assert abs(norm - l2_norm_clip) <= 1e-5 * l2_norm_clip, norm
        raw_norms.append(np.sqrt(sum(np.sum(np.square(g)) for g in unclipped)))
    assert min(raw_norms) > 10 * l2_norm_clip, raw_norms  # without the clip the test above fails


class _Tied(tf.keras.Model):
    """Output projection tied to the embedding table: a read outside the taps."""

    def __init__(self):
        super().__init__()
        self.embed = L.Embedding(7, 3)

    def call(self, inputs):
        return tf.matmul(tf.reduce_mean(self.embed(inputs), 1), self.embed.embeddings,
                         transpose_b=True)


class _Folded(tf.keras.Model):
    """Folds time into the batch axis before a Dense: axis 0 is no longer the examples."""

    def __init__(self):
        super().__init__()
        self.dense = L.Dense(2)

    def call(self, inputs):
        return tf.reshape(self.dense(tf.reshape(inputs, [-1, 3])), [-1, 8])


class _Looped(tf.keras.Model):
    """Calls its Dense inside `tf.map_fn`: a nested graph the taps cannot reach."""

    def __init__(self):
        super().__init__()
        self.dense = L.Dense(3)

    def call(self, inputs):
        return tf.map_fn(lambda row: self.dense(row[None])[0], inputs)


@pytest.mark.parametrize('model_class,x,y,message', [  # built in the test, not at collection
    (_Tied, np.zeros((2, 4), np.int32), np.zeros((2, 7), np.float32), 'read outside'),
    (_Folded, np.zeros((2, 4, 3), np.float32), np.zeros((2, 8), np.float32), 'axis 0'),
    (_Looped, np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32), 'nested graph'),
])
def test_unsound_models_are_refused_at_trace_time(model_class, x, y, message):
    model = model_class()
    model(x)
    traced = tf.function(lambda x, y: clipped_sum(model, reference.squared_error, x, y, 1.0)[0],
                         autograph=False)
    with pytest.raises(FastClippingError, match=message):
        traced(tf.constant(x), tf.constant(y))


def test_sequential_without_input_builds_inside_the_step():
    """Keras re-infers a Sequential's graph on a scratch graph at the first traced call: those
    calls are not taps, and the step still equals brute force."""
    model = tf.keras.Sequential([L.Dense(4, activation='tanh'), L.Dense(3)])
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    model(x[:1])
    traced = tf.function(lambda x, y: clipped_sum(model, reference.squared_error, x, y, 0.5)[0],
                         input_signature=(tf.TensorSpec([None, 6]), tf.TensorSpec([None, 3])))
    got = traced(x, y)
    want = reference.clipped_sum(
        reference.per_example_gradients(model, reference.squared_error, x, y), 0.5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('stage', ['clipped_sum', 'per_example_norms'])
def test_dynamic_batch_mismatch_fails_in_the_graph(stage):
    """Both entry points assert, inside the graph, that every tapped output has B rows."""
    model = _Folded()
    model(np.zeros((2, 4, 3), np.float32))
    spec = tf.TensorSpec([None, 4, 3]), tf.TensorSpec([None, 8])
    if stage == 'clipped_sum':
        def run(x, y):
            return clipped_sum(model, reference.squared_error, x, y, 1.0)[0]
    else:
        def run(x, y):
            return per_example_norms(model, reference.squared_error, x, y)
    traced = tf.function(run, input_signature=spec)
    with pytest.raises(tf.errors.InvalidArgumentError, match='number of rows'):
        traced(np.zeros((2, 4, 3), np.float32), np.zeros((2, 8), np.float32))


def test_empty_poisson_batch_gives_zero_gradients():
    """Poisson sampling draws empty batches: every family returns exact zeros, traced for any B."""
    inputs = tf.keras.Input((8, 8, 2))
    hidden = L.SeparableConv2D(3, 3)(L.DepthwiseConv2D(3)(L.Conv2D(2, 3, groups=2)(inputs)))
    hidden = L.LSTM(3)(L.Reshape((4, 3))(L.GroupNormalization(1)(hidden)))
    model = tf.keras.Model(inputs, L.Dense(3)(L.Embedding(5, 2)(tf.cast(hidden > 9, 'int32'))))
    spec = tf.TensorSpec([None, 8, 8, 2]), tf.TensorSpec([None, 3, 3])
    traced = tf.function(lambda x, y: clipped_sum(model, reference.squared_error, x, y, 1.0)[0],
                         input_signature=spec)
    empty = traced(np.zeros((0, 8, 8, 2), np.float32), np.zeros((0, 3, 3), np.float32))
    assert [g.shape for g in empty] == [v.shape for v in model.trainable_variables]
    assert all(not np.any(g) for g in empty)
    full = traced(np.ones((2, 8, 8, 2), np.float32), np.ones((2, 3, 3), np.float32))
    assert any(np.any(g) for g in full)
