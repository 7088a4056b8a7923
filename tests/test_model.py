import numpy as np
import pytest

from tfpriv.model import build_model


@pytest.mark.parametrize('name,shape,params', [
    ('mlp', (28, 28, 1), 784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10),
    ('cnn', (28, 28, 1), 26010),  # the TF Privacy tutorial's CNN
    ('mlp', (42,), 42 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2),
    ('cnn_large', (28, 28, 1), 1_663_370),  # McMahan et al. 2017's MNIST CNN
])
def test_parameter_counts(name, shape, params):
    classes = 2 if shape == (42,) else 10
    model = build_model(name, shape, classes)
    assert model.count_params() == params
    assert model.output_shape == (None, classes)


@pytest.mark.parametrize('name', ['cnn', 'cnn_large'])
def test_cnn_builds_for_feature_vectors(name):
    model = build_model(name, (42,), 2)
    out = model(np.zeros((3, 42), np.float32))
    assert out.shape == (3, 2)


def test_dropout_default_is_per_model():
    def kinds(model):
        return [type(layer).__name__ for layer in model.layers]
    assert 'Dropout' in kinds(build_model('cnn', (28, 28, 1)))
    assert 'Dropout' not in kinds(build_model('cnn_large', (28, 28, 1)))
    assert 'Dropout' in kinds(build_model('cnn_large', (28, 28, 1), dropout=0.5))


def test_functional_layers_and_logits():
    model = build_model('cnn', (28, 28, 1), 10, activation='tanh')
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ['InputLayer', 'Conv2D', 'MaxPooling2D', 'Conv2D', 'MaxPooling2D', 'Flatten',
                     'Dense', 'Dropout', 'Dense']
    assert model.layers[1].activation.__name__ == 'tanh'
    assert model.layers[-1].activation.__name__ == 'linear'


@pytest.mark.parametrize('kwargs,message', [
    ({'name': 'rnn'}, 'unknown model'),
    ({'activation': 'gelu'}, 'activation'),
    ({'num_classes': 1}, 'num_classes'),
    ({'dropout': 1.0}, 'dropout'),
])
def test_bad_arguments(kwargs, message):
    args = {'name': 'mlp', 'input_shape': (28, 28, 1), 'num_classes': 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_model(**args)


@pytest.mark.parametrize('name,shape,params', [
    ('scatternet_linear', (7, 7, 81), 3969 * 10 + 10),
    # Conv(81->16, 3x3) + Conv(16->32, 3x3) + Dense(4*4*32 -> 32) + Dense(32 -> 10)
    ('scatternet_cnn', (7, 7, 81), (9 * 81 * 16 + 16) + (9 * 16 * 32 + 32) + (512 * 32 + 32) + 330),
    ('cnn_gn', (28, 28, 1), 26010),  # the CNN's weights; its GroupNorms have none
])
def test_new_model_parameter_counts(name, shape, params):
    model = build_model(name, shape, 10)
    assert model.count_params() == params and model.output_shape == (None, 10)


def test_new_models_take_the_fast_clipping_path_and_tanh():
    from tfpriv.dp.grad_sample import problems as fast_clipping_problems
    for name, shape in (('scatternet_linear', (7, 7, 81)), ('scatternet_cnn', (7, 7, 81)),
                        ('cnn_gn', (28, 28, 1))):
        model = build_model(name, shape, 10, activation='tanh')
        assert fast_clipping_problems(model) == [], name
    gn = build_model('cnn_gn', (28, 28, 1), activation='tanh')
    kinds = [type(layer).__name__ for layer in gn.layers]
    assert kinds[1:4] == ['Conv2D', 'GroupNormalization', 'Activation']
    assert gn.layers[2].groups == 4 and gn.layers[3].activation.__name__ == 'tanh'
    assert build_model('scatternet_cnn', (7, 7, 81), activation='tanh').layers[1].activation.__name__ == 'tanh'


def test_cnn_gn_normalizes_each_example_alone():
    """GroupNorm statistics are per example: an example's output does not depend on the batch."""
    model = build_model('cnn_gn', (28, 28, 1), 10)
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(model(x[:1]).numpy(), model(x).numpy()[:1], atol=1e-5)


def test_scatternet_needs_feature_maps():
    with pytest.raises(ValueError, match='scattering features of shape'):
        build_model('scatternet_linear', (3969,))
