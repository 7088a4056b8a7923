#!/usr/bin/env bash
# One-command setup of tfpriv on a fresh machine (Python 3.11, no GPU, offline OK).
#   - creates .venv with the pinned stack in requirements/lock.txt
#     (TensorFlow 2.14.1, TF Privacy 0.9.0, dp-accounting 0.4.3, jax/jaxlib 0.4.13, ...),
#   - installs TensorFlow Federated 0.87.0 with --no-deps (its jax 0.4.14 pin
#     cannot be met on this registry; 0.4.13 works),
#   - installs tfpriv itself in editable mode,
#   - pre-fills the Keras cache with MNIST from ../shared/data when that file exists.
# Idempotent: a second run only checks a stamp and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.tfpriv-setup
want=$(cat requirements/lock.txt requirements/tff.txt setup.cfg | sha256sum | cut -d' ' -f1)

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "setup: installing the pinned stack into $VENV (about 2 minutes on a fresh machine)"
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "tfpriv needs Python 3.11 (TFF 0.87 requires < 3.12)"'
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r requirements/lock.txt
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r requirements/tff.txt
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c 'import tensorflow, tensorflow_privacy, tensorflow_federated, dp_accounting, tfpriv'
  echo "$want" > "$STAMP"
fi

# Pre-fill the Keras dataset cache so tf.keras.datasets.mnist.load_data() works offline.
SHARED_MNIST=${TFPRIV_MNIST_NPZ:-../shared/data/mnist.npz}
KERAS_CACHE="${KERAS_HOME:-$HOME/.keras}/datasets"
if [ -f "$SHARED_MNIST" ] && [ ! -f "$KERAS_CACHE/mnist.npz" ]; then
  mkdir -p "$KERAS_CACHE"
  cp "$SHARED_MNIST" "$KERAS_CACHE/mnist.npz"
  echo "setup: copied $SHARED_MNIST into $KERAS_CACHE"
fi
echo "setup: ready ($VENV)"
