"""Shared fixtures: real MNIST subsets (from the Keras cache) and quiet TensorFlow."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # pylint: disable=wrong-import-position
import pytest  # pylint: disable=wrong-import-position


@pytest.fixture(scope='session')
def mnist():
    from tfpriv.data import load_mnist
    return load_mnist()


@pytest.fixture(scope='session')
def mnist_small(mnist):
    """The first 64 real training images and labels."""
    return mnist.x_train[:64], mnist.y_train[:64]


def pytest_sessionfinish(session, exitstatus):
    """Safety net for CI: no TFF worker_binary started by the tests may outlive them.

    `tfpriv.federated.runtime` shuts workers down itself and a test checks it;
    this only keeps a regression from hanging CI on an inherited stdout pipe.
    """
    import psutil
    for child in psutil.Process().children(recursive=True):
        try:
            if 'worker_binary' in ' '.join(child.cmdline()):
                child.kill()
        except psutil.Error:
            pass
