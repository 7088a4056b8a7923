"""Empirical privacy audit: metrics against independent references, the canary ε lower
bound against hand-computed binomial tails and a mechanism of known ε, and real runs.

Tolerances: an AUC estimated from n₁ members and n₀ non-members has standard error
≤ sqrt((n₁ + n₀ + 1) / (12 n₁ n₀)) at AUC = 0.5 (Hanley & McNeil 1982, the Mann-Whitney
null variance); "blind" attacks are asserted within 4 such SEs of 0.5 (two-sided).
"""

import itertools
import json
import math
import os
import pathlib
import subprocess
import textwrap

import numpy as np
import pytest
from scipy import optimize

from tfpriv.dp import audit
from tfpriv.dp.audit import mia
from tfpriv.dp.audit.canary import guess_counts

AUDIT_VENV_PYTHON = pathlib.Path('/tmp/audit-venv/bin/python')
TFP_0812 = pathlib.Path('/tmp/audit-venv/tfp0812/tensorflow_privacy')


def null_auc_se(n1: int, n0: int) -> float:
    return math.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0))


# ---------------------------------------------------------------- independent references

def binomial_tail(v: int, r: int, p: float) -> float:
    """P[Binomial(r, p) >= v] as an exact sum of math.comb terms."""
    return sum(math.comb(r, j) * p ** j * (1 - p) ** (r - j) for j in range(v, r + 1))


def reference_lower_bound(v: int, r: int, beta: float) -> float:
    """The ε at which P[Binomial(r, e^ε/(1+e^ε)) >= v] = β, by bisection on math.comb sums."""
    lo, hi = 0.0, 30.0
    for _ in range(100):
        mid = (lo + hi) / 2
        p = 1 / (1 + math.exp(-mid))
        lo, hi = (mid, hi) if binomial_tail(v, r, p) < beta else (lo, mid)
    return lo


def pairwise_auc(members, nonmembers) -> float:
    """Mann-Whitney over all pairs in pure Python: wins + ½ ties."""
    wins = sum((a > b) + 0.5 * (a == b) for a, b in itertools.product(members, nonmembers))
    return wins / (len(members) * len(nonmembers))


def brute_force_advantage(members, nonmembers) -> float:
    """max_t |TPR − FPR| of "member if score >= t", t over every observed value and +∞."""
    best = 0.0
    for t in list(members) + list(nonmembers) + [math.inf]:
        tpr = sum(s >= t for s in members) / len(members)
        fpr = sum(s >= t for s in nonmembers) / len(nonmembers)
        best = max(best, abs(tpr - fpr))
    return best


# ---------------------------------------------------------------- the ε lower bound

@pytest.mark.parametrize('r', [10, 100])
def test_all_correct_has_closed_form(r):
    """v = r: the tail is q^r, so the bound solves q = β^(1/r), ε = log(q / (1 − q))."""
    q = 0.05 ** (1 / r)
    expected = math.log(q / (1 - q))
    assert audit.epsilon_lower_bound(r, r, num_canaries=1000) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize('v,r,confidence', [(18, 20, 0.95), (70, 100, 0.99), (41, 60, 0.9)])
def test_bound_matches_hand_computed_binomial_tail(v, r, confidence):
    eps = audit.epsilon_lower_bound(v, r, num_canaries=200, confidence=confidence)
    assert eps == pytest.approx(reference_lower_bound(v, r, 1 - confidence), abs=1e-8)
    # The defining property, both sides: rejected at eps, not rejected just above.
    tail = lambda e: binomial_tail(v, r, 1 / (1 + math.exp(-e)))  # noqa: E731
    assert tail(eps) < 1 - confidence <= tail(eps + 1e-6)


def test_delta_term_matches_hand_computation():
    """(ε, δ): tail + 2mδ · max_i P[v − i ≤ B < v] / i, summed by hand."""
    m, r, v, eps, delta = 50, 12, 10, 1.0, 1e-3
    p = 1 / (1 + math.exp(-eps))
    pmf = [math.comb(r, j) * p ** j * (1 - p) ** (r - j) for j in range(r + 1)]
    alpha = max(sum(pmf[v - i:v]) / i for i in range(1, v + 1))
    expected = binomial_tail(v, r, p) + 2 * m * delta * alpha
    assert audit.audit_p_value(v, r, eps, num_canaries=m, delta=delta) == pytest.approx(expected,
                                                                                         rel=1e-12)
    assert audit.audit_p_value(v, r, eps, num_canaries=m) == pytest.approx(binomial_tail(v, r, p),
                                                                           rel=1e-12)


