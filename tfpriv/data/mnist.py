"""MNIST through the Keras cache (`tf.keras.datasets.mnist.load_data()`).

Keras downloads `mnist.npz` into `~/.keras/datasets/` on first use. Offline,
the file must already be there; without it the user gets a
`DatasetUnavailableError` that says where to put it, not a urllib traceback.

Keras checks the cached file against the SHA-256 of Google's copy and, when it
differs, tries to download it again and *deletes the cached file* when that
fails. A re-packed copy with the same arrays (such as the one CI pre-fills)
would be destroyed offline, so a cached file with another hash is read directly
with `np.load` after checking that it has Keras's layout.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Tuple

import numpy as np
from absl import logging

from tfpriv.data.base import Dataset, DatasetUnavailableError


# The SHA-256 that tf.keras.datasets.mnist.load_data() expects (keras/src/datasets/mnist.py).
KERAS_SHA256 = '731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1'
Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def keras_cache_path() -> str:
    """Where `tf.keras.datasets.mnist.load_data()` looks for `mnist.npz`."""
    home = os.environ.get('KERAS_HOME', os.path.join(os.path.expanduser('~'), '.keras'))
    return os.path.join(home, 'datasets', 'mnist.npz')


def _sha256(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _read_cached(path: str) -> Arrays:
    """Reads a cached `mnist.npz` whose bytes differ from Google's, checking its layout."""
    try:
        with np.load(path) as data:
            arrays = tuple(data[key] for key in ('x_train', 'y_train', 'x_test', 'y_test'))
    except (OSError, ValueError, KeyError, EOFError) as error:  # not an .npz, or keys missing
        raise DatasetUnavailableError(f'{path} is not a readable MNIST .npz ({error}); copy '
                                      'mnist.npz from Keras there') from None
    expected = ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
    if tuple(a.shape for a in arrays) != expected or any(a.dtype != np.uint8 for a in arrays):
        raise DatasetUnavailableError(f'{path} is not MNIST in Keras\'s layout (uint8 arrays '
                                      f'x_train {expected[0]}, y_train, x_test, y_test)')
    return arrays


@functools.lru_cache(maxsize=1)
def load_mnist() -> Dataset:
    """MNIST, 60,000 train / 10,000 test images, (28, 28, 1) float32 in [0, 1]."""
    path = keras_cache_path()
    if os.path.exists(path) and _sha256(path) != KERAS_SHA256:
        logging.info('%s differs from Keras\'s published file; reading it directly', path)
        x_train, y_train, x_test, y_test = _read_cached(path)
    else:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        try:
            (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
        except Exception as error:  # urllib/HTTP errors come in many types
            raise DatasetUnavailableError(
                f'MNIST is not in the Keras cache and could not be downloaded '
                f'({type(error).__name__}); copy mnist.npz to {path}') from None

    def images(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) / 255.0)[..., np.newaxis]

    return Dataset('mnist', images(x_train), y_train.astype(np.int64), images(x_test),
                   y_test.astype(np.int64), num_classes=10)
