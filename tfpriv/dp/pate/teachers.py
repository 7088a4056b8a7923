"""PATE teachers: disjoint shards of the private training set, one model per shard.

Papernot et al., "Semi-supervised Knowledge Transfer for Deep Learning from
Private Training Data" (ICLR 2017), Section 2.1: the private set is split into
N disjoint shards and teacher i is trained on shard i only, so one training
example influences exactly one teacher's vote.

Speed on two CPU cores: all teachers share one `tfpriv.dp.pate.trainer.Trainer`
(one `build_model` network, re-initialized per teacher, whose whole training
runs inside one `tf.function` loop), so nothing is rebuilt or retraced between
teachers. The teachers' votes (argmax labels) on the public MNIST test images
are the only output that PATE needs; they are cached in an `.npz` file keyed
by a hash of the configuration so they are computed once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import List, Optional

import numpy as np
from absl import logging

from tfpriv.dp.pate.trainer import Augmentation, Trainer
from tfpriv.progress import Progress, report
from tfpriv.rng import RandomSource

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'tfpriv', 'pate')
# The seeded randomness of PATE that protects nothing (the aggregator's noise is the mechanism).
SEED_CAUSE = "PATE's teacher shards, queries and students (seed; train.py --seed)"


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    """How the teachers are trained; `key()` names their cached votes.

    `augmentation` (random rotation, scaling, translation of every training
    image, as for the student) makes each teacher generalize better from its
    240 images, so teachers agree more and each answer costs less privacy.
    """

    num_teachers: int = 250
    model: str = 'cnn'
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 1e-3
    activation: str = 'relu'
    dropout: float = 0.2
    seed: Optional[int] = None
    num_train: int = 60000
    augmentation: Optional[Augmentation] = None

    def __post_init__(self):
        if self.num_teachers < 1:
            raise ValueError(f'num_teachers must be >= 1, got {self.num_teachers}')
        if not self.num_teachers <= self.num_train:
            raise ValueError(f'num_teachers ({self.num_teachers}) must be <= num_train ({self.num_train})')
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f'epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}')
        if not self.learning_rate > 0:
            raise ValueError(f'learning_rate must be > 0, got {self.learning_rate}')

    def key(self) -> str:
        """A short stable hash of every field (seedless configs are never cached)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def partition(num_examples: int, num_teachers: int, rng: RandomSource) -> List[np.ndarray]:
    """Splits `range(num_examples)` into `num_teachers` disjoint shards covering it.

    A uniformly random permutation (argsort of 64-bit keys from `rng`) cut into
    contiguous pieces whose sizes differ by at most one.
    """
    if not 1 <= num_teachers <= num_examples:
        raise ValueError(f'need 1 <= num_teachers <= num_examples, got {num_teachers}, {num_examples}')
    order = np.argsort(rng.uint64(num_examples), kind='stable')
    return [np.sort(shard) for shard in np.array_split(order, num_teachers)]


def train_teachers(x_train: np.ndarray, y_train: np.ndarray, queries: np.ndarray,
                   config: TeacherConfig, num_classes: int = 10,
                   rng: Optional[RandomSource] = None,
                   progress: Optional[Progress] = None) -> np.ndarray:
    """Trains `config.num_teachers` teachers on disjoint shards; returns their votes.

    Returns an int8 array (num_teachers, len(queries)): teacher t's predicted
    label for each query. `progress` hears ('teachers', t, num_teachers) after each.
    """
    if len(x_train) != len(y_train):
        raise ValueError(f'x_train and y_train differ in length: {len(x_train)} vs {len(y_train)}')
    rng = rng if rng is not None else RandomSource(config.seed, SEED_CAUSE)
    shards = partition(len(x_train), config.num_teachers, rng)
    trainer = Trainer(config.model, x_train.shape[1:], num_classes, rng, learning_rate=config.learning_rate,
                      activation=config.activation, dropout=config.dropout)
    votes = np.empty((config.num_teachers, len(queries)), dtype=np.int8)
    report(progress, 'teachers', 0, len(shards))
    for t, shard in enumerate(shards):
        trainer.reset()
        trainer.fit(x_train[shard], y_train[shard],
                    trainer.shuffled_epochs(len(shard), config.epochs, config.batch_size),
                    config.augmentation)
        votes[t] = np.argmax(trainer.probabilities(queries), axis=1)
        report(progress, 'teachers', t + 1, len(shards))
        if (t + 1) % 25 == 0 or t + 1 == len(shards):
            logging.info('trained %d/%d teachers', t + 1, len(shards))
    return votes


def teacher_votes(config: TeacherConfig, cache_dir: Optional[str] = DEFAULT_CACHE_DIR,
                  progress: Optional[Progress] = None) -> np.ndarray:
    """Votes of the configured teachers on all 10,000 MNIST test images, cached on disk.

    Teachers train on the first `config.num_train` MNIST training images. The
    cache file is `<cache_dir>/votes_<config.key()>.npz`; configurations without
    a seed are not reproducible and are not cached. `progress`: see `train_teachers`.
    """
    from tfpriv.data import load_mnist  # pylint: disable=g-import-not-at-top
    path = os.path.join(cache_dir, f'votes_{config.key()}.npz') if cache_dir else None
    if path and config.seed is not None and os.path.exists(path):
        with np.load(path) as cached:
            logging.info('teacher votes loaded from %s', path)
            return cached['votes']
    data = load_mnist()
    votes = train_teachers(data.x_train[:config.num_train], data.y_train[:config.num_train],
                           data.x_test, config, data.num_classes, progress=progress)
    if path and config.seed is not None:
        os.makedirs(cache_dir, exist_ok=True)
        np.savez_compressed(path, votes=votes, config=json.dumps(dataclasses.asdict(config)))
        logging.info('teacher votes saved to %s', path)
    return votes