def test_p_value_edges_against_hand_computation():
    """ε ≥ 700: each guess is right with probability 1 (float64), so the tail is 1 for any
    count; no correct guess: 1, with or without δ; a large δ term: capped at 1."""
    assert audit.audit_p_value(7, 10, 1000.0, num_canaries=10) == 1.0
    assert audit.audit_p_value(10, 10, 1000.0, num_canaries=10) == 1.0
    assert audit.audit_p_value(0, 10, 1.0, num_canaries=10, delta=0.01) == 1.0
    assert audit.audit_p_value(0, 0, 1.0, num_canaries=10) == 1.0
    p = 1 / (1 + math.exp(-0.5))
    # The δ term alone exceeds 1: 2 m δ α >= 2 m δ P[B = 7] (the i = 1 term of α).
    assert 2 * 10 * 0.5 * math.comb(10, 7) * p ** 7 * (1 - p) ** 3 > 1
    assert audit.audit_p_value(8, 10, 0.5, num_canaries=10, delta=0.5) == 1.0


@pytest.mark.parametrize('call,message', [
    (lambda: audit.audit_p_value(5, 10, -0.1, num_canaries=20), '^epsilon must be >= 0'),
    (lambda: audit.audit_p_value(5, 10, 1.0, num_canaries=20, delta=1.5), '^delta must be <= 1'),
    (lambda: audit.audit_p_value(5, 10, 1.0, num_canaries=0), '^num_canaries must be >= 1'),
    (lambda: audit.audit_p_value(5, 21, 1.0, num_canaries=20), '^num_guesses must be <= 20'),
    (lambda: audit.audit_p_value(-1, 10, 1.0, num_canaries=20), '^num_correct must be >= 0'),
    (lambda: audit.audit_p_value(11, 10, 1.0, num_canaries=20), '^num_correct must be <= 10'),
    (lambda: audit.audit_p_value(5, -1, 1.0, num_canaries=20), '^num_guesses must be >= 0'),
    (lambda: audit.epsilon_lower_bound(5, 10, num_canaries=20, confidence=0.0), '^confidence must be > 0'),
    (lambda: audit.epsilon_lower_bound(5, 10, num_canaries=20, confidence=1.5), '^confidence must be <= 1'),
    (lambda: audit.epsilon_lower_bound(5, 10, num_canaries=20, confidence=1.0),
     r'^confidence must be < 1 \(a bound at confidence 1 is vacuous\), got 1.0$'),
])
def test_bound_arguments_are_named_with_their_limits(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bound_monotone():
    bound = audit.epsilon_lower_bound
    by_correct = [bound(v, 100, num_canaries=500) for v in range(50, 101, 5)]
    assert by_correct[0] == 0.0 and all(a < b for a, b in zip(by_correct[1:], by_correct[2:]))
    by_confidence = [bound(90, 100, num_canaries=500, confidence=c) for c in (0.5, 0.9, 0.99, 0.999)]
    assert all(a > b for a, b in zip(by_confidence, by_confidence[1:]))
    by_delta = [bound(90, 100, num_canaries=500, delta=d) for d in (0.0, 1e-5, 1e-3, 1e-2)]
    assert all(a > b for a, b in zip(by_delta, by_delta[1:]))
    # Half right is what a coin gets: no evidence of leakage at all.
    assert bound(50, 100, num_canaries=500) == 0.0 == bound(0, 0, num_canaries=10)


def randomized_response_audit(epsilon: float, m: int, seed: int) -> audit.CanaryAudit:
    """Canary audit of ε-DP randomized response on each canary's inclusion bit."""
    rng = np.random.default_rng(seed)
    included = rng.random(m) < 0.5
    truthful = rng.random(m) < math.exp(epsilon) / (1 + math.exp(epsilon))
    reported = np.where(truthful, included, ~included)
    return audit.canary_audit(reported.astype(float), included)


def test_canary_audit_is_sound_and_tight_on_a_mechanism_of_known_epsilon():
    """RR with ε = 2 on m = 20,000 canaries: guessing all gives v ≈ q·m, q = e²/(1+e²) = 0.881.

    Sound: bound ≤ 2 (fails with probability ≤ β = 5% over the seed, fixed here).
    Tight: the binomial std of v/m is sqrt(q(1−q)/m) = 0.0023; at β/4 the bound sits
    ~2.5 std below q, q_lb ≈ 0.875, ε_lb ≈ 1.95; asserting ≥ 1.85 leaves 2 std more.
    """
    result = randomized_response_audit(2.0, 20000, seed=1)
    assert 1.85 <= result.epsilon_lower <= 2.0
    assert result.num_guesses == 20000


def test_guess_counts_by_hand():
    """k = max(1, floor(f m)) per side, capped at floor(m / 2), distinct and sorted."""
    assert guess_counts(40) == (2, 4, 10, 20)
    assert guess_counts(1000) == (50, 100, 250, 500)
    assert guess_counts(3) == (1,)
    assert guess_counts(10, (0.5, 0.01)) == (1, 5)
    for bad in (0.0, 0.6):
        with pytest.raises(ValueError, match='^fractions must be'):
            guess_counts(10, (0.1, bad))


def test_canary_audit_takes_the_best_bonferroni_corrected_guess_set():
    """m = 40 canaries ranked by score, the top 20 included except ranks 3 and 37 swapped in:
    for each k of (2, 4, 10, 20) the 2k guesses (top k in, bottom k out) are right
    2k, 2k - 2, 2k - 2 and 2k - 2 times (counted by hand); each bound is taken at
    confidence 1 - 0.05 / 4 (a union bound over the 4 guess sets), and the best is kept."""
    included = np.arange(40) < 20
    included[3], included[37] = False, True
    scores = np.arange(40, 0, -1.0)  # rank i has the i-th highest score
    right = {2: 4, 4: 6, 10: 18, 20: 38}
    bounds = {k: audit.epsilon_lower_bound(v, 2 * k, num_canaries=40, confidence=1 - 0.05 / 4)
              for k, v in right.items()}
    best = max(bounds, key=bounds.get)
    result = audit.canary_audit(scores, included)
    assert result == audit.CanaryAudit(bounds[best], 40, 2 * best, right[best], 0.95, 0.0)
    assert result.epsilon_lower < audit.epsilon_lower_bound(right[best], 2 * best, num_canaries=40)


def test_canary_audit_reads_its_inputs_and_options_as_documented():
    """Scores and mask of any shape are flattened, any numeric dtype read as float64 (uint8
    scores would wrap when negated) and 0/1 as booleans; `fractions` and `delta` reach the
    bound; ties keep the input order; equal bounds keep the smallest guess set; 2 canaries
    are the minimum; bad input is refused with the argument named."""
    included = np.arange(40) < 20
    included[3], included[37] = False, True
    scores = np.arange(40, 0, -1.0)
    base = audit.canary_audit(scores, included)
    assert audit.canary_audit(scores.reshape(4, 10), included.reshape(4, 10)) == base
    assert audit.canary_audit((scores - 1).astype(np.uint8), included.astype(int)) == base
    half = audit.canary_audit(scores, included, fractions=(0.5,))
    assert half == audit.CanaryAudit(audit.epsilon_lower_bound(38, 40, num_canaries=40),
                                     40, 40, 38, 0.95, 0.0)
    with_delta = audit.canary_audit(scores, included, fractions=(0.5,), delta=1e-3)
    assert with_delta.epsilon_lower == audit.epsilon_lower_bound(
        38, 40, num_canaries=40, delta=1e-3) < half.epsilon_lower
    assert audit.canary_audit(np.zeros(40), included, fractions=(0.05,)).num_correct == 4
    coin = audit.canary_audit(np.zeros(40), np.arange(40) % 2 == 0)  # every bound is 0
    assert (coin.epsilon_lower, coin.num_guesses) == (0.0, 4)
    assert audit.canary_audit([1.0, 0.0], [True, False]).num_guesses == 2
    for bad_scores, bad_mask in (([1.0], [True]), ([1.0, np.nan], [True, False]),
                                 ([1.0, 2.0], [True, False, True])):
        with pytest.raises(ValueError, match='^scores must be'):
            audit.canary_audit(bad_scores, bad_mask)
    for confidence, message in ((0.0, '^confidence must be > 0'),
                               (1.5, r'^confidence must be <= 1\.0, got 1\.5$')):
        with pytest.raises(ValueError, match=message):
            audit.canary_audit(scores, included, confidence=confidence)


def test_canaries_get_a_uniformly_wrong_label_and_a_fair_inclusion_coin():
    """n = 20,000 canaries of class 0 among 10 classes: every label is wrong, each of the 9
    others has frequency 1/9 within 4 binomial std (0.0089), and the inclusion rate is
    1/2 within 4 std (0.0141), two-sided."""
    x = np.zeros((20000, 3))
    images, labels, included = audit.make_canaries(x, np.zeros(20000, int), 10,
                                                   np.random.default_rng(5))
    assert images is x and labels.min() >= 1 and labels.max() <= 9
    freq = np.bincount(labels, minlength=10)[1:] / 20000
    assert np.all(np.abs(freq - 1 / 9) <= 4 * math.sqrt((1 / 9) * (8 / 9) / 20000))
    assert included.dtype == bool and abs(included.mean() - 0.5) <= 4 * math.sqrt(0.25 / 20000)
    with pytest.raises(ValueError, match='^num_classes must be >= 2'):
        audit.make_canaries(x[:2], [0, 1], 1, np.random.default_rng(0))


def test_canary_audit_without_noise_gives_a_large_bound():
    """No randomisation (the truth is reported, ε = ∞).

    Guessing the top and bottom m/4 is then all right (r = 1000); guessing all m is
    right except for the |#included − m/2| surplus. So the bound lies between the
    all-correct bounds for r = 1000 and r = 2000 at level β/4.
    """
    result = randomized_response_audit(50.0, 2000, seed=2)

    def all_correct(r):
        q = (0.05 / 4) ** (1 / r)
        return math.log(q / (1 - q))

    assert all_correct(1000) - 1e-9 <= result.epsilon_lower <= all_correct(2000)
    assert all_correct(1000) > 4.3


def test_canary_audit_with_uninformative_scores_gives_zero():
    rng = np.random.default_rng(3)
    result = audit.canary_audit(rng.normal(size=1000), rng.random(1000) < 0.5)
    assert result.epsilon_lower == 0.0


# ---------------------------------------------------------------- MIA metrics

def test_auc_and_advantage_match_pairwise_references():
    rng = np.random.default_rng(4)
    # Rounded to force ties between and within the groups.
    members = np.round(rng.normal(0.7, 1.0, 60), 1)
    nonmembers = np.round(rng.normal(0.0, 1.0, 45), 1)
    assert audit.roc_auc(members, nonmembers) == pytest.approx(pairwise_auc(members, nonmembers),
                                                               abs=1e-12)
    assert audit.attacker_advantage(members, nonmembers) == pytest.approx(
        brute_force_advantage(members, nonmembers), abs=1e-12)
    result = audit.threshold_attack(-members, -nonmembers)  # losses: members lower
    assert result.auc == pytest.approx(pairwise_auc(members, nonmembers), abs=1e-12)
    assert (result.num_members, result.num_nonmembers) == (60, 45)


def test_roc_curve_endpoints_and_monotone():
    fpr, tpr = audit.roc_curve([3.0, 2.0, 2.0], [2.0, 1.0])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 1, 1])


