"""`audit_training`: one training run audited by membership inference and by canaries.

The training images of `data` are split at random into members (trained on),
non-members (a control set of unused training images, from the same distribution)
and a canary pool; each canary is included with probability 1/2. `train_fn` trains
a fresh model on the members plus the included canaries; its outputs then give

- the threshold and trained membership inference attacks, members vs non-members
  (`tfpriv.dp.audit.mia`), and
- the canary ε lower bound of Steinke, Nasr and Jagielski 2023
  (`tfpriv.dp.audit.canary`), to set beside the accountant's upper bound.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np
from absl import logging

from tfpriv import checks
from tfpriv.data.base import Dataset
from tfpriv.dp.audit import canary, mia

# train_fn(x, y) -> a freshly trained Keras model whose outputs are logits.
TrainFn = Callable[[np.ndarray, np.ndarray], object]


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """Empirical privacy of one training run.

    mia_*: loss-threshold attack; trained_attack_*: logistic attack (out-of-fold);
    canary_eps_lower: ε lower bound at `confidence` (and δ = `delta`);
    num_train_examples: n given to `train_fn` (members + included canaries).
    """

    mia_auc: float
    mia_advantage: float
    trained_attack_auc: float
    trained_attack_advantage: float
    canary_eps_lower: float
    num_canaries: int
    num_canaries_included: int
    canary_guesses: int
    canary_correct: int
    confidence: float
    delta: float
    num_members: int
    num_nonmembers: int
    num_train_examples: int
    train_accuracy: float
    test_accuracy: float

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (f'MIA AUC {self.mia_auc:.3f} (advantage {self.mia_advantage:.3f}), trained attack '
                f'AUC {self.trained_attack_auc:.3f}; canary audit: {self.canary_correct}/'
                f'{self.canary_guesses} correct, eps >= {self.canary_eps_lower:.3f} at '
                f'{self.confidence:.0%} confidence (delta={self.delta:g}, m={self.num_canaries})')


@dataclasses.dataclass
class _AuditState:
    """Index split, canaries and the trained model's logits, filled stage by stage."""

    data: Dataset
    members: np.ndarray
    nonmembers: np.ndarray
    canary_x: np.ndarray
    canary_y: np.ndarray
    included: np.ndarray
    logits: Optional[dict] = None


def _plan(data: Dataset, num_train: int, num_nonmembers: Optional[int], num_canaries: int,
          rng: np.random.Generator) -> _AuditState:
    """Random disjoint members / non-members / canary images from `data`'s training set."""
    total = data.num_train
    num_canaries = checks.integer('num_canaries', num_canaries, minimum=2, maximum=total - 2)
    num_train = checks.integer('num_train', num_train, minimum=1,
                               maximum=total - num_canaries - 1)
    left = total - num_canaries - num_train
    num_nonmembers = min(num_train, left) if num_nonmembers is None else checks.integer(
        'num_nonmembers', num_nonmembers, minimum=1, maximum=left)
    order = rng.permutation(total)
    pool = order[num_train + num_nonmembers:num_train + num_nonmembers + num_canaries]
    canary_x, canary_y, included = canary.make_canaries(
        data.x_train[pool], data.y_train[pool], data.num_classes, rng)
    return _AuditState(data, order[:num_train], order[num_train:num_train + num_nonmembers],
                       canary_x, canary_y, included)


def _train(state: _AuditState, train_fn: TrainFn, rng: np.random.Generator):
    """Trains on the members and the included canaries, in random order."""
    x = np.concatenate([state.data.x_train[state.members], state.canary_x[state.included]])
    y = np.concatenate([state.data.y_train[state.members], state.canary_y[state.included]])
    order = rng.permutation(len(y))
    model = train_fn(x[order], y[order])
    if not callable(getattr(model, 'predict', None)):
        raise TypeError(f'train_fn must return a trained Keras model (with predict), got '
                        f'{type(model).__name__}')
    return model


def _predict(state: _AuditState, model, from_logits: bool) -> None:
    """Logits of members, non-members, canaries and the test set."""
    data = state.data
    inputs = {'members': data.x_train[state.members], 'nonmembers': data.x_train[state.nonmembers],
              'canaries': state.canary_x, 'test': data.x_test}
    state.logits = {}
    for name, x in inputs.items():
        out = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float64)
        state.logits[name] = out if from_logits else np.log(np.clip(out, 1e-30, None))


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def _report(state: _AuditState, confidence: float, delta: float, seed: int) -> AuditReport:
    """Runs both attacks and the canary audit on the logits."""
    data, logits = state.data, state.logits
    member_y, nonmember_y = data.y_train[state.members], data.y_train[state.nonmembers]
    threshold = mia.threshold_attack(mia.per_example_loss(logits['members'], member_y),
                                     mia.per_example_loss(logits['nonmembers'], nonmember_y))
    trained = mia.trained_attack(mia.attack_features(logits['members'], member_y),
                                 mia.attack_features(logits['nonmembers'], nonmember_y), seed=seed)
    canary_scores = -mia.per_example_loss(logits['canaries'], state.canary_y)
    audit = canary.canary_audit(canary_scores, state.included, confidence=confidence, delta=delta)
    return AuditReport(
        threshold.auc, threshold.advantage, trained.auc, trained.advantage, audit.epsilon_lower,
        audit.num_canaries, int(state.included.sum()), audit.num_guesses, audit.num_correct,
        confidence, delta, len(state.members), len(state.nonmembers),
        len(state.members) + int(state.included.sum()),
        _accuracy(logits['members'], member_y), _accuracy(logits['test'], data.y_test))


def audit_training(train_fn: TrainFn, data: Dataset, *, num_train: int, num_canaries: int,
                   seed: int, num_nonmembers: Optional[int] = None, confidence: float = 0.95,
                   delta: float = 0.0, from_logits: bool = True) -> AuditReport:
    """Trains once with `train_fn` and audits the model (see the module docstring).

    Args:
      train_fn: `train_fn(x, y)` trains a FRESH model on exactly (x, y) and returns it;
        for DP-SGD it should account for n = len(x) examples.
      data: the data set; its training images provide members, non-members and canaries.
      num_train: members (clean training examples).
      num_canaries: m; about m/2 are added to the training set.
      seed: seeds the split, the canary labels and coins, and the attack folds.
      num_nonmembers: control-set size (default min(num_train, images left)).
      confidence: 1 − β of the ε lower bound.
      delta: the δ of the DP claim being audited (0 tests pure ε-DP).
      from_logits: False when the model outputs probabilities.
    """
    if not callable(train_fn):
        raise TypeError(f'train_fn must be callable as train_fn(x, y), got '
                        f'{type(train_fn).__name__}')
    checks.integer('seed', seed, minimum=0)
    confidence = checks.number('confidence', confidence, minimum=0.0, maximum=1.0,
                               strict_minimum=True)
    delta = checks.number('delta', delta, minimum=0.0, maximum=1.0)
    rng = np.random.default_rng(seed)
    state = _plan(data, num_train, num_nonmembers, num_canaries, rng)
    model = _train(state, train_fn, rng)
    _predict(state, model, from_logits)
    report = _report(state, confidence, delta, seed)
    logging.info('audit: %s', report.summary())
    return report
