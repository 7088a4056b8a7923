import numpy as np
import pytest

from tfpriv.data import DatasetUnavailableError, load_credit, load_dataset
from tfpriv.data import credit as credit_module
from tfpriv.data import mnist as mnist_module


def test_mnist_counts(mnist):
    assert mnist.x_train.shape == (60000, 28, 28, 1) and mnist.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                                   5851, 5949]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                                  1009]
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist.x_train.dtype == np.float32 and 0 <= mnist.x_train.min() and mnist.x_train.max() == 1


def test_missing_mnist_gives_one_line_error(tmp_path, monkeypatch):
    """No file in Keras's own cache (~/.keras; KERAS_HOME unset): Keras may download, and an
    offline failure is one line naming where to put the file."""
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.delenv('KERAS_HOME')
    # No network here (or anywhere the test may run): make the download fail fast.
    import tensorflow as tf
    monkeypatch.setattr(tf.keras.utils, 'get_file',
                        lambda *a, **k: (_ for _ in ()).throw(OSError('no network')))
    monkeypatch.setattr('keras.src.datasets.mnist.get_file',
                        lambda *a, **k: (_ for _ in ()).throw(OSError('no network')))
    mnist_module.load_mnist.cache_clear()
    try:
        with pytest.raises(DatasetUnavailableError, match='copy mnist.npz to .*mnist.npz'):
            mnist_module.load_mnist()
    finally:
        mnist_module.load_mnist.cache_clear()


def test_keras_is_never_asked_when_keras_home_is_elsewhere(tmp_path, monkeypatch):
    """Keras 2.14's get_file ignores KERAS_HOME and deletes a cached file whose hash differs
    when it cannot download: with KERAS_HOME elsewhere and no file there, the user's own
    ~/.keras copy (another hash, as CI's) must stay untouched and Keras must not be called."""
    home = tmp_path / 'home'
    real = home / '.keras' / 'datasets' / 'mnist.npz'
    real.parent.mkdir(parents=True)
    real.write_bytes(b'a re-packed copy with another hash')
    monkeypatch.setenv('HOME', str(home))
    monkeypatch.setenv('KERAS_HOME', str(tmp_path / 'empty'))
    calls = []
    monkeypatch.setattr('keras.src.datasets.mnist.get_file', lambda *a, **k: calls.append(a))
    mnist_module.load_mnist.cache_clear()
    try:
        with pytest.raises(DatasetUnavailableError, match=r'MNIST is not at .*empty.*mnist.npz'):
            mnist_module.load_mnist()
    finally:
        mnist_module.load_mnist.cache_clear()
    assert calls == [] and real.read_bytes() == b'a re-packed copy with another hash'


def test_credit_preprocessing():
    data = load_credit()
    assert data.num_train + len(data.x_test) == 653
    labels = np.concatenate([data.y_train, data.y_test])
    assert set(labels.tolist()) == {0, 1}
    # 6 numeric + 4 binary + one-hot of A4 (3 values among complete rows), A5 (3), A6 (14), A7 (9), A13 (3)
    assert data.x_train.shape[1] == 6 + 4 + 3 + 3 + 14 + 9 + 3
    assert np.isin(data.x_train[:, 0], [0.0, 1.0]).all()  # A1 binarized
    assert abs(data.x_train[:, 1].mean()) < 1e-5  # A2 standardized on the train split
    assert abs(data.x_train[:, 1].std() - 1) < 1e-4


def test_credit_rows_with_missing_values_dropped(tmp_path):
    path = tmp_path / 'crx.data'
    with open(credit_module.DEFAULT_PATH) as f:
        lines = f.read().splitlines()
    assert len(lines) == 690
    assert sum('?' in line for line in lines) == 37
    path.write_text('\n'.join(lines[:20]) + '\n')
    data = load_credit(str(path))
    assert data.num_train + len(data.x_test) == sum('?' not in line for line in lines[:20])


def test_bad_dataset_and_path(tmp_path):
    with pytest.raises(ValueError, match='unknown dataset'):
        load_dataset('cifar')
    with pytest.raises(DatasetUnavailableError, match='crx.data'):
        load_credit(str(tmp_path / 'missing.data'))
