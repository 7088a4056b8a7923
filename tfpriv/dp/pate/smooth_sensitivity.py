"""Private release of PATE's data-dependent RDP via smooth sensitivity (Papernot et al. 2018, Sec. 4.3, App. B-C).

ε_λ(D) = `analysis.data_dependent_rdp` at one order λ depends on the private
votes; it is released as ε_λ(D) + SS_β(D)·N(0, σ_s^2) with (Nissim,
Raskhodnikova, Smith 2007, Def. 2.2) LS^(k)(D) = max_{d(D,D') ≤ k} LS(D') and
SS_β(D) = max_k e^{-βk} LS^(k)(D). One training example moves one teacher,
i.e. one vote in every query, so LS^(k) of the sum over queries is at most the
sum of per-query LS^(k); k ≤ #teachers suffices (LS^(k) is then constant).

GNMax (App. B.4, Prop. 13, condition C5): f(q) = rdp_gnmax(log q) depends on
the votes through q = Σ_{j≠j*} Φ̄(Δ_j/(√2σ)) only (Prop. 7); z(q) = Φ̄^{-1}(q/(m-1)).
A vote move changes each gap by ≤ 2 (a new argmax's gaps pair up with the old
ones) and p ↦ Φ̄(Φ̄^{-1}(p) ∓ √2/σ) is concave/convex, so by Jensen a neighbour's
z is within c = √2/σ of z (the paper's bu/bl). If f is non-decreasing in q
(C5, checked on a grid), LS ≤ max(f(bu(q')) - f(q'), f(q') - f(bl(q'))) at q',
bounded per z-cell (width c/32) from the cell's ends. At distance k, l ≤ k
votes leave the top and gains u_j (Σu_j ≤ k) shrink gap j to ≥ Δ_j - l - u_j;
q is convex in u while no gap reaches 0, so it is largest with all k votes on
the runner-up, and once 2k ≥ Δ_min only the cap 1 - 1/m bounds it; gaps grow
by ≤ 2k, which bounds q below. LS^(k) is the largest cell bound over that q
range: unlike Alg. 4-5, this needs C5 only (not C6) and no greedy vote path.

Threshold check (Sec. 4.2): rdp_threshold depends on the max count v only,
which a vote move changes by at most 1: LS^(k) is the largest one-step change
of the exact RDP table over max counts in [v - k, v + k] (≤ #teachers).

GNSS (App. C, Thm. 23): for 1 < λ < 1/(2β), releasing f(D) + SS_β(D)·N(0, σ_s^2)
is (λ, λe^{2β}/σ_s^2 + (βλ - ½log(1 - 2βλ))/(λ - 1))-RDP.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from absl import logging
from dp_accounting.rdp import rdp_privacy_accountant
from scipy import optimize, special

from tfpriv.dp.pate.aggregation import UNANSWERED, ConfidentGNMax, GNMax
from tfpriv.dp.pate.analysis import data_dependent_rdp, log_q_gnmax, rdp_gnmax, rdp_threshold
from tfpriv.rng import RandomSource

# MNIST-sized runs (250 teachers, Confident-GNMax T=200, σ1=150, σ2=40, Papernot 2018, App. C): order 14 and
# β = 0.0329 ≈ 0.46/14 (β must stay below 1/(2λ)); σ_s = 15 approximates the paper's noise scale.
DEFAULT_ORDER = 14.0
DEFAULT_BETA = 0.0329
DEFAULT_SIGMA_S = 15.0
_STEPS_PER_VOTE = 32  # grid cells per one-vote shift c = √2/σ in z-space


def _number(name: str, value: float, low: float, strict: bool = True) -> float:
    if not (np.isfinite(value) and (value > low if strict else value >= low)):
        raise ValueError(f'{name} must be a finite number {">" if strict else ">="} {low}, got {value}')
    return float(value)


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f'{name} must be an integer >= 0, got {value!r}')
    return int(value)


def _f_gnmax(z: float, sigma: float, order: float, num_classes: int) -> float:
    """f(q(z)) with q(z) = min((m-1)Φ̄(z), 1 - 1/m)."""
    log_q = min(math.log(num_classes - 1) + float(special.log_ndtr(-z)), math.log1p(-1.0 / num_classes))
    return float(rdp_gnmax(log_q, sigma, [order])[0])


@functools.lru_cache(maxsize=32)
def _gnmax_cells(sigma: float, order: float, num_classes: int) -> Tuple[float, float, np.ndarray]:
    """(z_cap, cell width h, W): W[i] bounds LS over z-cell [z_cap + ih, z_cap + (i+1)h]; W[-1] is z ≥ z_N."""
    s, h = _STEPS_PER_VOTE, math.sqrt(2.0) / sigma / _STEPS_PER_VOTE
    z_cap = float(-special.ndtri(1.0 / num_classes))  # q = 1 - 1/m
    values = [_f_gnmax(z_cap, sigma, order, num_classes)]
    while values[-1] > 1e-10 * values[0] and len(values) < 200_000:  # f ≥ 0 bounds the tail below
        values.append(_f_gnmax(z_cap + len(values) * h, sigma, order, num_classes))
    f = np.array(values)
    if np.any(np.diff(f) > 1e-9 * f[0]):  # rounding noise of rdp_gnmax aside
        raise ValueError(f'rdp_gnmax is not monotone in q for sigma={sigma}, order={order}, {num_classes} '
                         'classes (condition C5 of Papernot 2018, App. B.4); smooth sensitivity is not available')
    n = len(f) - 1
    padded = np.concatenate([np.full(s, f[0]), f, np.zeros(s + 1)])  # q capped left; f ≥ 0 right
    at = lambda j: padded[j + s]  # noqa: E731  (f at grid index j, j in [-s, n + s + 1])
    i = np.arange(n)
    cells = np.maximum(at(i - s) - at(i + 1), at(i) - at(i + 1 + s))  # f(bu(q_hi)) - f(q_lo), f(q_hi) - f(bl(q_lo))
    cells = np.append(cells, at(n - s))
    cells.flags.writeable = False
    return z_cap, h, cells


def _reachable_log_q(counts: np.ndarray, sigma: float, k: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Bounds on log q over histograms at distance ≤ k (see the module docstring), capped at log(1 - 1/m)."""
    gaps = np.sort(counts.max() - np.delete(counts, np.argmax(counts)))  # Δ_j, smallest first
    scale, cap = math.sqrt(2.0) * sigma, math.log1p(-1.0 / counts.size)
    shrink = np.outer(k, np.r_[2.0, np.ones(gaps.size - 1)])  # k votes from the top to the runner-up
    high = special.logsumexp(special.log_ndtr((shrink - gaps) / scale), axis=1)
    high[(k > 0) & (2 * k >= gaps[0])] = cap  # the runner-up can catch up: only the cap bounds q
    low = special.logsumexp(special.log_ndtr(-(gaps + 2.0 * k[:, None]) / scale), axis=1)
    return np.minimum(low, cap), np.minimum(high, cap)


