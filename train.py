#!/usr/bin/env python3
"""Train Keras models with or without differential privacy: `python3 train.py --help`.

A thin command line over the `tfpriv` library (see tfpriv/experiments/cli.py). When run by
a Python without TensorFlow and the repository's `.venv` exists (made by
`bash setup.sh`), it re-runs itself with that environment's Python.
"""

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_PYTHON = os.path.join(HERE, '.venv', 'bin', 'python')

if __name__ == '__main__':
    if importlib.util.find_spec('tensorflow') is None and os.path.exists(VENV_PYTHON):
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    sys.path.insert(0, HERE)
    from tfpriv.experiments.cli import main
    sys.exit(main())
