"""Membership inference metrics: the threshold attack and a trained (logistic) attack.

The same metrics as TensorFlow Privacy's `privacy_tests.membership_inference_attack`
(0.8.x), computed with NumPy/SciPy:

- threshold attack (Yeom et al., "Privacy Risk in Machine Learning", CSF 2018):
  "member if loss ≤ t" over all thresholds t; ROC AUC, and the attacker advantage
  max_t |TPR − FPR| (Yeom et al.'s Definition 4 maximised over thresholds; TF Privacy
  takes the absolute value, so an attacker may also flip its guess);
- trained attack (Shokri et al., "Membership Inference Attacks against Machine
  Learning Models", S&P 2017, with a linear attack model as in TF Privacy's
  `LOGISTIC_REGRESSION`): L2-regularised logistic regression on per-example
  features, scored out-of-fold by stratified k-fold cross-validation so every
  example's score comes from a model that never saw it.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np
from scipy import special, stats

from tfpriv import checks

_NEWTON_STEPS = 50


@dataclasses.dataclass(frozen=True)
class AttackResult:
    """Quality of a membership inference attack (0.5 / 0.0 for a blind guess)."""

    auc: float
    advantage: float
    num_members: int
    num_nonmembers: int


def _as_scores(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f'{name} must hold at least one value, got an empty array')
    if not np.all(np.isfinite(array)):
        raise ValueError(f'{name} must be finite, got {int(np.sum(~np.isfinite(array)))} '
                         'NaN/inf values')
    return array


def roc_auc(member_scores, nonmember_scores) -> float:
    """P[score(member) > score(non-member)] + ½ P[tie]: the Mann-Whitney U / (n₁ n₀)."""
    members = _as_scores('member_scores', member_scores)
    nonmembers = _as_scores('nonmember_scores', nonmember_scores)
    ranks = stats.rankdata(np.concatenate([members, nonmembers]))  # ties get average ranks
    n1, n0 = members.size, nonmembers.size
    u_statistic = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    return float(u_statistic / (n1 * n0))


def roc_curve(member_scores, nonmember_scores) -> Tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of "member if score ≥ t" at every distinct t, from (0, 0) to (1, 1)."""
    members = _as_scores('member_scores', member_scores)
    nonmembers = _as_scores('nonmember_scores', nonmember_scores)
    scores = np.concatenate([members, nonmembers])
    is_member = np.concatenate([np.ones(members.size), np.zeros(nonmembers.size)])
    order = np.argsort(-scores, kind='stable')
    scores, is_member = scores[order], is_member[order]
    last_of_each_value = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tpr = np.r_[0.0, np.cumsum(is_member)[last_of_each_value] / members.size]
    fpr = np.r_[0.0, np.cumsum(1.0 - is_member)[last_of_each_value] / nonmembers.size]
    return fpr, tpr


def attacker_advantage(member_scores, nonmember_scores) -> float:
    """max over thresholds of |TPR − FPR| (TF Privacy's `get_attacker_advantage`)."""
    fpr, tpr = roc_curve(member_scores, nonmember_scores)
    return float(np.max(np.abs(tpr - fpr)))


def score_attack(member_scores, nonmember_scores) -> AttackResult:
    """AUC and advantage of an attack that scores members higher."""
    members = _as_scores('member_scores', member_scores)
    nonmembers = _as_scores('nonmember_scores', nonmember_scores)
    return AttackResult(roc_auc(members, nonmembers), attacker_advantage(members, nonmembers),
                        members.size, nonmembers.size)


def threshold_attack(member_loss, nonmember_loss) -> AttackResult:
    """Loss-threshold attack: members are expected to have the lower loss."""
    return score_attack(-_as_scores('member_loss', member_loss),
                        -_as_scores('nonmember_loss', nonmember_loss))


def _check_logits(logits, labels) -> Tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels.size:
        raise ValueError(f'logits must have shape (n, num_classes) with n = len(labels) = '
                         f'{labels.size}, got {logits.shape}')
    if not np.issubdtype(labels.dtype, np.integer) or labels.size and (
            labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f'labels must be integers in [0, {logits.shape[1]}), got dtype '
                         f'{labels.dtype}')
    return logits, labels.astype(np.int64)


