"""The `Dataset` record returned by every loader, and loading by name."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np
from tfpriv.errors import DatasetUnavailableError

DATASETS = ('mnist', 'credit')



@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train/test arrays: float32 features, int64 labels in [0, num_classes)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_train(self) -> int:
        return int(self.x_train.shape[0])

    def subset(self, num_train: Optional[int] = None, num_test: Optional[int] = None) -> 'Dataset':
        """The first `num_train` / `num_test` examples (all when None)."""
        for label, count, total in (('num_train', num_train, self.num_train),
                                    ('num_test', num_test, len(self.x_test))):
            if count is not None and not 1 <= count <= total:
                raise ValueError(f'{label} must be in [1, {total}], got {count}')
        return dataclasses.replace(self, x_train=self.x_train[:num_train],
                                   y_train=self.y_train[:num_train],
                                   x_test=self.x_test[:num_test], y_test=self.y_test[:num_test])


def load_dataset(name: str) -> Dataset:
    """Loads a data set by name (one of `DATASETS`)."""
    from tfpriv.data.credit import load_credit
    from tfpriv.data.mnist import load_mnist
    loaders = {'mnist': load_mnist, 'credit': load_credit}
    if name not in loaders:
        raise ValueError(f'unknown dataset {name!r}; choose one of {DATASETS}')
    return loaders[name]()
