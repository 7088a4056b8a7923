"""Canaries and the one-run canary audit (Steinke, Nasr, Jagielski 2023).

Canaries are mislabelled training images (label shifted by a random non-zero
amount mod the number of classes): a model only fits one it was trained on, so
its loss tells membership. Each is included with probability 1/2. The auditor
ranks the canaries by score (higher = more likely included), guesses "in" for the
top k and "out" for the bottom k (abstaining on the rest), and converts the number
of correct guesses into an ε lower bound (`tfpriv.dp.audit.bound`). Several k are
tried; each is tested at level β / (number of k) (Bonferroni), so the reported
maximum still holds with probability ≥ 1 − β.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence, Tuple

import numpy as np

from tfpriv import checks
from tfpriv.dp.audit.bound import epsilon_lower_bound

GUESS_FRACTIONS = (0.05, 0.1, 0.25, 0.5)


@dataclasses.dataclass(frozen=True)
class CanaryAudit:
    """The best guess set: `num_guesses` = 2k guesses, `num_correct` right, and its ε bound."""

    epsilon_lower: float
    num_canaries: int
    num_guesses: int
    num_correct: int
    confidence: float
    delta: float


def make_canaries(x: np.ndarray, y: np.ndarray, num_classes: int,
                  rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, wrong labels, inclusion mask ~ Bernoulli(1/2)) for the canary images `x`."""
    num_classes = checks.integer('num_classes', num_classes, minimum=2)
    shift = rng.integers(1, num_classes, size=len(y))
    included = rng.random(len(y)) < 0.5
    return x, (np.asarray(y) + shift) % num_classes, included


def guess_counts(num_canaries: int,
                 fractions: Sequence[float] = GUESS_FRACTIONS) -> Tuple[int, ...]:
    """The distinct k = max(1, ⌊f·m⌋) per side, capped at ⌊m/2⌋ so the 2k guesses fit."""
    for fraction in fractions:
        checks.number('fractions', fraction, minimum=0.0, maximum=0.5, strict_minimum=True)
    half = num_canaries // 2
    return tuple(sorted({min(half, max(1, int(f * num_canaries))) for f in fractions}))


def canary_audit(scores, included, *, confidence: float = 0.95, delta: float = 0.0,
                 fractions: Sequence[float] = GUESS_FRACTIONS) -> CanaryAudit:
    """ε lower bound from canary `scores` (higher = guessed in) and the true `included` mask."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    included = np.asarray(included, dtype=bool).reshape(-1)
    if scores.size != included.size or scores.size < 2 or not np.all(np.isfinite(scores)):
        raise ValueError(f'scores must be {included.size} finite values, one per canary (>= 2), '
                         f'got {scores.size}')
    confidence = checks.number('confidence', confidence, minimum=0.0, maximum=1.0,
                               strict_minimum=True)
    counts = guess_counts(scores.size, fractions)
    order = np.argsort(-scores, kind='stable')
    best = None
    for k in counts:
        correct = int(included[order[:k]].sum() + (~included[order[-k:]]).sum())
        eps = epsilon_lower_bound(correct, 2 * k, num_canaries=scores.size,
                                  confidence=1.0 - (1.0 - confidence) / len(counts), delta=delta)
        if best is None or eps > best.epsilon_lower:
            best = CanaryAudit(eps, scores.size, 2 * k, correct, confidence, delta)
    return best
