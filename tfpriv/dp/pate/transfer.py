"""Second-stage PATE teachers: private softmax heads on the first student's features.

Stage 1 is ordinary PATE: teachers trained from scratch on their shards
answer a few hundred queries, and a student self-trains on the public pool.
That student is a function of public data and of already-released DP answers,
so its penultimate-layer features φ are public. In stage 2 every teacher t
trains a multinomial logistic-regression head on (φ(x), y) for the examples of
its own shard; teachers that no longer learn features from 240 images agree
far more (on MNIST: 98.3% mean accuracy against 92% for the from-scratch
CNNs), so the stage-2 Confident-GNMax answers are both more accurate and
cheaper in data-dependent ε. A fresh student trains on both stages' answers.

Privacy: the stage-2 partition is drawn independently of the data and head t
reads only shard t (and public φ), so one changed training example moves at
most one teacher's vote: the stage-2 answers are a PATE mechanism with the
usual analysis (`tfpriv.dp.pate.analysis`). The two stages compose
adaptively; the pipeline sums their RDP curves (Mironov 2017, Prop. 1) and
composes their DpEvents in dp_accounting for the data-independent ε.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from absl import logging

from tfpriv.progress import Progress, report


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Stage 2: queries asked, its Confident-GNMax (T, σ1, σ2), query filter, the heads' training.

    Stage-2 queries are spread (k-means) over the pool images on which the
    stage-1 student's ensemble is at least `min_confidence` sure. That is
    public information, and it skips the images the stage-2 teachers, which
    share the student's features, would dispute: disputed answers are the
    expensive ones in data-dependent ε.
    """

    queries: int = 1000
    threshold: float = 100.0
    sigma_threshold: float = 40.0
    noise: float = 30.0
    min_confidence: float = 0.9
    l2: float = 1e-2
    steps: int = 500
    learning_rate: float = 0.5

    def __post_init__(self):
        if self.queries < 1 or self.steps < 1:
            raise ValueError(f'queries and steps must be >= 1, got {self.queries}, {self.steps}')
        if not 0.0 <= self.min_confidence < 1.0:
            raise ValueError(f'min_confidence must be in [0, 1), got {self.min_confidence}')
        for name in ('threshold', 'sigma_threshold', 'noise', 'learning_rate'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a finite number > 0, got {value}')
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f'l2 must be a finite number >= 0, got {self.l2}')


def confident_candidates(probabilities: np.ndarray, min_confidence: float, wanted: int) -> np.ndarray:
    """Indices of the rows whose max probability is ≥ min_confidence (a warning if fewer than `wanted`)."""
    candidates = np.flatnonzero(np.asarray(probabilities).max(axis=1) >= min_confidence)
    if len(candidates) == 0:
        raise ValueError(f'no pool image reaches min_confidence {min_confidence}: lower it')
    if len(candidates) < wanted:
        logging.warning('only %d pool images reach confidence %g: stage 2 asks %d queries, not %d',
                        len(candidates), min_confidence, len(candidates), wanted)
    return candidates


def standardizer(public_features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale from public data only.

    The scale is the standard deviation floored at 1% of the mean standard
    deviation, so a feature (nearly) constant on the public data, such as a
    dead ReLU unit, is not blown up where it does vary.
    """
    std = public_features.std(axis=0)
    return public_features.mean(axis=0), np.maximum(std, 0.01 * std.mean() + 1e-12)


def train_heads(features: np.ndarray, labels: np.ndarray, shards: Sequence[np.ndarray],
                num_classes: int, l2: float = 1e-2, steps: int = 500, learning_rate: float = 0.5,
                progress: Optional[Progress] = None) -> np.ndarray:
    """One L2-regularized softmax regression per shard, by full-batch gradient descent.

    Head t minimizes (1/|S_t|) Σ_{i∈S_t} CE(softmax(W_t^T [φ_i; 1]), y_i) + (l2/2)‖W_t‖²
    over examples i of shard S_t only; all heads step together as one batched
    product. Returns the stacked weights, shape (len(shards), dim + 1, num_classes)
    (the last input row is the bias). `progress` hears ('heads', step, steps) every 50 steps.
    """
    features, labels = np.asarray(features, np.float32), np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f'features must be (n, dim) with one label per row; got {features.shape} '
                         f'and {labels.shape} labels')
    if len(shards) == 0 or min(len(s) for s in shards) == 0:
        raise ValueError('need at least one shard and no empty shard')
    size = max(len(s) for s in shards)
    index = np.stack([np.resize(s, size) for s in shards])  # short shards repeat rows ...
    weight = np.stack([(np.arange(size) < len(s)) / len(s) for s in shards]).astype(np.float32)  # ... weighted 0
    inputs = np.concatenate([features[index], np.ones(index.shape + (1,), np.float32)], axis=-1)
    targets = np.eye(num_classes, dtype=np.float32)[labels[index]]
    heads = np.zeros((len(shards), inputs.shape[-1], num_classes), np.float32)
    for step in range(steps):
        if step % 50 == 0:
            report(progress, 'heads', step, steps)
        logits = inputs @ heads
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        grad = np.swapaxes(inputs, 1, 2) @ ((probs - targets) * weight[..., None]) + l2 * heads
        heads -= learning_rate * grad
    report(progress, 'heads', steps, steps)
    return heads


def head_votes(heads: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Each head's predicted class for each row of `features`: int8 (num_heads, n)."""
    inputs = np.concatenate([np.asarray(features, np.float32), np.ones((len(features), 1), np.float32)], axis=1)
    return np.argmax(np.einsum('nd,tdk->tnk', inputs, heads), axis=-1).astype(np.int8)
