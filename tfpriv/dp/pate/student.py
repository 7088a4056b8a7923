"""The PATE student: a model trained on the teachers' noisy answers and the public pool.

Protocol (Papernot et al. 2017, Sec. 4.1; 2018, Sec. 5): the public data is
the MNIST test split; its first 9,000 images form the pool the student may
query and may use unlabeled, the last 1,000 are held out for evaluation.

Only a few hundred pool images get labels (each costs privacy), so the
student is semi-supervised, by self-training with augmentation (pseudo-labels:
Lee 2013; with augmented inputs as in "Noisy Student", Xie et al. 2020):

1. round 0 trains on the labeled queries alone, with random rotation,
   scaling and translation of every image;
2. each later round trains a fresh network on the labeled queries plus the
   pool images whose previous-round prediction is confident (max softmax ≥
   `confidence`), with those predictions as labels; half of each batch is
   drawn from the labeled queries so the teachers' answers are never swamped;
3. every round trains `ensemble` networks (fresh initializations and
   augmentations); the student's prediction, and the next round's
   pseudo-labels, are their mean softmax.

Pseudo-labels are computed from the student's own model on public data, so
they cost no privacy. Choosing which pool images to query (`select_queries`)
also uses public images only: a k-means-style spread over the pool so the
few queries cover every digit's styles.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np
from absl import logging

from tfpriv.dp.pate.aggregation import UNANSWERED
from tfpriv.dp.pate.trainer import Augmentation, Trainer
from tfpriv.progress import Progress, report
from tfpriv.rng import RandomSource

POOL_SIZE = 9000


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    """Student architecture and self-training schedule."""

    model: str = 'cnn'
    activation: str = 'relu'
    learning_rate: float = 1e-3
    batch_size: int = 64
    steps: int = 4000
    rounds: int = 3
    confidence: float = 0.9
    labeled_fraction: float = 0.25
    ensemble: int = 3
    augmentation: Augmentation = Augmentation()

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 2 or self.rounds < 0 or self.ensemble < 1:
            raise ValueError(f'need steps >= 1, batch_size >= 2, rounds >= 0, ensemble >= 1; got '
                             f'{self.steps}, {self.batch_size}, {self.rounds}, {self.ensemble}')
        if not 0.0 < self.confidence < 1.0 or not 0.0 < self.labeled_fraction <= 1.0:
            raise ValueError(f'confidence must be in (0, 1) and labeled_fraction in (0, 1], got '
                             f'{self.confidence}, {self.labeled_fraction}')


def split_public(x_test: np.ndarray, y_test: np.ndarray):
    """(pool images, pool labels, held-out images, held-out labels): first 9,000 / last 1,000."""
    if len(x_test) != 10000 or len(y_test) != 10000:
        raise ValueError(f'expected the 10,000-image MNIST test split, got {len(x_test)} images')
    return x_test[:POOL_SIZE], y_test[:POOL_SIZE], x_test[POOL_SIZE:], y_test[POOL_SIZE:]


def select_queries(x_pool: np.ndarray, num_queries: int, rng: RandomSource, iterations: int = 10) -> np.ndarray:
    """Indices of `num_queries` pool images spread over the pool (public data only).

    Runs Lloyd's k-means with k = num_queries on 8x-downsampled (7x7) images
    from random centres and returns, for each cluster, the image nearest its
    centre (Sener & Savarese 2018 argue for such coverage-based selection).
    """
    n = len(x_pool)
    if not 1 <= num_queries <= n:
        raise ValueError(f'num_queries must be in [1, {n}], got {num_queries}')
    feats = x_pool.reshape(n, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(n, 49).astype(np.float64)
    centres = feats[np.argsort(rng.uint64(n), kind='stable')[:num_queries]]
    sq = (feats ** 2).sum(1)
    for _ in range(iterations):
        dist = sq[:, None] - 2.0 * feats @ centres.T + (centres ** 2).sum(1)[None]
        assign = dist.argmin(axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, feats)
        sizes = np.bincount(assign, minlength=num_queries)
        centres = np.where(sizes[:, None] > 0, sums / np.maximum(sizes, 1)[:, None], centres)
    dist = sq[:, None] - 2.0 * feats @ centres.T + (centres ** 2).sum(1)[None]
    chosen = np.unique(dist.argmin(axis=0))
    if len(chosen) < num_queries:  # two centres share a nearest image: fill with unchosen images
        rest = np.setdiff1d(np.arange(n), chosen)
        extra = rest[np.argsort(rng.uint64(len(rest)), kind='stable')[:num_queries - len(chosen)]]
        chosen = np.concatenate([chosen, extra])
    return np.sort(chosen)


class Student:
    """Self-trained classifier on the pool; `labels[i] = -1` marks an unlabeled pool image."""

    def __init__(self, config: StudentConfig, input_shape, num_classes: int = 10,
                 rng: Optional[RandomSource] = None):
        self.config = config
        self._rng = rng if rng is not None else RandomSource()
        self._trainer = Trainer(config.model, input_shape, num_classes, self._rng, learning_rate=config.learning_rate,
                                activation=config.activation)
        self.num_classes = num_classes
        self._members: list = []

    def _schedule(self, labeled: np.ndarray, pseudo: np.ndarray) -> np.ndarray:
        """(steps, batch) indices: `labeled_fraction` of each batch from `labeled`, the rest from `pseudo`."""
        cfg = self.config
        n_lab = cfg.batch_size if len(pseudo) == 0 else max(1, round(cfg.labeled_fraction * cfg.batch_size))
        parts = [labeled[self._rng.uniform_mod(len(labeled), (cfg.steps, n_lab))]]
        if n_lab < cfg.batch_size:
            parts.append(pseudo[self._rng.uniform_mod(len(pseudo), (cfg.steps, cfg.batch_size - n_lab))])
        return np.concatenate(parts, axis=1)

    def fit(self, x_pool: np.ndarray, labels: np.ndarray, progress: Optional[Progress] = None) -> 'Student':
        """Self-training (module docstring); `progress` hears ('student', networks trained, total)."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(x_pool):
            raise ValueError(f'labels ({len(labels)}) must give one entry per pool image ({len(x_pool)})')
        labeled = np.flatnonzero(labels != UNANSWERED)
        if len(labeled) == 0:
            raise ValueError('the student needs at least one answered query')
        targets, pseudo = labels.copy(), np.zeros(0, dtype=np.int64)
        aug, total = self.config.augmentation, (self.config.rounds + 1) * self.config.ensemble
        report(progress, 'student', 0, total)
        for rnd in range(self.config.rounds + 1):
            self._members = []
            for _ in range(self.config.ensemble):
                self._trainer.reset()
                self._trainer.fit(x_pool, np.maximum(targets, 0), self._schedule(labeled, pseudo), aug)
                self._members.append(self._trainer.model.get_weights())
                report(progress, 'student', rnd * self.config.ensemble + len(self._members), total,
                       {'round': rnd})
            if rnd == self.config.rounds:
                break
            probs = self.predict_proba(x_pool)
            confident = probs.max(axis=1) >= self.config.confidence
            confident[labeled] = False
            pseudo = np.flatnonzero(confident)
            targets = np.where(confident, probs.argmax(axis=1), labels)
            logging.info('student round %d: %d labeled, %d pseudo-labeled', rnd, len(labeled), len(pseudo))
        return self

    def _each_member(self, fn, x: np.ndarray) -> list:
        """[fn(x) with each ensemble member's weights loaded]."""
        if not self._members:
            raise RuntimeError('call fit() before predicting')
        out = []
        for weights in self._members:
            self._trainer.model.set_weights(weights)
            out.append(fn(x))
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Mean softmax of the ensemble members."""
        return np.mean(self._each_member(self._trainer.probabilities, x), axis=0)

    def features(self, x: np.ndarray) -> np.ndarray:
        """Each member's penultimate-layer activations, concatenated: (len(x), ensemble × width)."""
        return np.concatenate(self._each_member(self._trainer.features, x), axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.argmax(self.predict_proba(x), axis=1) == np.asarray(y)))



def ensemble_proba(students: Sequence[Student], x: np.ndarray) -> np.ndarray:
    """Mean softmax of several fitted students (e.g. one per PATE stage)."""
    if not students:
        raise ValueError('need at least one student')
    return np.mean([student.predict_proba(x) for student in students], axis=0)
