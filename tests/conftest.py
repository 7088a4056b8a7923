"""Shared fixtures: real MNIST subsets, a private Keras cache, quiet TensorFlow, test markers.

Hypothesis is derandomized (profile `ci`, the default): every run draws the same
examples, so a property test cannot pass on one CI run and fail on the next. Set
`TFPRIV_HYPOTHESIS_PROFILE=explore` to search with fresh random examples locally.

The tests never touch the user's Keras cache: `KERAS_HOME` points at a temporary
folder holding a copy of MNIST (from `../shared/data/mnist.npz`, else from the
user's cache), set before anything reads it; subprocesses inherit it.

TensorFlow's CPU allocator is fixed for the whole session (`TF_CPU_ALLOCATOR_USE_BFC`:
malloc, as before `tfpriv.allocator` asked for TensorFlow's pool): `train.py` run in
the test process would otherwise set it for the subprocesses that later tests start,
in an order that depends on the scheduling of tests. tests/test_allocator.py sets it
explicitly for its own subprocesses.
"""

import os
import pathlib
import shutil
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('TF_CPU_ALLOCATOR_USE_BFC', 'false')

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Tests that need TensorFlow Federated (marker `tff`); the NumPy-only crypto tests
# run alone in seconds with `pytest tests/crypto -m "not slow"`.
TFF_PATHS = ('tests/federated/', 'tests/experiments/test_federated.py')


def _private_keras_home() -> str:
    home = pathlib.Path(tempfile.mkdtemp(prefix='tfpriv-keras-home-'))
    sources = [ROOT.parent / 'shared' / 'data' / 'mnist.npz',
               pathlib.Path(os.environ.get('KERAS_HOME', pathlib.Path.home() / '.keras'))
               / 'datasets' / 'mnist.npz']
    for source in sources:
        if source.is_file():
            (home / 'datasets').mkdir()
            shutil.copyfile(source, home / 'datasets' / 'mnist.npz')
            break
    return str(home)


os.environ['KERAS_HOME'] = _private_keras_home()

import numpy as np  # pylint: disable=wrong-import-position
import pytest  # pylint: disable=wrong-import-position
from hypothesis import settings  # pylint: disable=wrong-import-position

# No `deadline` in either profile: a per-example wall-clock bound is a flaky test on a
# loaded CI machine.
settings.register_profile('ci', derandomize=True, deadline=None, print_blob=True)
settings.register_profile('explore', derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get('TFPRIV_HYPOTHESIS_PROFILE', 'ci'))


@pytest.fixture(scope='session')
def mnist():
    from tfpriv.data import load_mnist
    return load_mnist()


@pytest.fixture(scope='session')
def mnist_small(mnist):
    """The first 64 real training images and labels."""
    return mnist.x_train[:64], mnist.y_train[:64]


def pytest_collection_modifyitems(config, items):
    """Marks every test under `TFF_PATHS` with `tff`."""
    del config
    for item in items:
        path = pathlib.Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix()
        if path.startswith(TFF_PATHS):
            item.add_marker('tff')


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
    shutil.rmtree(os.environ['KERAS_HOME'], ignore_errors=True)