def per_example_loss(logits, labels) -> np.ndarray:
    """Cross-entropy −log softmax(logits)[label] of each example (float64)."""
    logits, labels = _check_logits(logits, labels)
    return -special.log_softmax(logits, axis=1)[np.arange(labels.size), labels]


def attack_features(logits, labels) -> np.ndarray:
    """Per-example (log loss, prediction entropy, logit margin) for the trained attack.

    The margin is logit[label] − max of the other logits (Carlini et al., "Membership
    Inference Attacks From First Principles", S&P 2022, use this scaled logit); the
    entropy is Song & Mittal's (USENIX Security 2021) uncertainty feature.
    """
    logits, labels = _check_logits(logits, labels)
    log_probs = special.log_softmax(logits, axis=1)
    rows = np.arange(labels.size)
    loss = -log_probs[rows, labels]
    entropy = -np.sum(np.exp(log_probs) * log_probs, axis=1)
    others = logits.copy()
    others[rows, labels] = -np.inf
    margin = logits[rows, labels] - others.max(axis=1)
    return np.column_stack([np.log(loss + 1e-30), entropy, margin])


def fit_logistic(features: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                 l2: float) -> np.ndarray:
    """Weighted L2-regularised logistic regression by Newton's method (IRLS).

    Minimises Σ wᵢ·logloss(σ(xᵢ·θ + b), yᵢ) + (l2/2)‖θ‖² (bias b unpenalised);
    returns (θ, b). The objective is strictly convex for l2 > 0, so Newton converges.
    """
    design = np.column_stack([features, np.ones(len(features))])
    penalty = np.full(design.shape[1], float(l2))
    penalty[-1] = 0.0
    params = np.zeros(design.shape[1])
    for _ in range(_NEWTON_STEPS):
        probs = special.expit(design @ params)
        gradient = design.T @ (weights * (probs - targets)) + penalty * params
        hessian = (design.T * (weights * probs * (1.0 - probs))) @ design + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-12 * np.eye(len(params)), gradient)
        params -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return params


def _stratified_folds(num_members: int, num_nonmembers: int, folds: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Fold index of each example; each class is spread evenly over the folds in random order."""
    return np.concatenate([rng.permutation(np.arange(n) % folds)
                           for n in (num_members, num_nonmembers)])


def trained_attack(member_features, nonmember_features, *, folds: int = 5, l2: float = 1.0,
                   seed: int = 0) -> AttackResult:
    """Logistic-regression attack scored out-of-fold by stratified `folds`-fold CV.

    Features are standardised with each training fold's statistics; classes are
    weighted n / (2 n_class) so unequal member / non-member counts do not bias it.
    """
    members = np.asarray(member_features, dtype=np.float64)
    nonmembers = np.asarray(nonmember_features, dtype=np.float64)
    members = members.reshape(len(members), -1)
    nonmembers = nonmembers.reshape(len(nonmembers), -1)
    if members.shape[1] != nonmembers.shape[1]:
        raise ValueError(f'member_features and nonmember_features must have the same number of '
                         f'columns, got {members.shape[1]} and {nonmembers.shape[1]}')
    folds = checks.integer('folds', folds, minimum=2, maximum=min(len(members), len(nonmembers)))
    l2 = checks.number('l2', l2, minimum=0.0, strict_minimum=True)
    x = np.concatenate([members, nonmembers])
    y = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    weights = np.where(y == 1, len(y) / (2.0 * len(members)), len(y) / (2.0 * len(nonmembers)))
    fold_of = _stratified_folds(len(members), len(nonmembers), folds, np.random.default_rng(seed))
    scores = np.empty(len(y))
    for fold in range(folds):
        train, held_out = fold_of != fold, fold_of == fold
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-12
        params = fit_logistic((x[train] - mean) / std, y[train], weights[train], l2)
        scores[held_out] = np.column_stack([(x[held_out] - mean) / std,
                                            np.ones(held_out.sum())]) @ params
    return score_attack(scores[y == 1], scores[y == 0])
