"""ScatterNet features: shape, values against independent references, the disk cache, GroupNorm."""

import os

import numpy as np
import pytest

from tfpriv.data import Dataset
from tfpriv.data import scatter as sc


def test_shape_and_channel_count(mnist_small):
    features = sc.scatter(mnist_small[0][:3])
    assert features.shape == (3, 7, 7, 81) and features.dtype == np.float32
    assert sc.num_channels(2, 8) == 81 and sc.num_channels(3, 4) == 1 + 12 + 16 * 3


def test_constant_image_has_only_the_lowpass_channel():
    """Order 0 is the image under a low-pass filter of unit mass; wavelets have zero mean, so a
    constant image c gives c in channel 0 and ~0 in the 80 others (a property of the maths,
    not of kymatio's code)."""
    features = sc.scatter(np.full((1, 28, 28), 0.7, np.float32))
    np.testing.assert_allclose(features[0, :, :, 0], 0.7, rtol=1e-4)
    assert np.abs(features[0, :, :, 1:]).max() < 1e-5
    assert np.abs(sc.scatter(np.zeros((1, 28, 28), np.float32))).max() == 0


@pytest.mark.slow
def test_numpy_backend_matches_kymatio_tensorflow_frontend(mnist_small):
    from kymatio.tensorflow import Scattering2D
    images = mnist_small[0][:2, :, :, 0]
    reference = np.transpose(Scattering2D(J=2, shape=(28, 28), L=8)(images).numpy(), (0, 2, 3, 1))
    np.testing.assert_allclose(sc.scatter(images), reference, atol=1e-5, rtol=1e-4)


def test_cache_is_keyed_and_read_back(tmp_path, mnist_small):
    images = mnist_small[0][:4]
    first = sc.cached_scatter(images, directory=str(tmp_path))
    path = sc.cache_path(images, directory=str(tmp_path))
    assert os.listdir(tmp_path) == [os.path.basename(path)]  # no temporary file left behind
    np.save(path, np.ones_like(first))  # a marked copy: the second call must read it
    assert (sc.cached_scatter(images, directory=str(tmp_path)) == 1).all()
    assert sc.cache_path(images[:3], directory=str(tmp_path)) != path
    assert sc.cache_path(images, J=1, directory=str(tmp_path)) != path
    np.save(path, np.ones((4, 7, 7, 5), np.float32))  # wrong channel count: recomputed
    np.testing.assert_array_equal(sc.cached_scatter(images, directory=str(tmp_path)), first)


def test_group_normalize_matches_keras_group_normalization():
    import tensorflow as tf
    features = np.random.default_rng(0).gamma(2.0, size=(5, 7, 7, 81)).astype(np.float32)
    layer = tf.keras.layers.GroupNormalization(groups=27, center=False, scale=False,
                                               epsilon=sc.EPSILON)
    np.testing.assert_allclose(sc.group_normalize(features, 27), layer(features).numpy(),
                               atol=2e-5)
    one = sc.group_normalize(features[:1], 27)[0].reshape(49, 27, 3)
    np.testing.assert_allclose(one.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(one.var(axis=(0, 2)), 1, atol=1e-3)


def test_scatter_dataset_keeps_labels(tmp_path, mnist_small):
    x, y = mnist_small
    data = Dataset('mnist', x[:6], y[:6], x[6:9], y[6:9], 10)
    out = sc.scatter_dataset(data, directory=str(tmp_path))
    assert out.input_shape == (7, 7, 81) and len(out.x_test) == 3
    np.testing.assert_array_equal(out.y_train, y[:6])
    raw = sc.scatter_dataset(data, groups=None, directory=str(tmp_path))
    np.testing.assert_allclose(out.x_train, sc.group_normalize(raw.x_train), atol=1e-6)


@pytest.mark.parametrize('call,message', [
    (lambda: sc.scatter(np.zeros((2, 28, 28, 3))), 'images must have shape'),
    (lambda: sc.scatter(np.zeros((1, 30, 30)), J=2), 'J must satisfy'),
    (lambda: sc.scatter(np.zeros((1, 28, 28)), J=0), 'J must be >= 1'),
    (lambda: sc.group_normalize(np.zeros((1, 7, 7, 81)), 10), 'groups must divide'),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
