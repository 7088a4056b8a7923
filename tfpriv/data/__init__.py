"""Data sets used by tfpriv: MNIST (through the Keras cache) and UCI Credit Approval."""

from tfpriv.data.base import DATASETS, Dataset, DatasetUnavailableError, load_dataset
from tfpriv.data.credit import load_credit
from tfpriv.data.mnist import load_mnist

__all__ = ['DATASETS', 'Dataset', 'DatasetUnavailableError', 'load_credit', 'load_dataset',
           'load_mnist']
