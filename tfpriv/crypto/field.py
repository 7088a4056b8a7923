"""Vectorized arithmetic in a prime field GF(p), p < 2^31, on NumPy int64 arrays.

Why p < 2^31 and int64: field elements are kept in [0, p), so a product of two
elements is below 2^62 and fits in a signed 64-bit integer with room for a few
additions. Every operation is then one NumPy ufunc over a whole tensor (no
Python loop per element, no object arrays, no big integers). NumPy divides an
int64 array by a scalar with a precomputed multiplier (libdivide), so `% p` costs
about as much as two multiplications; the code still reduces lazily, only when
the tracked bound of an intermediate would pass 2^63.

The default prime is the Mersenne prime 2^31 - 1, the largest prime below 2^31:
it leaves the most room for fixed-point values and a random 31-bit word is a
field element except for the single value 2^31 - 1, so uniform coefficients cost
4 random bytes each with almost no rejection. Every function here accepts any
prime p < 2^31 (the RLWE code shares keys modulo its ~30-bit RNS primes).

Shamir's scheme (Shamir 1979, "How to share a secret"): the secret s is the
constant term of a random polynomial f of degree t - 1 over GF(p); share i is
(x_i, f(x_i)) for distinct non-zero x_i. Any t shares determine f, hence
s = f(0) = sum_i lambda_i f(x_i) with the Lagrange coefficients
lambda_i = prod_{j != i} (0 - x_j) / (x_i - x_j); any t - 1 shares are uniformly
distributed whatever s is.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tfpriv.rng import RandomSource

MERSENNE_31 = 2**31 - 1
DEFAULT_PRIME = MERSENNE_31
_INT64_MAX = 2**63 - 1
# Lagrange coefficients are split into 16-bit halves so that a sum of up to
# _TERMS_PER_REDUCTION products (each < 2^47) stays below 2^63.
_LIMB_BITS = 16
_TERMS_PER_REDUCTION = 2**15


def is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin, exact for n < 3,215,031,751 (bases 2, 3, 5, 7)."""
    if n < 2:
        return False
    for q in (2, 3, 5, 7):
        if n % q == 0:
            return n == q
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in (2, 3, 5, 7):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def check_modulus(modulus: int) -> int:
    """Returns `modulus` as an int if it is a prime below 2^31, else raises ValueError."""
    if isinstance(modulus, bool) or not isinstance(modulus, (int, np.integer)):
        raise TypeError(f'modulus must be an int, got {type(modulus).__name__}')
    modulus = int(modulus)
    if not 2 <= modulus < 2**31 or not is_prime(modulus):
        raise ValueError(f'modulus must be a prime in [2, 2^31), got {modulus}')
    return modulus


def check_xs(xs: Sequence[int], modulus: int) -> tuple:
    """Validates evaluation points: distinct integers in [1, modulus)."""
    try:
        points = tuple(int(x) for x in xs)
    except (TypeError, ValueError) as err:
        raise TypeError(f'x-coordinates must be integers, got {xs!r}') from err
    if any(isinstance(x, bool) for x in xs):
        raise TypeError(f'x-coordinates must be integers, got {xs!r}')
    bad = [x for x in points if not 1 <= x < modulus]
    if bad:
        raise ValueError(f'x-coordinates must lie in [1, {modulus}) (0 would reveal the '
                         f'secret), got {bad}')
    if len(set(points)) != len(points):
        duplicates = sorted({x for x in points if points.count(x) > 1})
        raise ValueError(f'x-coordinates must be distinct, got duplicates {duplicates}')
    return points


