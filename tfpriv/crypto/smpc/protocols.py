"""Interactive arithmetic protocols on shares: Beaver products and exact truncation.

Both are written party by party: entry i of every list belongs to party i and
is combined only with party i's own dealer bundle and with opened values.

Beaver multiplication (Beaver, CRYPTO 1991), for any bilinear map ⋆ (element-wise
product, matmul, conv2d; AND on binary shares): with a triple [a], [b], [a ⋆ b]
the parties open d = x - a and e = y - b (one round; both are uniform, hence
say nothing) and set

    [x ⋆ y] = [a ⋆ b] + d ⋆ [b] + [a] ⋆ e + d ⋆ e,

the public d ⋆ e being added by party 0 only (folded into d ⋆ ([b_0] + e)).
The masks may broadcast: a value multiplied by several others is opened once.

Truncation by m bits of a value x with |x| < 2^62, for any number of parties
(PySyft's local share truncation is only correct, with an error probability,
for two parties). With the dealer's r, r_63 (bit 63 of r) and
t = (r mod 2^63) >> m, the parties shift x' = x + 2^62 into [0, 2^63) and open
c = x' + r mod 2^64 (uniform). Writing c' = c mod 2^63, the carry into bit 63
of x' + (r mod 2^63) is w = c_63 xor r_63 = c_63 + r_63 - 2 c_63 r_63, linear in
[r_63]; over the integers x' = c' - (r mod 2^63) + 2^63 w, so

    [x >> m] = (c' >> m) - [t] + 2^(63-m) [w] - 2^(62-m),

which equals floor(x / 2^m) + b, where b in {0, 1} is the borrow between the
low m bits of c' and of r that we do not compute. The result is floor(x / 2^m)
or floor(x / 2^m) + 1: an error below one unit in the last place (|error| <
2^-f after decoding), with any number of parties and no failure probability.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tfpriv.crypto.smpc.party import Cluster, Shares

Bilinear = Callable[[np.ndarray, np.ndarray], np.ndarray]
_HALF = np.uint64(2**62)
_LOW_63 = np.uint64(2**63 - 1)


def beaver(cluster: Cluster, xs: Shares, ys: Shares, op: Bilinear, binary: bool = False) -> Shares:
    """Shares of op(x, y) from shares of x and y; one round.

    With `binary`, the shares are XOR shares and `op` must be bitwise AND.
    """
    add = np.bitwise_xor if binary else np.add
    sub = np.bitwise_xor if binary else np.subtract
    bundles = cluster.dealer.triple(op, xs[0].shape, ys[0].shape, binary, xs[0].dtype)
    d, e = cluster.network.broadcast(
        [(sub(x, a), sub(y, b)) for x, y, (a, b, _) in zip(xs, ys, bundles)], (add, add))
    out = []
    for i, (a, b, c) in enumerate(bundles):
        z = add(c, op(d, add(b, e) if i == 0 else b))
        out.append(add(z, op(a, e)))
    return out


def truncate(cluster: Cluster, xs: Shares, shift: int) -> Shares:
    """Shares of floor(x / 2^shift) (or one more) for |x| < 2^62; one round."""
    if shift == 0:
        return xs
    bundles = cluster.dealer.truncation_pair(xs[0].shape, shift)
    (c,) = cluster.network.broadcast(
        [((x + _HALF if i == 0 else x) + r,) for i, (x, (r, _, _)) in enumerate(zip(xs, bundles))],
        (np.add,))
    c_msb = c >> np.uint64(63)
    twice_c_msb = c_msb << np.uint64(1)
    public = ((c & _LOW_63) >> np.uint64(shift)) - np.uint64(2**(62 - shift))
    carry_weight = np.uint64(2**(63 - shift))
    out = []
    for i, (_, r_msb, low) in enumerate(bundles):
        w = r_msb - twice_c_msb * r_msb
        if i == 0:
            w += c_msb
        z = carry_weight * w - low
        out.append(z + public if i == 0 else z)
    return out
