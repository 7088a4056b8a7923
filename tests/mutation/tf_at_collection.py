"""pytest plugin for `run.sh`: did collecting the tests start TensorFlow's runtime?

mutmut's fork server (`tf` rows) only collects a row's tests, then forks one child per
mutant. A runtime started before the fork (a Keras layer or model built, or an op run, while
a test module is imported or its parameters are built) leaves every child with thread pools
whose threads did not survive the fork: a child that needs them waits forever and mutmut
counts a "timeout" for a mutant it never checked (docs/testing.md, "Mutation testing").

    python -m pytest -p tf_at_collection --collect-only -q TESTS   # with this folder on PYTHONPATH
"""

import sys

MESSAGE = 'tf_at_collection: collecting these tests started TensorFlow\'s runtime'


def pytest_collection_finish(session):
    """Prints MESSAGE when TensorFlow's eager context exists after collection."""
    del session
    if 'tensorflow' not in sys.modules:
        return
    from tensorflow.python.eager import context  # pylint: disable=import-outside-toplevel
    if context.context()._context_handle is not None:  # pylint: disable=protected-access
        print(f'\n{MESSAGE}')