def test_blind_attack_is_near_one_half():
    rng = np.random.default_rng(5)
    members, nonmembers = rng.exponential(1.0, 2000), rng.exponential(1.0, 1500)
    result = audit.threshold_attack(members, nonmembers)
    assert abs(result.auc - 0.5) <= 4 * null_auc_se(2000, 1500)


def test_per_example_loss_and_features_match_formulas():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    labels = np.array([0, 1])
    expected = [-2.0 + math.log(sum(math.exp(z) for z in row)) if k == 0 else
                -0.0 + math.log(sum(math.exp(z) for z in row))
                for k, row in zip(labels, logits)]
    np.testing.assert_allclose(audit.per_example_loss(logits, labels), expected, rtol=1e-12)
    features = audit.attack_features(logits, labels)
    probs = [[math.exp(z) / sum(math.exp(w) for w in row) for z in row] for row in logits]
    entropy = [-sum(p * math.log(p) for p in row) for row in probs]
    np.testing.assert_allclose(features[:, 0], np.log(expected), rtol=1e-12)
    np.testing.assert_allclose(features[:, 1], entropy, rtol=1e-12)
    np.testing.assert_allclose(features[:, 2], [2.0 - 0.5, 0.0 - 3.0], rtol=1e-12)


def test_fit_logistic_minimises_its_objective():
    """Newton's answer equals a generic optimizer's on the same penalised log-likelihood."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 3))
    y = (x @ [1.5, -2.0, 0.0] + rng.logistic(size=300) > 0).astype(float)
    w = rng.uniform(0.5, 2.0, 300)

    def objective(params):
        z = x @ params[:3] + params[3]
        return np.sum(w * (np.logaddexp(0, z) - y * z)) + 0.5 * 2.0 * np.sum(params[:3] ** 2)

    reference = optimize.minimize(objective, np.zeros(4), method='BFGS', options={'gtol': 1e-10}).x
    np.testing.assert_allclose(mia.fit_logistic(x, y, w, l2=2.0), reference, atol=1e-5)


@pytest.mark.parametrize('metric,names', [
    (audit.roc_auc, ('member_scores', 'nonmember_scores')),
    (mia.roc_curve, ('member_scores', 'nonmember_scores')),
    (mia.score_attack, ('member_scores', 'nonmember_scores')),
    (audit.threshold_attack, ('member_loss', 'nonmember_loss'))])
def test_metrics_read_any_shape_and_name_the_bad_argument(metric, names):
    """Scores of any shape and numeric dtype are read as flat float64 (uint8 would wrap when
    negated); one value per side is enough; an empty or non-finite side is named, with the
    count of bad values."""
    members, nonmembers = np.array([[3, 0], [2, 5]], np.uint8), np.array([1, 4, 0], np.uint8)
    flat = metric(members.ravel().astype(float), nonmembers.astype(float))
    again = metric(members, nonmembers)
    if metric is mia.roc_curve:
        np.testing.assert_array_equal(np.stack(again), np.stack(flat))
    else:
        assert again == flat
    metric([1.0], [0.0])
    good = [1.0, 2.0]
    for position, name in enumerate(names):
        for bad, message in (([], f'^{name} must hold at least one value, got an empty array$'),
                             ([1.0, np.nan, np.inf], f'^{name} must be finite, got 2 NaN/inf values$')):
            args = [good, good]
            args[position] = bad
            with pytest.raises(ValueError, match=message):
                metric(*args)


def test_score_attack_reports_auc_advantage_and_counts():
    result = mia.score_attack([3.0, 2.0, 0.5], [1.0, 0.0])
    assert result == audit.AttackResult(audit.roc_auc([3.0, 2.0, 0.5], [1.0, 0.0]),
                                        audit.attacker_advantage([3.0, 2.0, 0.5], [1.0, 0.0]), 3, 2)
    assert (result.auc, result.advantage) == (5 / 6, 2 / 3)  # by hand: U = 5 of 6 pairs


def test_logits_must_be_n_by_classes_and_a_zero_loss_gives_a_finite_feature():
    with pytest.raises(ValueError, match=r'^logits must have shape \(n, num_classes\) with n = '
                                         r'len\(labels\) = 3, got \(3,\)$'):
        audit.per_example_loss(np.zeros(3), [0, 1, 0])
    with pytest.raises(ValueError, match=r'got \(2, 3\)$'):
        audit.per_example_loss(np.zeros((2, 3)), [0, 1, 0])
    features = audit.attack_features(np.array([[800.0, 0.0]]), np.array([[0]]))
    assert np.all(np.isfinite(features)) and features[0, 0] == pytest.approx(math.log(1e-30))


def test_trained_attack_defaults_and_limits():
    """folds = 5, l2 = 1, seed = 0 by default; 2 <= folds <= the smaller class; l2 > 0."""
    rng = np.random.default_rng(4)
    members, nonmembers = rng.normal(0.3, 1, size=(5, 2)), rng.normal(size=(7, 2))
    assert audit.trained_attack(members, nonmembers) == audit.trained_attack(
        members, nonmembers, folds=5, l2=1.0, seed=0)
    assert audit.trained_attack(members, nonmembers, folds=2).num_members == 5
    for kwargs, message in (({'folds': 1}, '^folds must be >= 2, got 1$'),
                            ({'folds': 6}, '^folds must be <= 5, got 6$'),
                            ({'l2': 0.0}, '^l2 must be > 0'), ({'l2': -1.0}, '^l2 must be > 0')):
        with pytest.raises(ValueError, match=message):
            audit.trained_attack(members, nonmembers, **kwargs)


def test_trained_attack_standardises_each_feature_with_its_training_fold():
    """Per-feature standardisation makes the attack invariant to any per-feature affine
    change of units (x -> a x + b, a > 0): the same AUC and advantage to rounding, with
    features on scales 1e-3 to 1e4."""
    rng = np.random.default_rng(6)
    members, nonmembers = rng.normal(1.0, 1, size=(40, 3)), rng.normal(size=(50, 3))
    scale, shift = np.array([1e-3, 1.0, 1e4]), np.array([5.0, -300.0, 7e5])
    plain = audit.trained_attack(members, nonmembers)
    moved = audit.trained_attack(members * scale + shift, nonmembers * scale + shift)
    assert moved.auc == pytest.approx(plain.auc, abs=1e-9)
    assert moved.advantage == pytest.approx(plain.advantage, abs=1e-9)
    assert plain.auc > 0.6  # the shifted mean is found


def test_trained_attack_scores_out_of_fold_so_pure_noise_gives_one_half():
    """40 noise features, 60 members and 60 non-members: a model scored on the examples it
    was fit to separates them perfectly (AUC 1.0 when tried), but out of fold the AUC is
    a null AUC, 0.5 within 4 std (std sqrt((n1 + n2 + 1) / (12 n1 n2)) = 0.053; Hanley
    and McNeil 1982), two-sided."""
    rng = np.random.default_rng(2)
    result = audit.trained_attack(rng.normal(size=(60, 40)), rng.normal(size=(60, 40)))
    assert abs(result.auc - 0.5) <= 4 * math.sqrt(121 / (12 * 60 * 60))


def test_trained_attack_finds_signal_a_threshold_on_one_feature_misses():
    """Members differ only in feature 2: the threshold on feature 1 is blind, the trained attack is not."""
    rng = np.random.default_rng(7)
    members = np.column_stack([rng.normal(size=800), rng.normal(1.5, 1.0, 800)])
    nonmembers = np.column_stack([rng.normal(size=600), rng.normal(0.0, 1.0, 600)])
    trained = audit.trained_attack(members, nonmembers, seed=0)
    blind = audit.threshold_attack(-members[:, 0], -nonmembers[:, 0])
    # Bayes AUC of a 1.5-std mean shift is Φ(1.5 / √2) = 0.856.
    assert abs(trained.auc - 0.856) <= 4 * null_auc_se(800, 600)
    assert abs(blind.auc - 0.5) <= 4 * null_auc_se(800, 600)
    no_signal = audit.trained_attack(rng.normal(size=(800, 2)), rng.normal(size=(600, 2)), seed=0)
    assert abs(no_signal.auc - 0.5) <= 4 * null_auc_se(800, 600)


@pytest.mark.parametrize('call,message', [
    (lambda: audit.epsilon_lower_bound(11, 10, num_canaries=20), 'num_correct'),
    (lambda: audit.epsilon_lower_bound(5, 30, num_canaries=20), 'num_guesses'),
    (lambda: audit.epsilon_lower_bound(5, 10, num_canaries=20, confidence=1.0), 'confidence'),
    (lambda: audit.epsilon_lower_bound(5, 10, num_canaries=20, delta=-0.1), 'delta'),
    (lambda: audit.canary_audit([1.0, 2.0, 3.0], [True, False]), 'scores'),
    (lambda: audit.roc_auc([], [1.0]), 'member_scores'),
    (lambda: audit.threshold_attack([np.nan], [1.0]), 'member_loss'),
    (lambda: audit.per_example_loss(np.zeros((2, 3)), [0, 3]), 'labels'),
    (lambda: audit.trained_attack(np.zeros((5, 2)), np.zeros((5, 3))), 'columns'),
])
def test_bad_input_names_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# ---------------------------------------------------------------- cross-check with TF Privacy 0.8.12

REFERENCE_SCRIPT = textwrap.dedent('''
    import json, sys, types
    import numpy as np
    root = sys.argv[1]
    for name, path in (('tensorflow_privacy', root), ('tensorflow_privacy.privacy', root + '/privacy')):
        module = types.ModuleType(name)  # skip the package __init__, which imports TensorFlow
        module.__path__ = [path]
        sys.modules[name] = module
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        data_structures as ds, membership_inference_attack as mia)
    arrays = np.load(sys.argv[2])
    np.random.seed(0)
    data = ds.AttackInputData(logits_train=arrays['logits_train'], logits_test=arrays['logits_test'],
                              labels_train=arrays['labels_train'], labels_test=arrays['labels_test'])
    results = mia.run_attacks(data, ds.SlicingSpec(entire_dataset=True), attack_types=[
        ds.AttackType.THRESHOLD_ATTACK, ds.AttackType.LOGISTIC_REGRESSION])
    print(json.dumps({r.attack_type.name: [r.get_auc(), r.get_attacker_advantage()]
                      for r in results.single_attack_results}))
''')


@pytest.mark.skipif(not (AUDIT_VENV_PYTHON.exists() and TFP_0812.is_dir()),
                    reason='needs /tmp/audit-venv with scikit-learn and the TF Privacy 0.8.12 sources')
def test_matches_tensorflow_privacy_0812(tmp_path):
    """Same logits through TF Privacy 0.8.12's run_attacks (sklearn) and through tfpriv."""
    rng = np.random.default_rng(8)
    labels_train, labels_test = rng.integers(0, 10, 1000), rng.integers(0, 10, 800)
    logits_train = rng.normal(size=(1000, 10)) + 2.0 * np.eye(10)[labels_train]
    logits_test = rng.normal(size=(800, 10)) + 1.2 * np.eye(10)[labels_test]
    np.savez(tmp_path / 'in.npz', logits_train=logits_train, logits_test=logits_test,
             labels_train=labels_train, labels_test=labels_test)
    script = tmp_path / 'reference.py'
    script.write_text(REFERENCE_SCRIPT)
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    out = subprocess.run([str(AUDIT_VENV_PYTHON), str(script), str(TFP_0812), str(tmp_path / 'in.npz')],
                         capture_output=True, text=True, check=True, env=env).stdout
    reference = json.loads(out.strip().splitlines()[-1])
    ours = audit.threshold_attack(audit.per_example_loss(logits_train, labels_train),
                                  audit.per_example_loss(logits_test, labels_test))
    # Deterministic: identical up to float rounding of the loss.
    assert ours.auc == pytest.approx(reference['THRESHOLD_ATTACK'][0], abs=1e-9)
    assert ours.advantage == pytest.approx(reference['THRESHOLD_ATTACK'][1], abs=1e-9)
    # TF Privacy's features: logits and loss. Different folds (2 vs 5) and regularisation
    # (grid-searched C vs fixed): equal within 4 SEs of an AUC on these sizes.
    features = [np.column_stack([logits, audit.per_example_loss(logits, labels)])
                for logits, labels in ((logits_train, labels_train), (logits_test, labels_test))]
    trained = audit.trained_attack(*features, seed=0)
    assert abs(trained.auc - reference['LOGISTIC_REGRESSION'][0]) <= 4 * null_auc_se(1000, 800)
    assert trained.auc > 0.6  # the signal is there, so the comparison is not between two blind attacks


