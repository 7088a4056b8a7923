"""Data owners who secret-share their own records, and feature normalization on shares.

Horizontal split (the Credit Approval notebook's setting): each owner holds
whole records, e.g. one applicant per owner, and shares every record it holds
(features and one-hot label) with the computing parties. Vertical split: each
owner holds some columns of every record, owner 0 also the labels. Either way
the parties end up with the shared (N, d) matrix and (N, C) one-hot labels, and
no party, owner or dealer sees anyone else's values.

Normalization (`standardize`) is computed on the shares: with a public bound
b_j on each column (a form's declared limit; here the power of two at or above
the training column's largest |value|), a = x / b lies in [-1, 1], so squares
cannot overflow the fixed-point range; then mean m = mean(a), variance
v = mean((a - m)^2), and z = (a - m) / sqrt(v + 4^-K) with the secure inverse
square root of `approx` (K = `levels`; 4^-K plays the role of BatchNorm's
epsilon). Only z is used, still shared; m and v are never revealed. The test
records are normalized with the training statistics, also on shares.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tfpriv.crypto.smpc.party import Cluster, Traffic
from tfpriv.crypto.smpc.tensor import SharedTensor, stack
from tfpriv.data.base import Dataset
from tfpriv.data.credit import BINARY, NUM_COLUMNS, NUMERIC, encode, load_credit, read_rows

PARTITIONS = ('rows', 'columns')
NORMALIZATION_LEVELS = 6  # variance floor 4^-6 ~ 2.4e-4 of the squared bound
# The most fractional bits f that training allows: `approx.inv_sqrt` squares y <= 2^K
# (K = NORMALIZATION_LEVELS), and a product must stay below 2^(62 - 2f) (`ring`): 4^K < 2^(62 - 2f).
MAX_TRAINING_PRECISION = 30 - NORMALIZATION_LEVELS


@dataclasses.dataclass(frozen=True)
class OwnerData:
    """What one data owner holds: `x` (its records or its columns), `y` (labels or None)."""

    name: str
    x: np.ndarray
    y: Optional[np.ndarray] = None


def split_rows(x: np.ndarray, y: np.ndarray, num_owners: Optional[int] = None,
               name: str = 'owner') -> List[OwnerData]:
    """Contiguous blocks of records, one block per owner (default one record per owner)."""
    n = len(x)
    num_owners = n if num_owners is None else num_owners
    if not 1 <= num_owners <= n:
        raise ValueError(f'num_owners must be in [1, {n}] (the number of records), '
                         f'got {num_owners}')
    blocks = np.array_split(np.arange(n), num_owners)
    return [OwnerData(f'{name} {k}', x[block], y[block]) for k, block in enumerate(blocks)]


def split_columns(x: np.ndarray, y: np.ndarray, num_owners: int,
                  name: str = 'owner') -> List[OwnerData]:
    """Contiguous blocks of columns, one per owner; owner 0 also holds the labels."""
    d = x.shape[1]
    if not 1 <= num_owners <= d:
        raise ValueError(f'num_owners must be in [1, {d}] (the number of columns) for a '
                         f'vertical split, got {num_owners}')
    blocks = np.array_split(np.arange(d), num_owners)
    return [OwnerData(f'{name} {k}', x[:, block], y if k == 0 else None)
            for k, block in enumerate(blocks)]


def _check_owner(owner: OwnerData, width: Optional[int], rows: Optional[int],
                 num_classes: int) -> None:
    """Refuses an owner's data that is not a finite 2-D float block with valid labels."""
    x = np.asarray(owner.x)
    problem = None
    if x.ndim != 2 or x.dtype.kind not in 'biuf':
        problem = f'features must be a 2-D numeric array, got shape {x.shape} of {x.dtype}'
    elif width is not None and x.shape[1] != width:
        problem = f'records have {x.shape[1]} features, the others have {width}'
    elif rows is not None and x.shape[0] != rows:
        problem = f'holds {x.shape[0]} records, the others {rows}'
    elif not np.all(np.isfinite(x)):
        problem = 'features contain NaN or infinity'
    elif owner.y is not None:
        y = np.asarray(owner.y)
        if (y.shape != x.shape[:1] or y.dtype.kind not in 'iu'
                or np.any((y < 0) | (y >= num_classes))):
            problem = f'labels must be {x.shape[0]} integers in [0, {num_classes})'
    if problem:
        raise ValueError(f'data owner {owner.name!r}: {problem}')


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.int64)[np.asarray(labels)]


