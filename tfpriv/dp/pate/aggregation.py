"""Noisy aggregation of teacher votes: LNMax, GNMax and Confident-GNMax.

For a query x, n_j(x) is the number of teachers voting for class j. Changing
one private training example changes one teacher's vote, i.e. one count goes
down by 1 and another up by 1 (L1 sensitivity 2, L2 sensitivity √2 of the
histogram; sensitivity 1 of max_j n_j).

- LNMax (Papernot et al. 2017, Eq. 1): argmax_j n_j + Lap(1/γ). Releasing the
  whole noisy histogram is the composition of two 1-D Laplace mechanisms of
  scale 1/γ (the two changed coordinates), 2γ-DP; the argmax is post-processing.
  DpEvent: SelfComposed(Laplace(1/γ), 2).
- GNMax (Papernot et al. 2018, Sec. 4.1): argmax_j n_j + N(0, σ^2). The noisy
  histogram is the Gaussian mechanism with noise multiplier σ/√2.
- Confident-GNMax (2018, Alg. 1): answer only if max_j n_j + N(0, σ1^2) ≥ T,
  and then with GNMax(σ2). The check is a Gaussian mechanism on a sensitivity-1
  statistic (noise multiplier σ1); the answer is released only for queries that
  pass it. Unanswered queries get the label -1.

`dp_events(labels)` gives the data-independent accounting of what was
released (one event per query asked, plus one per answer); their composition
is computed by dp_accounting (`tfpriv.dp.pate.analysis`).
"""

from __future__ import annotations

import math
from typing import List, Optional

import dp_accounting
import numpy as np

from tfpriv.dp import accounting
from tfpriv.rng import RandomSource

UNANSWERED = -1


def vote_counts(teacher_preds: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Histogram n_j(x) of shape (num_queries, num_classes) from (num_teachers, num_queries) votes."""
    preds = np.asarray(teacher_preds)
    if preds.ndim != 2 or preds.size == 0 or not np.issubdtype(preds.dtype, np.integer):
        raise ValueError(f'teacher_preds must be a non-empty 2-D integer array (teachers, queries), '
                         f'got shape {preds.shape} dtype {preds.dtype}')
    if preds.min() < 0 or preds.max() >= num_classes:
        raise ValueError(f'votes must be class labels in [0, {num_classes}), got [{preds.min()}, {preds.max()}]')
    offsets = np.arange(preds.shape[1], dtype=np.int64) * num_classes
    flat = np.bincount((preds.astype(np.int64) + offsets).ravel(), minlength=preds.shape[1] * num_classes)
    return flat.reshape(preds.shape[1], num_classes)


def _positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f'{name} must be a positive finite number, got {value}')
    return float(value)


def _check_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] < 2 or np.any(counts < 0):
        raise ValueError(f'counts must be a (queries, classes >= 2) array of non-negative vote counts, '
                         f'got shape {counts.shape}')
    return counts.astype(np.float64)


class LNMax:
    """Laplace noisy max with per-count noise Lap(1/γ), γ = `noise_eps` (2γ-DP per query)."""

    name = 'lnmax'

    def __init__(self, noise_eps: float, rng: Optional[RandomSource] = None):
        self.noise_eps = _positive('noise_eps', noise_eps)
        self._rng = rng if rng is not None else RandomSource()

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        counts = _check_counts(counts)
        return np.argmax(counts + self._rng.laplace(counts.shape, 1.0 / self.noise_eps), axis=1)

    def dp_events(self, labels: np.ndarray) -> List[dp_accounting.DpEvent]:
        per_query = accounting.repeated(accounting.laplace_event(1.0 / self.noise_eps), 2)
        return [accounting.repeated(per_query, int(np.size(labels)))]


class GNMax:
    """Gaussian noisy max with per-count noise N(0, σ^2)."""

    name = 'gnmax'

    def __init__(self, sigma: float, rng: Optional[RandomSource] = None):
        self.sigma = _positive('sigma', sigma)
        self._rng = rng if rng is not None else RandomSource()

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        counts = _check_counts(counts)
        return np.argmax(counts + self._rng.normal(counts.shape, self.sigma), axis=1)

    def dp_events(self, labels: np.ndarray) -> List[dp_accounting.DpEvent]:
        answered = int(np.count_nonzero(np.asarray(labels) != UNANSWERED))
        return [accounting.repeated(accounting.gaussian_event(self.sigma / math.sqrt(2.0)), answered)]


class ConfidentGNMax:
    """Answers with GNMax(σ2) only when max_j n_j + N(0, σ1^2) ≥ threshold (Papernot 2018, Alg. 1)."""

    name = 'confident-gnmax'

    def __init__(self, threshold: float, sigma_threshold: float, sigma: float,
                 rng: Optional[RandomSource] = None):
        if not np.isfinite(threshold):
            raise ValueError(f'threshold must be finite, got {threshold}')
        self.threshold = float(threshold)
        self.sigma_threshold = _positive('sigma_threshold', sigma_threshold)
        self._rng = rng if rng is not None else RandomSource()
        self.gnmax = GNMax(sigma, self._rng)

    @property
    def sigma(self) -> float:
        return self.gnmax.sigma

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        counts = _check_counts(counts)
        noisy_max = counts.max(axis=1) + self._rng.normal(len(counts), self.sigma_threshold)
        passed = noisy_max >= self.threshold
        labels = np.full(len(counts), UNANSWERED, dtype=np.int64)
        if passed.any():
            labels[passed] = self.gnmax(counts[passed])
        return labels

    def dp_events(self, labels: np.ndarray) -> List[dp_accounting.DpEvent]:
        check = accounting.repeated(accounting.gaussian_event(self.sigma_threshold),
                                    int(np.size(labels)))
        return [check] + self.gnmax.dp_events(labels)


def make_aggregator(name: str, noise: float, threshold: float = 0.0, sigma_threshold: float = 0.0,
                    rng: Optional[RandomSource] = None):
    """`lnmax` (noise = γ), `gnmax` (noise = σ) or `confident-gnmax` (noise = σ2)."""
    if name == 'lnmax':
        return LNMax(noise, rng)
    if name == 'gnmax':
        return GNMax(noise, rng)
    if name == 'confident-gnmax':
        return ConfidentGNMax(threshold, sigma_threshold, noise, rng)
    raise ValueError(f"aggregator must be 'lnmax', 'gnmax' or 'confident-gnmax', got {name!r}")
