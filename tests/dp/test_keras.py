"""make_private as a Keras user calls it: compile, fit, read ε from the history."""

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.dp import make_private
from tfpriv.dp.keras import default_delta
from tfpriv.model import build_model


def test_user_compile_fit_and_epsilon(mnist):
    x, y = mnist.x_train[:1200], mnist.y_train[:1200]
    model = build_model('mlp', (28, 28, 1), 10, dropout=0.0)
    private = make_private(model, num_examples=1200, batch_size=60, l2_norm_clip=1.0,
                           noise_multiplier=1.1, learning_rate=0.5)
    private.model.compile(optimizer=private.optimizer, loss=private.loss, metrics=['accuracy'])
    history = private.model.fit(x, y, batch_size=60, epochs=2, verbose=0,
                                callbacks=[private.epsilon_callback])
    assert history.history['epsilon'] == pytest.approx([private.epsilon(1), private.epsilon(2)])
    assert history.history['epsilon_pld'][-1] < history.history['epsilon'][-1]
    # The user's own model shares the trained weights.
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), private.model.get_weights()))
    assert private.delta == 1e-4 == default_delta(1200)


def test_target_epsilon_calibrates_noise():
    model = build_model('mlp', (28, 28, 1), 10, dropout=0.0)
    private = make_private(model, num_examples=60000, batch_size=256, l2_norm_clip=1.0,
                           target_epsilon=2.0, epochs=10)
    assert 1.98 <= private.epsilon(10) <= 2.0
    assert private.epsilon(11) > 2.0


@pytest.mark.parametrize('kwargs,message', [
    ({'batch_size': 0}, 'batch_size'),
    ({'l2_norm_clip': 0.0}, 'l2_norm_clip'),
    ({'noise_multiplier': None}, 'exactly one'),
    ({'target_epsilon': 1.0}, 'exactly one'),
    ({'noise_multiplier': None, 'target_epsilon': 1.0}, 'needs epochs'),
    ({'delta': 2.0}, 'delta'),
    ({'clipping': 'ghost'}, 'clipping'),
    ({'optimizer': 'rmsprop'}, 'optimizer'),
    ({'clipping': 'fast', 'dropout': 0.2}, "clipping='fast'"),
])
def test_bad_arguments(kwargs, message):
    model = build_model('mlp', (28, 28, 1), 10, dropout=kwargs.pop('dropout', 0.0))
    args = {'num_examples': 100, 'batch_size': 10, 'l2_norm_clip': 1.0, 'noise_multiplier': 1.0,
            **kwargs}
    with pytest.raises(ValueError, match=message):
        make_private(model, **args)


def test_not_a_model():
    with pytest.raises(TypeError, match='tf.keras.Model'):
        make_private(tf.keras.layers.Dense(3), num_examples=10, batch_size=1, l2_norm_clip=1.0,
                     noise_multiplier=1.0)


def test_microbatch_path_handles_a_last_partial_batch(mnist):
    """DPKeras optimizers crash on a batch not divisible by num_microbatches; tfpriv uses one
    microbatch per example, so 130 examples in batches of 60 (60, 60, 10) train."""
    model = build_model('mlp', (28, 28, 1), 10)
    private = make_private(model, num_examples=130, batch_size=60, l2_norm_clip=1.0,
                           noise_multiplier=1.0, clipping='microbatch')
    private.model.compile(optimizer=private.optimizer, loss=private.loss)
    history = private.model.fit(mnist.x_train[:130], mnist.y_train[:130], batch_size=60, epochs=1,
                                verbose=0, callbacks=[private.epsilon_callback])
    assert np.isfinite(history.history['loss'][0])
    assert history.history['epsilon'][0] == pytest.approx(private.epsilon(1))
