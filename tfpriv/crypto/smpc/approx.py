"""Smooth functions on `SharedTensor`s: exp, reciprocal, inverse square root, log, softmax.

Under additive sharing only additions and products are cheap, so every smooth
function is a polynomial or a Newton iteration over them, as in CrypTen (Knott
et al., "CrypTen: Secure Multi-Party Computation Meets Machine Learning",
NeurIPS 2021, sec. 4.2), with a range the caller states and an error bound
stated here. u = 2^-f is one unit in the last place of the fixed-point
encoding; each truncated product adds at most u (`protocols.truncate`).

  exp(x), x <= 0        clamp at -16, Taylor of degree 5 at x / 16, then four
                        squarings: |error| <= 2.3e-7 + 1.2e-7 + 144 u.
  reciprocal(x)         Newton y <- y (2 - x y) from y0 = 2 / (lo + hi), for
                        x in [lo, hi]: the relative error e = 1 - x y squares each
                        step from |e0| <= rho = (hi - lo) / (hi + lo); enough steps
                        that rho^(2^k) <= u, so |error| <= (1 / lo) u + (1 / lo + 2) u.
  inv_sqrt(v)           v in [4^-K, 1]: y0 = 2^j from K exact comparisons
                        (v y0^2 in [1/4, 1)), then 6 Newton steps
                        y <- y (3 - v y^2) / 2 with v y^2 as v (y y), a product
                        near 1 (v * 0.5 first would lose u / v): relative error
                        <= 3e-12 + 3 u against the encoded input, whose own
                        rounding (u / 2) adds u / (4 v).
  log(s), s in [1, hi]  Newton for exp(y) = s: y <- y - 1 + s exp(-y) from
                        ln(hi) / 2, steps until the worst start is within 2e-6
                        (5 for hi = 10); |error| <= 2e-6 + hi exp-error.
  row_max               a tournament of exact comparisons, ceil(log2 C) levels.
  softmax               exp(z - max z) / sum, with s = sum in [1, C].
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from tfpriv.crypto.smpc.tensor import SharedTensor, stack

EXP_CLAMP = 16.0        # exp(x) is taken as exp(-16) ~ 1.1e-7 below -16
EXP_HALVINGS = 4        # exp(x) = exp(x / 2^4)^(2^4)
EXP_DEGREE = 5          # Taylor degree at x / 2^4
EXP_APPROX_ERROR = 2.3e-7 + math.exp(-EXP_CLAMP)  # Taylor remainder + clamp, before rounding
INV_SQRT_STEPS = 6
LOG_NEWTON_ERROR = 2e-6


def exp_error_bound(precision: int) -> float:
    """The stated |exp(x) - `exp`(x)| bound for x <= 0 at `precision` fractional bits.

    Taylor remainder: exp(t) - p5(t) <= |t|^6 / 720 for t in [-1, 0]; raised to
    the 16th power the error is at most 16 e^(15x/16) (x/16)^6 / 720
    <= 2.3e-7 (at x = -6.4). Rounding: t = x / 16 (u), the encoded constants
    1/120, 1/24, 1/6 (u / 2 each) and the 5 Horner products (u each; earlier
    errors are multiplied by |t| <= 1) add at most 8 u, doubled by each of the
    4 squarings (y <= 1), plus u per squaring: <= 16 * 8 u + 15 u < 144 u.
    """
    return EXP_APPROX_ERROR + 144 * 2.0 ** -precision


def exp(x: SharedTensor) -> SharedTensor:
    """exp(x) for x <= 0 (positive x is not supported: its exp may overflow)."""
    t = x.maximum(-EXP_CLAMP) * (1.0 / 2**EXP_HALVINGS)
    y = t * (1.0 / math.factorial(EXP_DEGREE)) + 1.0 / math.factorial(EXP_DEGREE - 1)
    for k in range(EXP_DEGREE - 2, -1, -1):  # Horner: y <- y t + 1 / k!
        y = y * t + 1.0 / math.factorial(k)
    for _ in range(EXP_HALVINGS):
        y = y * y
    return y


def newton_steps(lo: float, hi: float, precision: int) -> int:
    """Newton steps k with ((hi - lo) / (hi + lo))^(2^k) <= 2^-precision."""
    rho = (hi - lo) / (hi + lo)
    if rho == 0:
        return 1
    return max(1, math.ceil(math.log2(precision * math.log(2) / -math.log(rho))))


def reciprocal(x: SharedTensor, lo: float, hi: float) -> SharedTensor:
    """1 / x for x in [lo, hi], 0 < lo <= hi (see the module docstring for the error)."""
    if not 0 < lo <= hi:
        raise ValueError(f'reciprocal needs a range 0 < lo <= hi, got lo={lo}, hi={hi}')
    y = np.full(x.shape, 2.0 / (lo + hi))  # public start: the first step costs one round less
    for _ in range(newton_steps(lo, hi, x.cluster.encoding.precision)):
        y = y * (2.0 - x * y)
    return y


def inv_sqrt(v: SharedTensor, levels: int) -> SharedTensor:
    """1 / sqrt(v) for v in [4^-levels, 1].

    The bits b_k = [v < 4^-k] (k = 1..levels, one batched comparison) are
    monotone, so y0 = 1 + sum_k b_k 2^(k-1) = 2^j where 4^-(j+1) <= v < 4^-j.
    """
    thresholds = np.array([4.0 ** -k for k in range(1, levels + 1)])
    expanded = stack([v] * levels, axis=0)
    bits = expanded < thresholds.reshape((levels,) + (1,) * v.ndim)
    weights = np.array([2 ** (k - 1) for k in range(1, levels + 1)], dtype=np.int64)
    y = (bits * weights.reshape(bits.shape[:1] + (1,) * v.ndim)).sum(axis=0) + 1
    for _ in range(INV_SQRT_STEPS):
        y = y * (1.5 - (v * (y * y)) * 0.5)
    return y


def log_steps(hi: float) -> int:
    """Newton steps after which both worst starts, s = 1 and s = hi, are within 2e-6.

    The error e = y - ln s maps to e - 1 + exp(-e) (public arithmetic here).
    """
    errors = [math.log(hi) / 2, -math.log(hi) / 2]
    steps = 0
    while max(abs(e) for e in errors) > LOG_NEWTON_ERROR:
        errors = [e - 1 + math.exp(-e) for e in errors]
        steps += 1
    return max(steps, 1)


def log(s: SharedTensor, hi: float) -> SharedTensor:
    """ln(s) for s in [1, hi]: Newton on exp(y) = s, whose iterates stay >= ln s >= 0."""
    if not hi >= 1:
        raise ValueError(f'log needs the range [1, hi] with hi >= 1, got hi={hi}')
    start = math.log(hi) / 2
    y = s * math.exp(-start) + (start - 1.0)
    for _ in range(log_steps(hi) - 1):
        y = y - 1.0 + s * exp(-y)
    return y


def row_max(z: SharedTensor) -> SharedTensor:
    """max over the last axis of a (B, C) tensor, exact; ceil(log2 C) comparison levels."""
    columns = [z[:, j] for j in range(z.shape[-1])]
    while len(columns) > 1:
        pairs = len(columns) // 2
        left = stack(columns[0:2 * pairs:2], axis=-1)
        right = stack(columns[1:2 * pairs:2], axis=-1)
        best = left.maximum(right)
        columns = [best[:, j] for j in range(pairs)] + columns[2 * pairs:]
    return columns[0]


def softmax(z: SharedTensor) -> Tuple[SharedTensor, SharedTensor, SharedTensor]:
    """(softmax(z), max z, sum exp(z - max z)) over the last axis of a (B, C) tensor.

    The sum lies in [1, C] (its largest term is exp(0) = 1), which is the
    reciprocal's range. |softmax error| <= C exp-error + reciprocal error.
    """
    batch, classes = z.shape
    top = row_max(z)
    e = exp(z - top.reshape(batch, 1))
    total = e.sum(axis=-1)
    return e * reciprocal(total, 1.0, float(classes)).reshape(batch, 1), top, total
