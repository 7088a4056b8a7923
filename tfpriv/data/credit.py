"""UCI Credit Approval (Quinlan; UCI ML Repository data set 27, CC BY 4.0).

690 applicants, 15 anonymised attributes A1..A15, label A16 (`+` approved,
`-` rejected). `crx.data` ships with tfpriv (see `CRX_ATTRIBUTION.md`).
Preprocessing, as the seed notebook: drop the 37 rows with a missing value
(`?`), leaving 653; binarize the two-valued columns; one-hot the categorical
ones; standardize the numeric ones with the training split's mean and
standard deviation. Label 1 means approved.
"""

from __future__ import annotations

import csv
import functools
import os
from typing import List, Optional, Sequence

import numpy as np

from tfpriv.data.base import Dataset, DatasetUnavailableError

DEFAULT_PATH = os.path.join(os.path.dirname(__file__), 'crx.data')
NUMERIC = (1, 2, 7, 10, 13, 14)        # A2 A3 A8 A11 A14 A15
BINARY = (0, 8, 9, 11)                 # A1 A9 A10 A12
CATEGORICAL = (3, 4, 5, 6, 12)         # A4 A5 A6 A7 A13
NUM_COLUMNS = 16


def read_rows(path: str = DEFAULT_PATH) -> List[List[str]]:
    """The complete rows of `crx.data` (rows with a `?` dropped)."""
    if not os.path.exists(path):
        raise DatasetUnavailableError(f'Credit Approval file not found at {path}; pass the path of '
                                      'crx.data (UCI data set 27)')
    with open(path, newline='') as f:
        rows = [row for row in csv.reader(f) if row]
    bad = [i for i, row in enumerate(rows) if len(row) != NUM_COLUMNS]
    if bad:
        raise ValueError(f'{path}: expected {NUM_COLUMNS} comma-separated fields, row {bad[0] + 1} '
                         f'has {len(rows[bad[0]])}')
    return [row for row in rows if '?' not in row]


def encode(rows: Sequence[Sequence[str]], train_rows: Sequence[int]) -> np.ndarray:
    """Feature matrix: binary columns as 0/1, one-hot categoricals, standardized numerics.

    Category vocabularies come from all rows (they are public codes); means and
    standard deviations from `train_rows` only.
    """
    columns = []
    for j in range(NUM_COLUMNS - 1):
        values = [row[j] for row in rows]
        if j in NUMERIC:
            x = np.asarray(values, dtype=np.float64)
            mean, std = x[train_rows].mean(), x[train_rows].std()
            columns.append(((x - mean) / (std if std > 0 else 1.0))[:, None])
        else:
            vocab = sorted(set(values))
            one_hot = np.asarray([[v == c for c in vocab] for v in values], dtype=np.float64)
            columns.append(one_hot[:, :1] if j in BINARY else one_hot)
    return np.concatenate(columns, axis=1).astype(np.float32)


@functools.lru_cache(maxsize=4)
def load_credit(path: str = DEFAULT_PATH, test_fraction: float = 0.2, seed: int = 0,
                num_rows: Optional[int] = None) -> Dataset:
    """Credit Approval as a `Dataset`: a seeded shuffle split into train and test."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f'test_fraction must be in (0, 1), got {test_fraction}')
    rows = read_rows(path)[:num_rows]
    labels = np.asarray([row[-1] == '+' for row in rows], dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(rows))
    num_test = int(round(test_fraction * len(rows)))
    test, train = order[:num_test], order[num_test:]
    features = encode(rows, train)
    return Dataset('credit', features[train], labels[train], features[test], labels[test],
                   num_classes=2)
