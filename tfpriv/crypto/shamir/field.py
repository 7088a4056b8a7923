"""Vectorized arithmetic in a prime field GF(p), p < 2^31, on NumPy int64 arrays.

Why p < 2^31: field elements are kept in [0, p) as int64, so a product of two
elements fits in 64 bits, and an element times a number below 2^22 fits in the
53-bit mantissa of a float64. The heavy step of Shamir sharing, evaluating one
random polynomial per tensor element at n points, is then a small matrix
product that BLAS computes exactly in float64 (`matmul_mod`), followed by one
`% p` per output (NumPy divides int64 arrays by a scalar with a precomputed
multiplier). Every operation runs over whole tensors: no Python loop per
element, no object arrays, no big integers.

The default prime is the Mersenne prime 2^31 - 1, the largest prime below 2^31:
it leaves the most room for fixed-point values and a random 31-bit word is a
field element except for the single value 2^31 - 1, so uniform coefficients
(`tfpriv.rng.Prg.uniform_mod`, rejection sampling, exactly uniform) cost 4
keystream bytes each with almost no rejection. Every function here accepts any
prime p < 2^31 (the RLWE code shares keys modulo its ~30-bit RNS primes).

Shamir's scheme (Shamir 1979, "How to share a secret"): the secret s is the
constant term of a random polynomial f of degree t - 1 over GF(p); share i is
(x_i, f(x_i)) for distinct non-zero x_i. Any t shares determine f, hence
s = f(0) = sum_i lambda_i f(x_i) with the Lagrange coefficients
lambda_i = prod_{j != i} (0 - x_j) / (x_i - x_j); any t - 1 shares are uniformly
distributed whatever s is.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from tfpriv import checks
from tfpriv.rng import Prg, RandomSource, as_prg

MERSENNE_31 = 2**31 - 1
DEFAULT_PRIME = MERSENNE_31
# float64 integers are exact below 2^53; `matmul_mod` keeps every sum below it.
_FLOAT_EXACT_BITS = 53
# Columns per chunk in `matmul_mod` (a few hundred KB of intermediates: in cache).
_CHUNK = 1 << 14
# At most this many terms per float64 sum (limbs of >= 53 - 31 - 10 = 12 bits).
_MAX_TERMS = 1 << 10


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
    modulus = checks.integer('modulus', modulus)
    if not 2 <= modulus < 2**31 or not is_prime(modulus):
        raise ValueError(f'modulus must be a prime in [2, 2^31), got {modulus}')
    return modulus


def check_xs(xs: Sequence[int], modulus: int) -> tuple:
    """Validates evaluation points: distinct integers in [1, modulus)."""
    points = tuple(checks.integer('x-coordinate', x) for x in xs)
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
    # One pass: a negative int64 read as uint64 is at least 2^63 > modulus.
    if values.size and values.view(np.uint64).max() >= modulus:
        raise ValueError(f'{what} must lie in [0, {modulus}), got range '
                         f'[{values.min()}, {values.max()}]')
    return values


def matmul_mod(matrix: Sequence[Sequence[int]], rows: Sequence[np.ndarray],
               modulus: int) -> np.ndarray:
    """out[i] = sum_k matrix[i][k] * rows[k] mod p, exactly, for a small matrix and long rows.

    The products run through float64 matrix multiplication (BLAS): a float64 sum
    is exact while it stays below 2^53, so each matrix entry (< p < 2^31) is
    split into limbs of b bits with k * 2^b * 2^31 <= 2^53 for k terms; one limb
    suffices for entries below 2^b (e.g. Shamir's x^j for small x). The limb
    products are reduced once each while still float64 (`reduce_exact_floats`),
    then converted to int64. The rows are processed
    in chunks of `_CHUNK` columns so every intermediate stays in the CPU cache.

    Args:
      matrix: r x k field elements (Python ints or an int array) in [0, modulus).
      rows: k integer arrays of one shape (or one array with leading axis k),
        entries in [0, modulus).
      modulus: a prime below 2^31.

    Returns:
      int64 array of shape (r, *rows[0].shape), entries in [0, modulus).
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    k = len(rows)
    if matrix.ndim != 2 or matrix.shape[1] != k:
        raise ValueError(f'matrix must have shape (r, {k}), got {matrix.shape}')
    if k > _MAX_TERMS:
        partial = [matmul_mod(matrix[:, a:a + _MAX_TERMS], rows[a:a + _MAX_TERMS], modulus)
                   for a in range(0, k, _MAX_TERMS)]
        return np.remainder(np.sum(partial, axis=0), modulus)
    shape = np.shape(rows[0])
    flat = [np.asarray(row).reshape(-1) for row in rows]
    size = flat[0].size
    limb_bits = _FLOAT_EXACT_BITS - (modulus - 1).bit_length() - max(k - 1, 0).bit_length()
    num_limbs = max(1, -(-int(matrix.max(initial=0)).bit_length() // limb_bits))
    limbs = np.concatenate([(matrix >> (limb_bits * j)) & ((1 << limb_bits) - 1)
                            for j in range(num_limbs)]).astype(np.float64)
    r = matrix.shape[0]
    out = np.empty((r, size), dtype=np.int64)
    chunk = max(1, min(size, _CHUNK))
    inputs = np.empty((k, chunk))
    products, quotients = np.empty((num_limbs * r, chunk)), np.empty((num_limbs * r, chunk))
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        width = stop - start
        for j in range(k):
            inputs[j, :width] = flat[j][start:stop]
        block = np.matmul(limbs, inputs[:, :width], out=products[:, :width])
        reduce_exact_floats(block, modulus, quotients[:, :width])
        acc = out[:, start:stop]
        acc[...] = block[(num_limbs - 1) * r:]
        for j in range(num_limbs - 2, -1, -1):  # Horner in 2^limb_bits, in int64
            acc <<= limb_bits
            acc += block[j * r:(j + 1) * r].astype(np.int64)
            np.remainder(acc, modulus, out=acc)
    return out.reshape((r,) + shape)


def reduce_exact_floats(values: np.ndarray, modulus: int, scratch: np.ndarray) -> np.ndarray:
    """values mod p in place, for float64 arrays of integers in [0, 2^53); p in [64, 2^31).

    q = floor(fl(v c)) with c = 1/p less a relative 2^-51 to 2^-49 (fl(1/p) times
    1 - 2^-50, rounded down): fl(v c) = (v/p)(1 - e) with 0 < e < 2^-48, so it
    lies in (v/p - 1, v/p) as v/p < 2^53/64 = 2^47. Hence q is floor(v/p) or
    one less, v - q p (exact: integers below 2^53) lies in [0, 2p), and one
    conditional subtraction of p finishes. Six float64 passes over values in
    cache cost less than NumPy's int64 `%`. `scratch` is a float64 array of
    values' shape. Moduli below 64 use `np.remainder`.
    """
    if modulus < 64:
        return np.remainder(values, modulus, out=values)
    inverse = np.nextafter((1.0 / modulus) * (1.0 - 2.0**-50), 0.0)
    np.multiply(values, inverse, out=scratch)
    np.floor(scratch, out=scratch)
    scratch *= modulus
    values -= scratch
    return np.subtract(values, modulus, out=values, where=values >= modulus)


def poly_eval(coeffs: Sequence[np.ndarray], xs: Sequence[int], modulus: int) -> np.ndarray:
    """Evaluates many polynomials at many points: out[i, ...] = sum_k coeffs[k, ...] xs[i]^k.

    A Vandermonde matrix V[i, k] = xs[i]^k mod p times the coefficient rows
    (`matmul_mod`); for Shamir's default points 1..n and degree < 6 every x^k is
    below 2^22, so each output needs one float64 product and one reduction.

    Args:
      coeffs: degree + 1 integer arrays of one shape (or one array with that
        leading axis) with entries in [0, modulus); coeffs[0] is the constant term.
      xs: evaluation points in [0, modulus).
      modulus: a prime below 2^31.

    Returns:
      int64 array of shape (len(xs), ...) with entries in [0, modulus).
    """
    vandermonde = [[pow(int(x), k, modulus) for k in range(len(coeffs))] for x in xs]
    return matmul_mod(vandermonde, coeffs, modulus)


def check_split_parameters(threshold: int, num_shares: int, modulus: int) -> int:
    """Checks 1 <= threshold <= num_shares < modulus (a prime < 2^31); returns the modulus."""
    modulus = check_modulus(modulus)
    checks.integer('threshold', threshold)
    checks.integer('num_shares', num_shares)
    if not 1 <= num_shares < modulus:
        raise ValueError(f'num_shares must be in [1, modulus) = [1, {modulus}) so that every '
                         f'share gets a distinct non-zero x, got {num_shares}')
    if not 1 <= threshold <= num_shares:
        raise ValueError(f'threshold must be in [1, num_shares] = [1, {num_shares}], '
                         f'got {threshold}')
    return modulus


def split_field(secret: np.ndarray, threshold: int, num_shares: int, modulus: int,
                rng: Union[RandomSource, Prg, None] = None,
                xs: Optional[Sequence[int]] = None) -> np.ndarray:
    """Shamir-splits every element of `secret` (field elements) into `num_shares` shares.

    One random polynomial of degree threshold - 1 per element, constant term the
    element, other coefficients exactly uniform in GF(p) from the AES-CTR
    keystream `rng` (a `Prg`, or one keyed from a `RandomSource`; OS CSPRNG by default).

    Args:
      secret: integer array with values in [0, modulus).
      threshold: t, the number of shares needed to reconstruct (1 <= t <= n).
      num_shares: n, the number of shares (n < modulus).
      modulus: a prime below 2^31.
      rng: source of the coefficients (`Prg` or `RandomSource`); `None` means a
        Prg keyed from the OS CSPRNG.
      xs: the n distinct non-zero x-coordinates; default 1..n.

    Returns:
      int64 array of shape (num_shares, *secret.shape); row i is the share at xs[i].
    """
    modulus = check_split_parameters(threshold, num_shares, modulus)
    points = check_xs(range(1, num_shares + 1) if xs is None else xs, modulus)
    if len(points) != num_shares:
        raise ValueError(f'expected {num_shares} x-coordinates, got {len(points)}')
    secret = check_elements(secret, modulus, 'secret')
    random = as_prg(rng).uniform_mod(modulus, (threshold - 1,) + secret.shape)
    coeffs = [secret] + list(random)
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
    """sum_i coefficients[i] * ys[i] mod p over whole arrays (one row of `matmul_mod`)."""
    return matmul_mod(np.asarray(coefficients, dtype=np.int64)[None, :], ys, modulus)[0]


def reconstruct_field(xs: Sequence[int], ys: Sequence[np.ndarray], modulus: int) -> np.ndarray:
    """Lagrange interpolation at 0 of the points (xs[i], ys[i]) elementwise.

    Uses every given point, so it returns the secret when at least `threshold`
    consistent shares are given. It cannot notice wrong shares: use
    `tfpriv.crypto.shamir.reed_solomon.decode` for that.

    Args:
      xs: distinct x-coordinates in [1, modulus).
      ys: one integer array per x-coordinate (or an array with that leading
        axis), all of one shape, entries in [0, modulus).
      modulus: a prime below 2^31.

    Returns:
      int64 array of the shape of ys[i].
    """
    modulus = check_modulus(modulus)
    points = check_xs(xs, modulus)
    # np.ndim(ys) would copy a list of rows into one array: test for a scalar without it.
    scalar = not hasattr(ys, '__len__') or (isinstance(ys, np.ndarray) and ys.ndim == 0)
    if scalar or len(ys) != len(points):
        raise ValueError(f'ys must have one row per x-coordinate ({len(points)}), '
                         f'got {"a scalar" if scalar else len(ys)}')
    rows = [check_elements(row, modulus, 'shares') for row in ys]
    if len({row.shape for row in rows}) > 1:
        raise ValueError(f'share rows differ in shape: {sorted({row.shape for row in rows})}')
    return combine(lagrange_coefficients(points, modulus), rows, modulus)