# ---------------------------------------------------------------- real training runs

def audited_run(mnist, noise_multiplier: float):
    """MLP, DP-SGD (Adam, C = 1, batch 50, 30 epochs, δ = 1e-5) on 500 MNIST images + ~100 of 200 canaries."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tfpriv.dp import make_private  # pylint: disable=import-outside-toplevel
    from tfpriv.model import build_model  # pylint: disable=import-outside-toplevel
    runs = []

    def train_fn(x, y):
        tf.keras.utils.set_random_seed(0)
        model = build_model('mlp', mnist.input_shape, 10, dropout=0.0)
        private = make_private(model, num_examples=len(x), batch_size=50, l2_norm_clip=1.0,
                               noise_multiplier=noise_multiplier, optimizer='adam',
                               learning_rate=0.003, delta=1e-5)
        private.model.compile(optimizer=private.optimizer, loss=private.loss)
        private.model.fit(private.dataset(x, y, seed=0), epochs=30, verbose=0)
        runs.append(private)
        return private.model

    report = audit.audit_training(train_fn, mnist.subset(None, 2000), num_train=500,
                                  num_canaries=200, seed=0, delta=1e-5)
    return report, runs[0]


@pytest.mark.slow
def test_no_noise_run_leaks_measurably(mnist):
    """σ = 0: the model memorises; the MIA and the canary audit must both see it.

    Audited at δ = 1e-5 (2mδ = 0.004): all-correct guesses on the top/bottom 50 of the
    200 canaries give ε ≥ 3.09 at β/4; > 1.5 leaves room for a few misses. MIA AUC > 0.6 as the issue asks, well
    outside 0.5 ± 4 SE = 0.5 ± 0.073 for 500 vs 500.
    """
    report, private = audited_run(mnist, 0.0)
    assert private.epsilon(30) == math.inf
    assert report.num_train_examples == 500 + report.num_canaries_included
    assert report.mia_auc > 0.6 and report.trained_attack_auc > 0.6
    assert report.canary_eps_lower > 1.5
    assert report.train_accuracy > 0.95


@pytest.mark.slow
def test_dp_run_lower_bound_below_accountant(mnist):
    """σ = 2.5 (ε = 3.08 RDP, 2.82 PLD at δ = 1e-5): the measured lower bound never exceeds the proven
    upper bound, and the MIA sees (almost) nothing: AUC within 4 SE (0.073) of 0.5."""
    report, private = audited_run(mnist, 2.5)
    upper = min(private.epsilon(30), private.epsilon(30, 'pld'))
    assert 1.0 < upper <= 3.2
    assert report.canary_eps_lower <= upper
    assert abs(report.mia_auc - 0.5) <= 4 * null_auc_se(500, 500)
    assert report.delta == private.delta == 1e-5


# ---------------------------------------------------------------- audit_training, without TensorFlow

class LookupModel:
    """A perfect memoriser: logit 10 on the label it was trained with for an image it saw, else 0."""

    def __init__(self, x, y, memorise=True):
        self.table = {row.tobytes(): label for row, label in zip(x, y)} if memorise else {}

    def predict(self, x, batch_size=None, verbose=0):
        del batch_size, verbose
        logits = np.zeros((len(x), 10))
        for i, row in enumerate(x):
            if row.tobytes() in self.table:
                logits[i, self.table[row.tobytes()]] = 10.0
        return logits


def tiny_dataset():
    from tfpriv.data import Dataset  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(9)
    return Dataset('tiny', rng.random((1200, 4, 4, 1)).astype(np.float32), rng.integers(0, 10, 1200),
                   rng.random((50, 4, 4, 1)).astype(np.float32), rng.integers(0, 10, 50), 10)


def test_audit_training_detects_a_memoriser_and_clears_a_model_that_ignores_its_data():
    seen = []

    def memorise(x, y):
        seen.append(len(x))
        return LookupModel(x, y)

    leaky = audit.audit_training(memorise, tiny_dataset(), num_train=300, num_canaries=400, seed=1)
    assert seen == [leaky.num_train_examples] == [300 + leaky.num_canaries_included]
    assert (leaky.mia_auc, leaky.mia_advantage, leaky.train_accuracy) == (1.0, 1.0, 1.0)
    assert leaky.trained_attack_auc == 1.0
    assert leaky.num_nonmembers == 300 and leaky.num_canaries == 400
    # Every canary guess is right; the best k is the largest all-correct one.
    assert leaky.canary_correct == leaky.canary_guesses
    k = leaky.canary_guesses
    q = (0.05 / 4) ** (1 / k)
    assert leaky.canary_eps_lower == pytest.approx(math.log(q / (1 - q)), abs=1e-6)
    blind = audit.audit_training(lambda x, y: LookupModel(x, y, memorise=False), tiny_dataset(),
                                 num_train=300, num_canaries=400, seed=1)
    assert (blind.mia_auc, blind.mia_advantage, blind.canary_eps_lower) == (0.5, 0.0, 0.0)
    assert blind.summary().startswith('MIA AUC 0.500 (advantage 0.000)')


@pytest.mark.parametrize('kwargs,error,message', [
    ({'train_fn': lambda x, y: None}, TypeError, 'train_fn must return'),
    ({'train_fn': 'not callable'}, TypeError, 'train_fn must be callable'),
    ({'num_canaries': 1199}, ValueError, 'num_canaries'),
    ({'num_train': 1100}, ValueError, 'num_train'),
    ({'num_nonmembers': 5000}, ValueError, 'num_nonmembers'),
    ({'confidence': 1.5}, ValueError, 'confidence'),
    ({'seed': -1}, ValueError, 'seed'),
])
def test_audit_training_bad_input(kwargs, error, message):
    arguments = {'train_fn': LookupModel, 'num_train': 300, 'num_canaries': 100, 'seed': 0}
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        audit.audit_training(arguments.pop('train_fn'), tiny_dataset(), **arguments)
