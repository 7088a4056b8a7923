"""Encrypted inference of small trained Keras models on real MNIST images."""

import numpy as np
import pytest

from tfpriv.crypto.smpc import Cluster
from tfpriv.crypto.smpc.inference import (EncryptedModel, UnsupportedLayerError, auto_batch_size,
                                          compile_model, evaluate_encrypted)
from tfpriv.rng import RandomSource

tf = pytest.importorskip('tensorflow')


def _trained(name, mnist, activation='relu', examples=3000):
    from tfpriv.model import build_model
    tf.keras.utils.set_random_seed(0)
    model = build_model(name, (28, 28, 1), 10, activation=activation)
    model.compile('adam', tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(mnist.x_train[:examples], mnist.y_train[:examples], epochs=1, batch_size=64,
              verbose=0)
    return model


@pytest.fixture(scope='module')
def mlp(mnist):
    return _trained('mlp', mnist)


@pytest.mark.parametrize('parties', [2, 3])
def test_encrypted_mlp_predictions_equal_plaintext(mlp, mnist, parties):
    images, labels = mnist.x_test[:60], mnist.y_test[:60]
    result = evaluate_encrypted(mlp, images, labels, num_parties=parties, batch_size=25,
                                rng=RandomSource(seed=parties))
    assert result.disagreements == 0
    np.testing.assert_array_equal(result.predictions, result.plaintext_predictions)
    assert result.accuracy == result.plaintext_accuracy > 0.5
    assert result.num_images == 60 and result.seconds > 0 and result.plaintext_seconds > 0
    assert result.bytes_per_image > 0 and result.offline_bytes_per_image > 0
    # 3 dense layers (Beaver + truncation), 2 relu (8 each), argmax over 10 (4 levels of 8),
    # input sharing and the reveal: 3*2 + 2*8 + 4*8 + 2 rounds per batch
    assert result.rounds_per_batch == 3 * 2 + 2 * 8 + 4 * 8 + 2
    assert set(result.by_operation) >= {'matmul', 'relu', 'argmax', 'share', 'reveal'}


def test_encrypted_cnn_predictions_equal_plaintext(mnist):
    cnn = _trained('cnn', mnist, examples=1500)
    images = mnist.x_test[:12]
    cluster = Cluster(3, rng=RandomSource(seed=4))
    owner = cluster.client('data owner')
    encrypted = EncryptedModel(cnn, cluster)
    predicted = encrypted.predict(images, owner)
    np.testing.assert_array_equal(predicted, np.argmax(cnn.predict(images, verbose=0), axis=-1))
    kinds = [step.kind for step in encrypted.steps]
    # relu moved after each max-pool, where it compares fewer values
    assert kinds == ['conv2d', 'max_pool2d', 'relu', 'conv2d', 'max_pool2d', 'relu', 'reshape',
                     'dense', 'relu', 'dense']


def test_encrypted_logits_are_close_to_keras(mlp, mnist):
    from tfpriv.crypto.smpc import SharedTensor
    cluster = Cluster(3, rng=RandomSource(seed=5))
    encrypted = EncryptedModel(mlp, cluster)
    images = mnist.x_test[:5]
    logits = encrypted.logits(SharedTensor.share(cluster, images)).reveal()
    np.testing.assert_allclose(logits, mlp.predict(images, verbose=0), atol=0.02)


def test_auto_batch_size_bounds_the_largest_tensor(mlp):
    from tfpriv.model import build_model
    assert auto_batch_size(mlp) == 1000  # 784 inputs per image
    assert auto_batch_size(build_model('cnn', (28, 28, 1), 10)) == 2**20 // (14 * 14 * 8 * 8)


def test_tanh_is_refused(mnist):
    from tfpriv.model import build_model
    model = build_model('mlp', (28, 28, 1), 10, activation='tanh')
    with pytest.raises(UnsupportedLayerError, match="activation 'tanh'.*relu"):
        compile_model(model)


def test_unsupported_layer_and_bad_inputs():
    inputs = tf.keras.Input((4,))
    x = tf.keras.layers.BatchNormalization()(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(x))
    with pytest.raises(UnsupportedLayerError, match='BatchNormalization is not supported'):
        compile_model(model)
    dense = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    with pytest.raises(ValueError, match='expects images of shape'):
        EncryptedModel(dense, Cluster(2)).predict(np.zeros((3, 5)), Cluster(2).client('x'))
    with pytest.raises(ValueError, match='as many labels'):
        evaluate_encrypted(dense, np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(ValueError, match='batch_size'):
        evaluate_encrypted(dense, np.zeros((3, 4)), np.zeros(3), batch_size=0)