def local_sensitivity_gnmax(counts: np.ndarray, sigma: float, order: float, max_distance: int) -> np.ndarray:
    """Upper bounds on LS^(k) of rdp_gnmax(log_q_gnmax(counts, σ), σ, [λ]), k = 0..max_distance."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 2 or np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError(f'counts must be one vote histogram (>= 2 non-negative counts), got shape {counts.shape}')
    sigma, order, k_max = _number('sigma', sigma, 0), _number('order', order, 1), _count('max_distance', max_distance)
    m = counts.size
    z_cap, h, cells = _gnmax_cells(sigma, order, m)
    n, c = len(cells) - 1, math.sqrt(2.0) / sigma
    to_cell = lambda log_q: np.clip(np.floor(  # noqa: E731
        (np.maximum(-special.ndtri_exp(log_q - math.log(m - 1)), z_cap) - z_cap) / h), 0, n).astype(np.int64)
    log_q = log_q_gnmax(counts, sigma)
    i0 = int(to_cell(np.array([log_q]))[0])
    low, high = _reachable_log_q(counts, sigma, np.arange(k_max + 1.0))
    lo = np.minimum(np.minimum.accumulate(to_cell(high)), i0)  # large q = small z = low cell index
    hi = np.maximum(np.maximum.accumulate(to_cell(low)), i0)
    left = np.maximum.accumulate(cells[lo[-1]:i0 + 1][::-1])  # left[j] = max cells[i0 - j .. i0]
    right = np.maximum.accumulate(cells[i0:hi[-1] + 1])  # right[j] = max cells[i0 .. i0 + j]
    ls = np.maximum(left[i0 - lo], right[hi - i0])
    z0 = max(-float(special.ndtri_exp(log_q - math.log(m - 1))), z_cap)
    here = float(rdp_gnmax(log_q, sigma, [order])[0])  # k = 0: Prop. 13's bound at q itself, off the grid
    ls[0] = max(_f_gnmax(z0 - c, sigma, order, m) - here, here - _f_gnmax(z0 + c, sigma, order, m))
    return ls


@functools.lru_cache(maxsize=32)
def _threshold_table(threshold: float, sigma_threshold: float, order: float, size: int) -> np.ndarray:
    table = np.array([rdp_threshold(v, threshold, sigma_threshold, [order])[0] for v in range(size)])
    table.flags.writeable = False
    return table


def local_sensitivity_threshold(max_count: float, threshold: float, sigma_threshold: float, order: float,
                                max_distance: int, num_teachers: Optional[int] = None) -> np.ndarray:
    """Upper bounds on LS^(k) of rdp_threshold(max_count, T, σ1, [λ]), k = 0..max_distance.

    With `num_teachers`, max counts above it (impossible) are left out; without, the bound is looser.
    """
    if not (np.isfinite(max_count) and max_count >= 0 and float(max_count).is_integer()):
        raise ValueError(f'max_count must be a non-negative integer vote count, got {max_count}')
    if not np.isfinite(threshold):
        raise ValueError(f'threshold must be finite, got {threshold}')
    sigma_threshold, order = _number('sigma_threshold', sigma_threshold, 0), _number('order', order, 1)
    k_max, v = _count('max_distance', max_distance), int(max_count)
    top = v + k_max  # largest max count within distance k_max
    if num_teachers is not None:
        if _count('num_teachers', num_teachers) < v:
            raise ValueError(f'num_teachers must be >= max_count = {v}, got {num_teachers}')
        top = min(top, int(num_teachers))
    size = 1 << (top + 1).bit_length()  # ≥ top + 2, rounded up so that queries share the cached table
    diff = np.abs(np.diff(_threshold_table(float(threshold), sigma_threshold, order, size)))[:top + 1]
    if top == num_teachers:
        diff[top] = 0.0  # no histogram has max count num_teachers + 1
    step = diff.copy()
    step[1:] = np.maximum(diff[1:], diff[:-1])  # step[w]: largest change to a neighbour of max count w
    left = np.maximum.accumulate(step[v::-1])  # left[j] = max step[v - j .. v]
    right = np.maximum.accumulate(step[v:])  # right[j] = max step[v .. v + j]
    k = np.arange(k_max + 1)
    return np.maximum(left[np.minimum(k, v)], right[np.minimum(k, top - v)])


def smooth_sensitivity(local_sensitivities: Sequence[float], beta: float) -> float:
    """SS_β = max_k e^{-βk} LS^(k) (Nissim et al. 2007, Def. 2.2), LS^(k) given for k = 0, 1, ..."""
    ls = np.asarray(local_sensitivities, dtype=np.float64)
    if ls.ndim != 1 or ls.size == 0 or not np.all(np.isfinite(ls)) or np.any(ls < 0):
        raise ValueError(f'local_sensitivities must be a non-empty 1-D array of finite values >= 0, got {ls!r}')
    beta = _number('beta', beta, 0, strict=False)
    return float(np.max(ls * np.exp(-beta * np.arange(ls.size))))


def _gnss_bound(order: float, beta: float, sigma_s: float) -> float:
    return (order * math.exp(2 * beta) / sigma_s ** 2
            + (beta * order - 0.5 * math.log1p(-2 * beta * order)) / (order - 1))


def gnss_rdp(order: float, beta: float, sigma_s: float) -> float:
    """RDP at `order` of f(D) + SS_β(D)·N(0, σ_s^2) (Papernot 2018, App. C, Thm. 23), for 1 < λ < 1/(2β).

    The theorem's bound blows up as λ → 1; since RDP is non-decreasing in the
    order (van Erven & Harremoës 2014, Thm. 3), its minimum over [λ, 1/(2β)) is
    returned, which makes the result non-decreasing in λ.
    """
    order, beta, sigma_s = _number('order', order, 1), _number('beta', beta, 0, False), _number('sigma_s', sigma_s, 0)
    if beta == 0:
        return order / sigma_s ** 2
    if order >= 1 / (2 * beta):
        raise ValueError(f'GNSS needs 1 < order < 1/(2*beta) = {1 / (2 * beta):.4g}; got order={order}, beta={beta}')
    best = _gnss_bound(order, beta, sigma_s)
    upper = (1 - 1e-9) / (2 * beta)
    if upper > order:
        found = optimize.minimize_scalar(lambda lam: _gnss_bound(lam, beta, sigma_s), bounds=(order, upper),
                                         method='bounded')
        best = min(best, float(found.fun))
    return best


def beta_for_order(order: float, fraction: float = 0.46) -> float:
    """β = fraction/λ, inside Thm. 23's range β < 1/(2λ); 0.46 at λ = 14 gives the paper's MNIST β ≈ 0.0329."""
    if not 0 < fraction < 0.5:
        raise ValueError(f'fraction must be in (0, 0.5) so that beta < 1/(2*order), got {fraction}')
    return fraction / _number('order', order, 1)


def sigma_s_for(order: float, beta: float, expected_smooth_sensitivity: float) -> float:
    """σ_s = (λe^{2β}/SS)^{1/3}, the minimizer of λe^{2β}/σ_s^2 + 2·SS·σ_s.

    Take SS from public data (or a previous release), never from the private votes.
    """
    ss = _number('expected_smooth_sensitivity', expected_smooth_sensitivity, 0)
    return (_number('order', order, 1) * math.exp(2 * _number('beta', beta, 0, False)) / ss) ** (1 / 3)


@dataclasses.dataclass(frozen=True)
class SmoothRelease:
    """`release_epsilon`'s outcome; of its data-dependent fields only `released_rdp` and `epsilon` are public."""

    order: float
    beta: float
    sigma_s: float
    delta: float
    data_dependent_rdp: float  # ε_λ(D): private
    smooth_sensitivity: float  # SS_β(D): private
    noise_std: float  # SS_β(D)·σ_s: private
    released_rdp: float  # max(ε_λ(D) + SS_β(D)·N(0, σ_s^2), 0)
    gnss_rdp: float
    epsilon: float  # ε(δ) of released_rdp + gnss_rdp: the publishable guarantee
    expected_epsilon: float  # ε(δ) of ε_λ(D) + gnss_rdp (noise at its mean 0), as the paper's tables
    data_dependent_epsilon: float  # ε(δ) of ε_λ(D) alone, not private, for comparison


