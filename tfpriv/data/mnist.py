"""MNIST through the Keras cache (`tf.keras.datasets.mnist.load_data()`).

Keras downloads `mnist.npz` into `~/.keras/datasets/` on first use. Offline,
the file must already be there; without it the user gets a
`DatasetUnavailableError` that says where to put it, not a urllib traceback.

Keras checks a cached file against the SHA-256 of Google's copy and, when it
differs, tries to download it again and *deletes the cached file* when that
fails. A re-packed copy with the same arrays (such as the one CI pre-fills)
would be destroyed offline, so a cached file is always read directly with
`np.load` after checking that it has Keras's layout; Keras is asked only to
download a missing file.

Keras 2.14's `get_file` ignores `KERAS_HOME`: it always uses `~/.keras`. This
loader honours `KERAS_HOME` (tests point it at a private copy), so when
`KERAS_HOME` names another folder without the file, Keras is not called at all
(it would look in, and could delete from, the user's real `~/.keras`).
"""

from __future__ import annotations

import functools
import os
from typing import Tuple

import numpy as np
from absl import logging

from tfpriv.data.base import Dataset, DatasetUnavailableError


Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def keras_cache_path() -> str:
    """Where tfpriv reads `mnist.npz`: `$KERAS_HOME/datasets/`, else Keras's `~/.keras/datasets/`."""
    home = os.environ.get('KERAS_HOME', os.path.join(os.path.expanduser('~'), '.keras'))
    return os.path.join(home, 'datasets', 'mnist.npz')


def _read_cached(path: str) -> Arrays:
    """Reads a cached `mnist.npz` (Keras's own bytes or a re-packed copy), checking its layout."""
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


def _keras_own_path() -> str:
    """Where Keras 2.14's `get_file` really puts `mnist.npz` (it ignores `KERAS_HOME`)."""
    return os.path.join(os.path.expanduser('~'), '.keras', 'datasets', 'mnist.npz')


def _download(path: str) -> Arrays:
    """Keras's download into its own cache, only when that is `path` and `path` is absent."""
    if os.path.abspath(path) != os.path.abspath(_keras_own_path()) or os.path.exists(path):
        raise DatasetUnavailableError(f'MNIST is not at {path}; copy mnist.npz there')
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
        (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    except Exception as error:  # urllib/HTTP errors come in many types
        raise DatasetUnavailableError(
            f'MNIST is not in the Keras cache and could not be downloaded '
            f'({type(error).__name__}); copy mnist.npz to {path}') from None
    return x_train, y_train, x_test, y_test


@functools.lru_cache(maxsize=1)
def load_mnist() -> Dataset:
    """MNIST, 60,000 train / 10,000 test images, (28, 28, 1) float32 in [0, 1]."""
    path = keras_cache_path()
    if os.path.exists(path):
        logging.info('reading MNIST from %s', path)
        x_train, y_train, x_test, y_test = _read_cached(path)
    else:
        x_train, y_train, x_test, y_test = _download(path)

    def images(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) / 255.0)[..., np.newaxis]

    return Dataset('mnist', images(x_train), y_train.astype(np.int64), images(x_test),
                   y_test.astype(np.int64), num_classes=10)
