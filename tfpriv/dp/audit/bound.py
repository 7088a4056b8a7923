"""ε lower bounds from one training run (Steinke, Nasr, Jagielski, "Privacy auditing
with one (1) training run", NeurIPS 2023).

m canaries are each included in the training set independently with probability
1/2. After training, the auditor guesses membership for r of them (abstaining on the
rest) and is right v times. If training is ε-DP, the number of correct guesses W is
stochastically dominated by B ~ Binomial(r, e^ε / (1 + e^ε)) (the accuracy of ε-DP
randomized response), so the p-value of "training is ε-DP" is P[B ≥ v]. Under
(ε, δ)-DP their approximate-DP theorem adds a δ term:

    P[W ≥ v] ≤ P[B ≥ v] + 2 m δ · max_{1 ≤ i ≤ v} P[v − i ≤ B < v] / i.

The ε lower bound at confidence 1 − β is the largest ε whose p-value is < β: every
ε' ≤ that ε is then rejected (an ε'-DP algorithm is also ε-DP), so the bound holds
with probability ≥ 1 − β over the canary coins, whatever the training algorithm.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from tfpriv import checks

# Bisection steps on ε: the bracket [0, hi] shrinks to hi / 2^60, far below any reported digit.
_BISECTION_STEPS = 60


def _check_counts(num_correct: int, num_guesses: int, num_canaries: int) -> None:
    checks.integer('num_canaries', num_canaries, minimum=1)
    checks.integer('num_guesses', num_guesses, minimum=0, maximum=num_canaries)
    checks.integer('num_correct', num_correct, minimum=0, maximum=num_guesses)


def audit_p_value(num_correct: int, num_guesses: int, epsilon: float, *, num_canaries: int,
                  delta: float = 0.0) -> float:
    """Bound on P[≥ `num_correct` right of `num_guesses`] under (ε, δ)-DP (see the module)."""
    _check_counts(num_correct, num_guesses, num_canaries)
    epsilon = checks.number('epsilon', epsilon, minimum=0.0)
    delta = checks.number('delta', delta, minimum=0.0, maximum=1.0)
    p_correct = 1.0 / (1.0 + math.exp(-epsilon)) if epsilon < 700 else 1.0
    tail = float(stats.binom.sf(num_correct - 1, num_guesses, p_correct))
    if delta == 0.0 or num_correct == 0:
        return min(tail, 1.0)
    # P[v - i <= B < v] for i = 1..v is the running sum of pmf(v-1), pmf(v-2), ..., pmf(0).
    below = np.cumsum(stats.binom.pmf(np.arange(num_correct - 1, -1, -1), num_guesses, p_correct))
    alpha = float(np.max(below / np.arange(1, num_correct + 1)))
    return min(tail + 2.0 * num_canaries * delta * alpha, 1.0)


def epsilon_lower_bound(num_correct: int, num_guesses: int, *, num_canaries: int,
                        confidence: float = 0.95, delta: float = 0.0) -> float:
    """The largest ε rejected at level β = 1 − `confidence` by `audit_p_value` (0 if none).

    Bisection keeps p(lo) < β ≤ p(hi) and returns `lo`, so the result is always a
    rejected ε (valid even where the δ term makes the p-value non-monotone).
    """
    _check_counts(num_correct, num_guesses, num_canaries)
    confidence = checks.number('confidence', confidence, minimum=0.0, maximum=1.0,
                               strict_minimum=True)
    if confidence == 1.0:
        raise ValueError('confidence must be < 1 (a bound at confidence 1 is vacuous), got 1.0')
    beta = 1.0 - confidence

    def p_value(eps: float) -> float:
        return audit_p_value(num_correct, num_guesses, eps, num_canaries=num_canaries, delta=delta)

    if p_value(0.0) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(hi) < beta:
        lo, hi = hi, 2.0 * hi
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if p_value(mid) < beta else (lo, mid)
    return lo