def check_elements(values: np.ndarray, modulus: int, what: str = 'values') -> np.ndarray:
    """Returns `values` as int64 if they are integers in [0, modulus), else raises ValueError."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f'{what} must be an integer array of field elements, got dtype '
                        f'{values.dtype}')
    values = values.astype(np.int64, copy=False)
    if values.size and (values.min() < 0 or values.max() >= modulus):
        raise ValueError(f'{what} must lie in [0, {modulus}), got range '
                         f'[{values.min()}, {values.max()}]')
    return values


def random_words(modulus: int, count: int, rng: Optional[RandomSource] = None) -> np.ndarray:
    """`count` uniform elements of GF(modulus) as a flat uint32 array, 4 random bytes each.

    Each 32-bit word is masked to the bit length of `modulus` and words >= modulus
    are redrawn (rejection sampling, so the result is exactly uniform; for
    2^31 - 1 only one word in 2^31 is rejected). Half the bytes of
    `RandomSource.uniform_mod`, which draws 64-bit words, and no division.
    """
    rng = rng if rng is not None else RandomSource()
    mask = np.uint32((1 << (modulus - 1).bit_length()) - 1)

    def draw(n: int) -> np.ndarray:
        return np.frombuffer(rng.bytes(4 * n), dtype=np.uint32) & mask

    words = draw(count)
    bad = np.flatnonzero(words >= modulus)
    while bad.size:
        words[bad] = draw(bad.size)
        bad = bad[words[bad] >= modulus]
    return words


def random_elements(modulus: int, shape, rng: Optional[RandomSource] = None) -> np.ndarray:
    """Uniform elements of GF(modulus) as an int64 array of `shape` (see `random_words`)."""
    count = int(np.prod(shape, dtype=np.int64))
    return random_words(modulus, count, rng).astype(np.int64).reshape(shape)


def poly_eval(coeffs: Sequence[np.ndarray], xs: Sequence[int], modulus: int) -> np.ndarray:
    """Evaluates many polynomials at many points: out[i, ...] = sum_k coeffs[k, ...] xs[i]^k.

    Horner's rule on whole arrays, one point at a time. Reduction is lazy: the
    accumulator is only reduced mod p when acc * x + (p - 1) could pass 2^63, so
    for small x (Shamir's default 1..n) a degree-5 polynomial needs a single `% p`.

    Args:
      coeffs: degree + 1 integer arrays of one shape (or one array with that
        leading axis) with entries in [0, modulus); coeffs[0] is the constant term.
      xs: evaluation points in [0, modulus).
      modulus: a prime below 2^31.

    Returns:
      int64 array of shape (len(xs), ...) with entries in [0, modulus).
    """
    out = np.empty((len(xs),) + np.shape(coeffs[0]), dtype=np.int64)
    for i, x in enumerate(xs):
        acc = out[i]
        acc[...] = coeffs[-1]
        bound = modulus - 1
        for k in range(len(coeffs) - 2, -1, -1):
            if bound * x + modulus - 1 > _INT64_MAX:
                np.remainder(acc, modulus, out=acc)
                bound = modulus - 1
            acc *= x
            acc += coeffs[k]
            bound = bound * x + modulus - 1
        np.remainder(acc, modulus, out=acc)
    return out


def check_split_parameters(threshold: int, num_shares: int, modulus: int) -> int:
    """Checks 1 <= threshold <= num_shares < modulus (a prime < 2^31); returns the modulus."""
    modulus = check_modulus(modulus)
    for name, value in (('threshold', threshold), ('num_shares', num_shares)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f'{name} must be an int, got {type(value).__name__}')
    if not 1 <= num_shares < modulus:
        raise ValueError(f'num_shares must be in [1, modulus) = [1, {modulus}) so that every '
                         f'share gets a distinct non-zero x, got {num_shares}')
    if not 1 <= threshold <= num_shares:
        raise ValueError(f'threshold must be in [1, num_shares] = [1, {num_shares}], '
                         f'got {threshold}')
    return modulus


def split_field(secret: np.ndarray, threshold: int, num_shares: int, modulus: int,
                rng: Optional[RandomSource] = None,
                xs: Optional[Sequence[int]] = None) -> np.ndarray:
    """Shamir-splits every element of `secret` (field elements) into `num_shares` shares.

    One random polynomial of degree threshold - 1 per element, constant term the
    element, other coefficients uniform from `rng` (OS CSPRNG by default).

    Args:
      secret: integer array with values in [0, modulus).
      threshold: t, the number of shares needed to reconstruct (1 <= t <= n).
      num_shares: n, the number of shares (n < modulus).
      modulus: a prime below 2^31.
      rng: source of the coefficients; `None` means a fresh OS-CSPRNG source.
      xs: the n distinct non-zero x-coordinates; default 1..n.

    Returns:
      int64 array of shape (num_shares, *secret.shape); row i is the share at xs[i].
    """
    modulus = check_split_parameters(threshold, num_shares, modulus)
    points = check_xs(range(1, num_shares + 1) if xs is None else xs, modulus)
    if len(points) != num_shares:
        raise ValueError(f'expected {num_shares} x-coordinates, got {len(points)}')
    secret = check_elements(secret, modulus, 'secret')
    words = random_words(modulus, (threshold - 1) * secret.size, rng)
    coeffs = [secret] + list(words.reshape((threshold - 1,) + secret.shape))
    return poly_eval(coeffs, points, modulus)


def lagrange_coefficients(xs: Sequence[int], modulus: int, at: int = 0) -> np.ndarray:
    """lambda_i = prod_{j != i} (at - x_j) / (x_i - x_j) mod p, so f(at) = sum_i lambda_i f(x_i).

    Exact for any polynomial f of degree < len(xs). Computed with Python integers
    (len(xs) is small) and returned as int64 in [0, modulus).
    """
    modulus = check_modulus(modulus)
    points = check_xs(xs, modulus)
    at = int(at) % modulus
    coefficients = []
    for i, xi in enumerate(points):
        numerator, denominator = 1, 1
        for j, xj in enumerate(points):
            if j != i:
                numerator = numerator * (at - xj) % modulus
                denominator = denominator * (xi - xj) % modulus
        coefficients.append(numerator * pow(denominator, -1, modulus) % modulus)
    return np.array(coefficients, dtype=np.int64)


def combine(coefficients: np.ndarray, ys: np.ndarray, modulus: int) -> np.ndarray:
    """sum_i coefficients[i] * ys[i] mod p over whole arrays.

    Each coefficient c < 2^31 is split as c = h 2^16 + l; the sums of h ys[i] and
    of l ys[i] stay below 2^63 for up to 2^15 terms, so the whole combination
    needs two reductions instead of one per term.
    """
    coefficients = np.asarray(coefficients, dtype=np.int64)
    high, low = coefficients >> _LIMB_BITS, coefficients & ((1 << _LIMB_BITS) - 1)
    acc_high = np.zeros(ys.shape[1:], dtype=np.int64)
    acc_low = np.zeros(ys.shape[1:], dtype=np.int64)
    for i in range(len(coefficients)):
        if i and i % _TERMS_PER_REDUCTION == 0:
            np.remainder(acc_high, modulus, out=acc_high)
            np.remainder(acc_low, modulus, out=acc_low)
        acc_high += ys[i] * high[i]
        acc_low += ys[i] * low[i]
    np.remainder(acc_high, modulus, out=acc_high)
    acc_high <<= _LIMB_BITS
    acc_high += acc_low
    np.remainder(acc_high, modulus, out=acc_high)
    return acc_high


def reconstruct_field(xs: Sequence[int], ys: np.ndarray, modulus: int) -> np.ndarray:
    """Lagrange interpolation at 0 of the points (xs[i], ys[i]) elementwise.

    Uses every given point, so it returns the secret when at least `threshold`
    consistent shares are given. It cannot notice wrong shares: use
    `tfpriv.crypto.reed_solomon.decode` for that.

    Args:
      xs: distinct x-coordinates in [1, modulus).
      ys: int64 array of shape (len(xs), ...) with entries in [0, modulus).
      modulus: a prime below 2^31.

    Returns:
      int64 array of shape ys.shape[1:].
    """
    modulus = check_modulus(modulus)
    points = check_xs(xs, modulus)
    ys = check_elements(ys, modulus, 'shares')
    if ys.ndim == 0 or ys.shape[0] != len(points):
        raise ValueError(f'ys must have one row per x-coordinate ({len(points)}), '
                         f'got shape {ys.shape}')
    return combine(lagrange_coefficients(points, modulus), ys, modulus)
