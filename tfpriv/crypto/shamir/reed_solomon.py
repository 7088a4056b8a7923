"""Robust Shamir reconstruction: Reed-Solomon decoding of shares, vectorized over tensors.

m Shamir shares of one element are a codeword of the Reed-Solomon code of
length m and dimension t over GF(p) (McEliece and Sarwate 1981), whose minimum
distance is m - t + 1. Up to e = floor((m - t) / 2) wrong shares can therefore
be corrected. Any e + 1 or more wrong shares are *detected* whenever the wrong
word is not within distance e of another codeword, which is certain when
(number wrong) + e < m - t + 1 and, for shares corrupted at random rather than
crafted, overwhelmingly likely; a coalition of more than e parties that
computes its shares from a chosen polynomial can make decoding return a wrong
secret, as for every unique decoder.

Decoding a 1M-element tensor one element at a time would be far too slow, but a
faulty party is faulty on its whole tensor, so the *set* of wrong parties is
found once:

1. Probe: a random linear combination sum_j r_j y_ij of a sample of the
   elements gives one scalar word (z_1..z_m). A party whose shares are wrong on
   a sampled element makes z_i wrong except with probability 1/p. The scalar
   word is decoded with Gao's algorithm (Gao 2003, "A new algorithm for decoding
   Reed-Solomon codes", extended Euclid on the interpolant and prod (x - x_i)),
   which returns the parties where it disagrees. Failure here already proves
   more than e parties are wrong.
2. Verify exactly, on every element: the remaining parties G must all lie on
   polynomials of degree < t, checked by interpolating from t of them and
   predicting the others (whole-array Lagrange, `field.combine`). If they do
   and |G| >= t + e, the polynomial agrees with the true one on at least
   |G| - e >= t honest points, so it is the true one: the result is correct,
   not just probably correct.
3. If verification fails (a party wrong only outside the sample), probe again
   with combinations of *all* elements, adding the parties each probe finds,
   and verify again. A wrong party escapes one full probe with probability 1/p,
   so after enough probes (two for p ~ 2^31) a failed verification means more
   than e parties are wrong: raise `DecodingError`.

Costs O(m^2) Python-integer work for the probe and about (|G| - t + 1) t
multiply-adds per element for verification and interpolation.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from tfpriv import checks
from tfpriv.crypto.shamir import field
from tfpriv.errors import DecodingError
from tfpriv.rng import Prg, RandomSource, as_prg

_SAMPLE_SIZE = 64
_MIN_FULL_PROBES = 2
_ESCAPE_BITS = 40

Poly = List[int]



def _trim(a: Poly) -> Poly:
    while a and a[-1] == 0:
        a = a[:-1]
    return a


def _sub(a: Poly, b: Poly, p: int) -> Poly:
    n = max(len(a), len(b))
    a, b = a + [0] * (n - len(a)), b + [0] * (n - len(b))
    return _trim([(u - v) % p for u, v in zip(a, b)])


def _mul(a: Poly, b: Poly, p: int) -> Poly:
    if not a or not b:
        return []
    out = [0] * (len(a) + len(b) - 1)
    for i, u in enumerate(a):
        for j, v in enumerate(b):
            out[i + j] = (out[i + j] + u * v) % p
    return _trim(out)


def _divmod(a: Poly, b: Poly, p: int) -> Tuple[Poly, Poly]:
    """Polynomial division over GF(p); `b` must be non-zero (trimmed)."""
    a, quotient = list(a), [0] * max(len(a) - len(b) + 1, 0)
    inverse = pow(b[-1], -1, p)
    for shift in range(len(a) - len(b), -1, -1):
        c = a[shift + len(b) - 1] * inverse % p
        quotient[shift] = c
        for j, v in enumerate(b):
            a[shift + j] = (a[shift + j] - c * v) % p
    return _trim(quotient), _trim(a)


def _evaluate(a: Poly, x: int, p: int) -> int:
    acc = 0
    for c in reversed(a):
        acc = (acc * x + c) % p
    return acc


def _interpolate(xs: Sequence[int], ys: Sequence[int], p: int) -> Poly:
    """The polynomial of degree < len(xs) through the points (Lagrange form expanded)."""
    out: Poly = []
    for i, (xi, yi) in enumerate(zip(xs, ys)):
        basis, denominator = [1], 1
        for j, xj in enumerate(xs):
            if j != i:
                basis = _mul(basis, [-xj % p, 1], p)
                denominator = denominator * (xi - xj) % p
        scale = yi * pow(denominator, -1, p) % p
        out = _sub(out, [(-scale * c) % p for c in basis], p)
    return out


def gao_decode(xs: Sequence[int], ys: Sequence[int], threshold: int,
               modulus: int) -> Optional[Poly]:
    """The polynomial of degree < threshold within distance floor((m - t) / 2) of ys, or None.

    Gao (2003): g0 = prod (x - x_i), g1 = interpolant of ys; run the extended
    Euclidean algorithm on (g0, g1) until the remainder g has degree
    < (m + t) / 2, with g = u g0 + v g1; the message is g / v if v divides g
    and the quotient has degree < t.
    """
    p = modulus
    g0: Poly = [1]
    for x in xs:
        g0 = _mul(g0, [-x % p, 1], p)
    g1 = _interpolate(xs, ys, p)
    r_prev, r_cur, v_prev, v_cur = g0, g1, [], [1]
    while 2 * (len(r_cur) - 1) >= len(xs) + threshold:
        quotient, remainder = _divmod(r_prev, r_cur, p)
        r_prev, r_cur = r_cur, remainder
        v_prev, v_cur = v_cur, _sub(v_prev, _mul(quotient, v_cur, p), p)
    if not v_cur:
        return None
    message, remainder = _divmod(r_cur, v_cur, p)
    if remainder or len(message) > threshold:
        return None
    return message


def _probe(ys: np.ndarray, columns: np.ndarray, modulus: int, prg: Prg) -> List[int]:
    """sum_j r_j ys[:, j] mod p over the given columns, for random r_j, per party."""
    r = prg.uniform_mod(modulus, columns.size)
    combined = np.zeros(ys.shape[0], dtype=np.int64)
    step = 2**20  # products are reduced, so a chunk sums to < 2^51
    for start in range(0, columns.size, step):
        chunk = columns[start:start + step]
        products = ys[:, chunk] * r[start:start + step]
        np.remainder(products, modulus, out=products)
        combined = (combined + products.sum(axis=1)) % modulus
    return [int(z) for z in combined]


def _consistent(xs: Sequence[int], ys: np.ndarray, threshold: int, modulus: int) -> bool:
    """Whether every column of ys lies on one polynomial of degree < threshold."""
    if len(xs) == threshold:
        return True
    base = list(xs[:threshold])
    interpolation = [field.lagrange_coefficients(base, modulus, at=x) for x in xs[threshold:]]
    predicted = field.matmul_mod(interpolation, ys[:threshold], modulus)
    return np.array_equal(predicted, ys[threshold:])


def out_of_field(ys: np.ndarray, modulus: int) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """ys as int64 with every row that holds a value outside [0, p) zeroed, and those rows.

    A negative share or one >= p cannot come from an honest party: it is a wrong
    share to correct (and report), not a reason to stop.
    """
    ys = np.asarray(ys)
    if not np.issubdtype(ys.dtype, np.integer):
        raise TypeError(f'shares must be an integer array of field elements, got dtype {ys.dtype}')
    ys = ys.astype(np.int64)
    if ys.ndim == 0:
        return ys, ()
    rows = ys.reshape(len(ys), -1)
    invalid = tuple(int(i) for i in np.flatnonzero(((rows < 0) | (rows >= modulus)).any(axis=1)))
    if invalid:
        ys = ys.copy()
        ys[list(invalid)] = 0
    return ys, invalid


def decode(xs: Sequence[int], ys: np.ndarray, threshold: int, modulus: int,
           rng: Union[RandomSource, Prg, None] = None) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """Reconstructs Shamir-shared field elements despite up to floor((m - t) / 2) wrong shares.

    Args:
      xs: the m >= threshold distinct x-coordinates of the shares.
      ys: int64 array of shape (m, ...): ys[i] is party i's share of every element
        (a row with a value outside [0, p) counts as a wrong share).
      threshold: t, the degree bound of the sharing polynomials plus one.
      modulus: the prime p < 2^31.
      rng: randomness for the probes (default OS CSPRNG; it only affects speed
        and the ~m/p chance of a spurious error, never the result).

    Returns:
      (secret, bad_xs): the elements f(0), shape ys.shape[1:], and the sorted
      x-coordinates of the parties whose shares were wrong.

    Raises:
      DecodingError: more than floor((m - t) / 2) parties are wrong (when m = t + 1
        one wrong share is detected but cannot be located).
      ValueError: bad arguments.
    """
    modulus = field.check_modulus(modulus)
    points = field.check_xs(xs, modulus)
    ys, invalid = out_of_field(ys, modulus)
    if ys.ndim == 0 or ys.shape[0] != len(points):
        raise ValueError(f'ys must have one row per x-coordinate ({len(points)}), '
                         f'got shape {ys.shape}')
    threshold = checks.integer('threshold', threshold, 1, len(points))
    prg = as_prg(rng)
    shape = ys.shape[1:]
    flat = ys.reshape(len(points), -1)
    size = flat.shape[1]
    correctable = (len(points) - threshold) // 2
    sample = prg.uniform_mod(max(size, 2), min(_SAMPLE_SIZE, size)) % max(size, 1)
    # Enough full probes that a wrong party escapes all of them with probability
    # m p^-probes < 2^-40 (two for p ~ 2^31, more in the small fields of tests).
    full_probes = max(_MIN_FULL_PROBES,
                      math.ceil((_ESCAPE_BITS + math.log2(len(points))) / math.log2(modulus)))
    bad = set(invalid)  # values outside [0, p) are wrong shares like any other
    for columns in [sample] + [np.arange(size)] * full_probes:
        word = _probe(flat, columns, modulus, prg)
        message = gao_decode(points, word, threshold, modulus)
        if message is None:
            break
        bad |= {i for i, x in enumerate(points) if _evaluate(message, x, modulus) != word[i]}
        if len(bad) > correctable:
            break
        good = [i for i in range(len(points)) if i not in bad]
        good_xs = [points[i] for i in good]
        if _consistent(good_xs, flat[good], threshold, modulus):
            secret = field.combine(field.lagrange_coefficients(good_xs[:threshold], modulus),
                                   flat[good[:threshold]], modulus)
            return secret.reshape(shape), tuple(sorted(points[i] for i in bad))
    raise DecodingError(
        f'more than {correctable} of the {len(points)} shares are wrong: with threshold '
        f'{threshold}, {len(points)} shares can correct at most floor((m - t) / 2) = '
        f'{correctable}; gather more shares or exclude the faulty parties'
        + (f' (values outside [0, {modulus}) came from x = {[points[i] for i in invalid]})'
           if invalid else ''))
