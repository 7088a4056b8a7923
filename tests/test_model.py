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
