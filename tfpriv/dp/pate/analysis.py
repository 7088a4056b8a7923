"""PATE privacy analysis: data-independent and data-dependent ε.

Data-independent ε: the aggregator's DpEvents (`dp_events`) composed by
dp_accounting's RDP accountant (`tfpriv.dp.accounting.epsilon_of`).

Data-dependent ε: when the teachers agree, the noisy answer equals the
plurality class j* with probability close to 1, and a neighbouring dataset
(one vote moved) hardly changes the output distribution. Each answered query
gets an RDP curve that depends on q, an upper bound on Pr[answer ≠ j*]:

- LNMax (Papernot et al. 2017, Thm. 3): q ≤ Σ_{j≠j*} (2 + γΔ_j) / (4 e^{γΔ_j}),
  Δ_j = n_{j*} - n_j; moments bound (Thm. 2), for q < (e^{2γ} - 1)/(e^{4γ} - 1):
  α(l) ≤ log((1 - q)((1 - q)/(1 - e^{2γ}q))^l + q e^{2γl}), else the
  data-independent α(l) ≤ min(2γ^2 l(l + 1), 2γl). A log-moment α(l) is
  l times the RDP of order l + 1.
- GNMax (Papernot et al. 2018, Prop. 7, Thm. 6, Prop. 10): q ≤ Σ_{j≠j*}
  ½ erfc(Δ_j / (2σ)); with μ2 = σ√(log 1/q), μ1 = μ2 + 1, ε_i = μ_i/σ^2 and the
  theorem's conditions met, RDP(λ) ≤ log((1 - q)A^{λ-1} + qB^{λ-1}) / (λ - 1),
  A = (1 - q) / (1 - (qe^{ε2})^{(μ2-1)/μ2}), B = e^{ε1} / q^{1/(μ1-1)}; always
  capped by the data-independent λ/σ^2.
- The Confident-GNMax threshold check (2018, Sec. 4.2) is the same bound with
  σ → √2σ1 (sensitivity 1 instead of √2) and q = min(p, 1 - p), p the
  probability that the check passes.

The per-query curves are summed (RDP composition) and turned into (ε, δ) by
dp_accounting's `compute_epsilon`, the same conversion its accountant uses.

Publication caveat: the data-dependent ε is a function of the private vote
counts, so the number itself leaks information and is NOT differentially
private. It may be used to tune the system, but publishing it requires
releasing a noisy version calibrated to its smooth sensitivity (Nissim,
Raskhodnikova, Smith 2007; Papernot et al. 2018, Sec. 4.3 and App. C):
`tfpriv.dp.pate.smooth_sensitivity.release_epsilon`. The data-independent ε
may be published as is.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence, Tuple

import numpy as np
from dp_accounting.rdp import rdp_privacy_accountant
from scipy import special, stats

from tfpriv.dp.accounting import epsilon_of
from tfpriv.dp.pate.aggregation import UNANSWERED, ConfidentGNMax, GNMax, LNMax, vote_counts

ORDERS = np.array([1.5, 1.75] + list(range(2, 257)) + [320, 384, 448, 512, 768, 1024], dtype=np.float64)


def _gaps(counts: np.ndarray) -> np.ndarray:
    """Δ_j = n_{j*} - n_j for j ≠ j* (j* = first argmax), shape (num_classes - 1,)."""
    counts = np.asarray(counts, dtype=np.float64)
    top = int(np.argmax(counts))
    return counts[top] - np.delete(counts, top)


def q_lnmax(counts: np.ndarray, noise_eps: float) -> float:
    """Papernot 2017, Thm. 3: q ≤ Σ_{j≠j*} (2 + γΔ_j)/(4 exp(γΔ_j)), capped at 1 - 1/m."""
    g = noise_eps * _gaps(counts)
    return float(min(np.sum((2.0 + g) / (4.0 * np.exp(g))), 1.0 - 1.0 / len(counts)))


def rdp_lnmax(q: float, noise_eps: float, orders: Sequence[float] = ORDERS) -> np.ndarray:
    """RDP curve of one LNMax answer from Papernot 2017, Thm. 2 (moments α(l), λ = l + 1)."""
    orders = np.asarray(orders, dtype=np.float64)
    eps0 = 2.0 * noise_eps
    lam = orders - 1.0
    independent = np.minimum(0.5 * eps0 ** 2 * lam * (lam + 1.0), eps0 * lam)
    if q < (math.exp(eps0) - 1.0) / (math.exp(2.0 * eps0) - 1.0):
        log_terms = np.logaddexp(math.log1p(-q) + lam * (math.log1p(-q) - math.log1p(-math.exp(eps0) * q)),
                                 (math.log(q) if q > 0 else -np.inf) + eps0 * lam)
        independent = np.minimum(independent, log_terms)
    return independent / lam


def log_q_gnmax(counts: np.ndarray, sigma: float) -> float:
    """Papernot 2018, Prop. 7: log of Σ_{j≠j*} ½ erfc(Δ_j/(2σ)), capped at log(1 - 1/m)."""
    log_tail = stats.norm.logsf(_gaps(counts) / (math.sqrt(2.0) * sigma))  # ½erfc(x/2σ) = Φ̄(x/(√2σ))
    return float(min(special.logsumexp(log_tail), math.log1p(-1.0 / len(counts))))


def rdp_gnmax(log_q: float, sigma: float, orders: Sequence[float] = ORDERS) -> np.ndarray:
    """Papernot 2018, Thm. 6 with Prop. 10's μ1, μ2; min with the data-independent λ/σ^2."""
    orders = np.asarray(orders, dtype=np.float64)
    independent = orders / sigma ** 2
    if log_q == -np.inf:
        return np.zeros_like(orders)
    mu2 = sigma * math.sqrt(-log_q)
    mu1 = mu2 + 1.0
    eps1, eps2 = mu1 / sigma ** 2, mu2 / sigma ** 2
    if mu2 <= 1.0 or -log_q <= eps2:
        return independent
    # Thm. 6 requires q ≤ e^{(μ2-1)ε2} / (μ1/(μ1-1) · μ2/(μ2-1))^{μ2}.
    if log_q > (mu2 - 1.0) * eps2 - mu2 * (math.log(mu1 / (mu1 - 1.0)) + math.log(mu2 / (mu2 - 1.0))):
        return independent
    log_1mq = math.log(-math.expm1(log_q))
    log_a = log_1mq - math.log(-math.expm1((log_q + eps2) * (mu2 - 1.0) / mu2))
    log_b = eps1 - log_q / (mu1 - 1.0)
    bound = np.logaddexp(log_1mq + (orders - 1.0) * log_a, log_q + (orders - 1.0) * log_b) / (orders - 1.0)
    return np.where(orders < mu1, np.minimum(independent, bound), independent)