def share_rows(cluster: Cluster, owners: Sequence[OwnerData],
               num_classes: int) -> Tuple[SharedTensor, SharedTensor]:
    """Each owner shares each of its records; returns shared (N, d) features, (N, C) labels."""
    if not owners:
        raise ValueError('share_rows needs at least one data owner')
    width = np.asarray(owners[0].x).shape[-1]
    features, labels = [], []
    for owner in owners:
        _check_owner(owner, width, None, num_classes)
        if owner.y is None:
            raise ValueError(f'data owner {owner.name!r}: a horizontal split needs its labels')
        party = cluster.client(owner.name)
        for row, label in zip(np.asarray(owner.x, np.float64), _one_hot(owner.y, num_classes)):
            features.append(SharedTensor.share(cluster, row, owner=party))
            labels.append(SharedTensor.share(cluster, label, owner=party, precision=0))
    return stack(features), stack(labels)


def share_columns(cluster: Cluster, owners: Sequence[OwnerData],
                  num_classes: int) -> Tuple[SharedTensor, SharedTensor]:
    """Each owner shares each of its columns; owner 0 its labels too."""
    if not owners or owners[0].y is None:
        raise ValueError('share_columns needs owners, the first of them holding the labels')
    rows = len(owners[0].x)
    columns, parties = [], []
    for owner in owners:
        _check_owner(owner, None, rows, num_classes)
        parties.append(cluster.client(owner.name))
        columns += [SharedTensor.share(cluster, column, owner=parties[-1])
                    for column in np.asarray(owner.x, np.float64).T]
    labels = SharedTensor.share(cluster, _one_hot(owners[0].y, num_classes), owner=parties[0],
                                precision=0)
    return stack(columns, axis=1), labels


def share_split(cluster: Cluster, x: np.ndarray, y: np.ndarray, num_classes: int,
                partition: str = 'rows', num_owners: Optional[int] = None,
                name: str = 'owner') -> Tuple[SharedTensor, SharedTensor, Traffic]:
    """Shares one split of a data set by its owners; also returns the input traffic."""
    x = np.asarray(x).reshape(len(x), -1)
    before = dataclasses.replace(cluster.network.online)
    if partition == 'rows':
        shared = share_rows(cluster, split_rows(x, y, num_owners, name), num_classes)
    elif partition == 'columns':
        shared = share_columns(cluster, split_columns(x, y, num_owners or 2, name), num_classes)
    else:
        raise ValueError(f'partition must be one of {PARTITIONS}, got {partition!r}')
    after = cluster.network.online
    traffic = Traffic(after.rounds - before.rounds, after.messages - before.messages,
                      after.bytes - before.bytes)
    return shared[0], shared[1], traffic


def column_bounds(x: np.ndarray) -> np.ndarray:
    """Public per-column bounds: the power of two at or above max |x_j| (at least 1)."""
    top = np.max(np.abs(np.asarray(x, np.float64).reshape(len(x), -1)), axis=0)
    return 2.0 ** np.ceil(np.log2(np.maximum(top, 1.0)))


def standardize(ops, x_train, x_test, bounds: np.ndarray,
                levels: int = NORMALIZATION_LEVELS):
    """(x - mean) / sqrt(var + 4^-levels) of x / bounds, with training statistics.

    `ops` supplies the inverse square root: exact for plaintext arrays,
    `approx.inv_sqrt` for shared ones (see `training.PlainOps`/`SecureOps`).
    """
    scale = 1.0 / np.asarray(bounds, np.float64)
    scaled = x_train * scale
    mean = scaled.mean(axis=0)
    centred = scaled - mean
    variance = (centred * centred).mean(axis=0)
    inverse_std = ops.inv_sqrt(variance + 4.0 ** -levels, levels)
    return centred * inverse_std, (x_test * scale - mean) * inverse_std


def credit_records(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Credit Approval split as `load_credit` splits it, but with the numeric attributes
    as the applicants hold them (not standardized): the owners' own records.

    `load_credit` standardizes with statistics of all training rows, which is the
    trusted-party step that `standardize` replaces.
    """
    rows = read_rows()
    data = load_credit(seed=seed, test_fraction=test_fraction)
    order = np.random.default_rng(seed).permutation(len(rows))
    test, train = np.split(order, [int(round(test_fraction * len(rows)))])
    features = encode(rows, train).astype(np.float64)
    column = 0
    for j in range(NUM_COLUMNS - 1):
        if j in NUMERIC:
            features[:, column] = [float(row[j]) for row in rows]
        column += 1 if j in NUMERIC or j in BINARY else len({row[j] for row in rows})
    return dataclasses.replace(data, x_train=features[train], x_test=features[test])
