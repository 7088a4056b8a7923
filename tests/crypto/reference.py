"""Reference arithmetic for the crypto tests, in Python integers (not the code under test)."""

from typing import List, Sequence


def polynomial_mod_p(xs: Sequence[int], ys: Sequence[int], p: int) -> List[int]:
    """The coefficients c_0..c_{k-1} of the polynomial of degree < k through the k points
    (x_i, y_i) over GF(p): Gauss-Jordan elimination of the Vandermonde system."""
    k = len(xs)
    rows = [[pow(int(x), j, p) for j in range(k)] + [int(y) % p] for x, y in zip(xs, ys)]
    for col in range(k):
        pivot = next(r for r in range(col, k) if rows[r][col])
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inverse = pow(rows[col][col], p - 2, p)
        rows[col] = [a * inverse % p for a in rows[col]]
        for r in range(k):
            if r != col and rows[r][col]:
                factor = rows[r][col]
                rows[r] = [(a - factor * b) % p for a, b in zip(rows[r], rows[col])]
    return [row[k] for row in rows]