def rdp_threshold(max_count: float, threshold: float, sigma_threshold: float,
                  orders: Sequence[float] = ORDERS) -> np.ndarray:
    """Data-dependent RDP of the check max_j n_j + N(0, σ1^2) ≥ T (Papernot 2018, Sec. 4.2)."""
    log_p = float(stats.norm.logsf((threshold - max_count) / sigma_threshold))
    log_not_p = float(stats.norm.logcdf((threshold - max_count) / sigma_threshold))
    return rdp_gnmax(min(log_p, log_not_p), math.sqrt(2.0) * sigma_threshold, orders)


@dataclasses.dataclass(frozen=True)
class PrivacyReport:
    """ε at `delta` for the released answers, both ways (see the module docstring)."""

    data_independent_eps: float
    data_dependent_eps: float
    data_dependent_order: float
    num_queries: int
    num_answered: int
    delta: float


def data_dependent_rdp(aggregator, counts: np.ndarray, labels: np.ndarray,
                       orders: Sequence[float] = ORDERS) -> np.ndarray:
    """Summed per-query data-dependent RDP curve of the answers `labels` to the queries `counts`."""
    counts, labels = np.asarray(counts), np.asarray(labels)
    if len(counts) != len(labels):
        raise ValueError(f'counts and labels differ in length: {len(counts)} vs {len(labels)}')
    answered = labels != UNANSWERED
    total = np.zeros(len(orders))
    for row, is_answered in zip(counts, answered):
        if isinstance(aggregator, ConfidentGNMax):
            total += rdp_threshold(row.max(), aggregator.threshold, aggregator.sigma_threshold, orders)
        if not is_answered:
            continue
        if isinstance(aggregator, LNMax):
            total += rdp_lnmax(q_lnmax(row, aggregator.noise_eps), aggregator.noise_eps, orders)
        elif isinstance(aggregator, (GNMax, ConfidentGNMax)):
            total += rdp_gnmax(log_q_gnmax(row, aggregator.sigma), aggregator.sigma, orders)
        else:
            raise TypeError(f'unknown aggregator {type(aggregator).__name__}')
    return total


def analyze(aggregator, counts: np.ndarray, labels: np.ndarray, delta: float) -> PrivacyReport:
    """Data-independent (dp_accounting RDP) and data-dependent ε(δ) of the answers `labels`."""
    return analyze_stages([(aggregator, counts, labels)], delta)


def analyze_stages(stages: Sequence[Tuple[object, np.ndarray, np.ndarray]], delta: float) -> PrivacyReport:
    """ε(δ) of several rounds of answers, each `(aggregator, counts, labels)`, released one after another.

    Adaptive composition (Mironov 2017, Prop. 1): the data-dependent RDP curves
    of all rounds are summed; the data-independent ε composes every round's
    DpEvents in dp_accounting's RDP accountant.
    """
    if not 0.0 < delta < 1.0:
        raise ValueError(f'delta must be in (0, 1), got {delta}')
    if not stages:
        raise ValueError('need at least one round of answers')
    rdp = sum(data_dependent_rdp(agg, counts, labels) for agg, counts, labels in stages)
    dependent, order = rdp_privacy_accountant.compute_epsilon(ORDERS, rdp, delta)
    events = [event for agg, _, labels in stages for event in agg.dp_events(np.asarray(labels))]
    labels = np.concatenate([np.asarray(labels).ravel() for _, _, labels in stages])
    return PrivacyReport(data_independent_eps=epsilon_of(events, delta, 'rdp'),
                         data_dependent_eps=float(dependent), data_dependent_order=float(order),
                         num_queries=int(labels.size),
                         num_answered=int(np.count_nonzero(labels != UNANSWERED)), delta=delta)


def perform_analysis(teacher_preds: np.ndarray, indices: Sequence[int], noise_eps: float,
                     delta: float, num_classes: int = 10) -> Tuple[float, float]:
    """(data-dependent ε, data-independent ε) of LNMax(γ = noise_eps) answers to queries `indices`.

    `teacher_preds` has shape (num_teachers, num_queries); `indices` are the
    columns the student asked (all answered, as LNMax always answers).
    """
    indices = np.asarray(indices, dtype=np.int64)
    counts = vote_counts(np.asarray(teacher_preds)[:, indices], num_classes)
    report = analyze(LNMax(noise_eps), counts, np.zeros(len(indices), dtype=np.int64), delta)
    return report.data_dependent_eps, report.data_independent_eps