def release_epsilon(stages: Sequence[Tuple[object, np.ndarray, np.ndarray]], delta: float,
                    order: float = DEFAULT_ORDER, beta: float = DEFAULT_BETA, sigma_s: float = DEFAULT_SIGMA_S,
                    rng: Optional[RandomSource] = None) -> SmoothRelease:
    """Smooth-sensitivity release of the data-dependent RDP of (Confident-)GNMax answers.

    `stages` is a sequence of `(aggregator, counts, labels)` rounds released one
    after another (as `analysis.analyze_stages`); their RDP at `order` and their
    per-query local sensitivities are summed, since one training example moves
    one vote in every query of every round.
    """
    if not 0.0 < delta < 1.0:
        raise ValueError(f'delta must be in (0, 1), got {delta}')
    if not stages:
        raise ValueError('need at least one round of answers')
    cost = gnss_rdp(order, beta, sigma_s)  # validates order, beta, sigma_s
    rdp, ls = 0.0, None
    for aggregator, counts, labels in stages:
        if not isinstance(aggregator, (ConfidentGNMax, GNMax)):
            raise TypeError(f'smooth sensitivity is implemented for GNMax and ConfidentGNMax, got '
                            f'{type(aggregator).__name__}')
        counts, labels = np.asarray(counts), np.asarray(labels)
        if counts.ndim != 2 or counts.shape[0] == 0:
            raise ValueError(f'counts must be a non-empty (queries, classes) array, got shape {counts.shape}')
        rdp += float(data_dependent_rdp(aggregator, counts, labels, [order])[0])
        teachers = int(counts.sum(axis=1).max())  # LS^(k) is constant for k ≥ #teachers
        if ls is None:
            ls = np.zeros(teachers + 1)
        elif len(ls) != teachers + 1:
            raise ValueError(f'all rounds need the same number of teachers, got {len(ls) - 1} and {teachers}')
        for row, label in zip(counts, labels):
            if isinstance(aggregator, ConfidentGNMax):
                ls += local_sensitivity_threshold(row.max(), aggregator.threshold, aggregator.sigma_threshold,
                                                  order, teachers, num_teachers=int(row.sum()))
            if label != UNANSWERED:
                ls += local_sensitivity_gnmax(row, aggregator.sigma, order, teachers)
    ss = smooth_sensitivity(ls, beta)
    rng = rng if rng is not None else RandomSource()
    released = max(rdp + ss * sigma_s * float(rng.normal(1)[0]), 0.0)
    eps = lambda value: float(rdp_privacy_accountant.compute_epsilon([order], [value], delta)[0])  # noqa: E731
    result = SmoothRelease(order=float(order), beta=float(beta), sigma_s=float(sigma_s), delta=float(delta),
                           data_dependent_rdp=rdp, smooth_sensitivity=ss, noise_std=ss * sigma_s,
                           released_rdp=released, gnss_rdp=cost, epsilon=eps(released + cost),
                           expected_epsilon=eps(rdp + cost), data_dependent_epsilon=eps(rdp))
    logging.info('smooth-sensitivity release at order %g: RDP %.4g -> %.4g (+ GNSS %.4g), eps %.4g',
                 order, rdp, released, cost, result.epsilon)
    return result
