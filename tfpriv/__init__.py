"""tfpriv: private deep learning for TensorFlow/Keras.

Sub-packages, one per concern (`docs/architecture.md` has the full map):
  tfpriv.dp           differential privacy for Keras: `make_private`, accounting, PATE, mechanisms
  tfpriv.federated    federated learning on TensorFlow Federated (FedAvg, DP-FedAvg, secure rounds)
  tfpriv.crypto       Shamir, SMPC and RLWE in NumPy behind one `SecureAggregator` interface
  tfpriv.data         MNIST and UCI Credit Approval loaders
  tfpriv.model        Functional-API MLP and CNN builders
  tfpriv.rng          the one source of randomness (OS CSPRNG, AES-CTR `Prg`, seeded test mode)
  tfpriv.errors       every exception tfpriv raises on purpose
  tfpriv.experiments  the `train.py` harness (flags, run directories, figures); not library API

The public entry points below load lazily: importing `tfpriv` does not import
TensorFlow.
"""

import importlib

__version__ = '0.1.0'

# Public name -> module that defines it.
_PUBLIC = {
    'make_private': 'tfpriv.dp.keras',
    'PrivateTraining': 'tfpriv.dp.keras',
    'build_model': 'tfpriv.model',
    'load_dataset': 'tfpriv.data',
    'Dataset': 'tfpriv.data',
    'RandomSource': 'tfpriv.rng',
    'Prg': 'tfpriv.rng',
    'SecureAggregator': 'tfpriv.crypto.secagg',
    'PlainAggregator': 'tfpriv.crypto.secagg',
}


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = sorted(_PUBLIC)
