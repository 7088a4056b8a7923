"""Exact secure comparison by bit decomposition, and bit-times-value products.

Sign (most significant bit) of an arithmetically shared x, for any signed
x in [-2^63, 2^63) — exact, not a polynomial approximation:

 1. The dealer's edaBit gives [r] and XOR shares of the bits of s = -r mod 2^64.
    The parties open c = x + r (uniform, one round). Then x = c + s mod 2^64,
    a sum of a public word and a binary-shared word.
 2. Bit 63 of c + s is c_63 xor s_63 xor k, where k is the carry out of the
    low 63 bits. With generate g_j = c_j AND s_j and propagate
    p_j = c_j XOR s_j (both local, c being public), k is the generate bit of
    the whole block of bits 0..62, combined as a binary tree:
    (G, P)_hi o (G, P)_lo = (G_hi xor (P_hi AND G_lo), P_hi AND P_lo)
    (carry-lookahead, Brent and Kung 1982): 6 levels, 62 combinations, run as
    Beaver AND gates on XOR shares with P_hi masked once for both ANDs.
 3. The bits are handled as bit planes (`ring.bit_planes`): plane j packs bit
    j of 8 values per byte, so one byte-wise AND works on 8 comparisons and a
    level costs 3 bits of messages per combination and comparison, not words.

The result is the bit <msb(x)> in XOR shares (bool), after 7 rounds. Two more
primitives turn it into something arithmetic, each with one dealer bundle and
one round:

  * `to_arithmetic` (B2A): with a daBit (<rho>, [rho]) open e = b xor rho and
    set [b] = e + [rho] - 2 e [rho].
  * `bit_times` (bit injection): to get [b y] for a value y, also open
    d = y - a with the dealer's [a], [rho a]; then [rho y] = d [rho] + [rho a]
    and [b y] = e [y] + (1 - 2 e) [rho y], since b = e + rho - 2 e rho.

Security: every opened value (c, the AND masks, e, d) is masked by fresh
uniform dealer randomness, so the views of any n - 1 parties are simulatable.
"""

from __future__ import annotations

import numpy as np

from tfpriv.crypto.smpc.party import Cluster, Shares
from tfpriv.crypto.smpc.protocols import beaver
from tfpriv.crypto.smpc.ring import bit_planes, unpack_plane

_ONE = np.uint64(1)
_LOW_BITS = 63  # the carry into bit 63 comes from bits 0..62


def msb(cluster: Cluster, xs: Shares) -> Shares:
    """XOR shares (bool) of the sign bit of x; 7 rounds."""
    shape = xs[0].shape
    bundles = cluster.dealer.edabit(shape)
    (c,) = cluster.network.broadcast([(x + r,) for x, (r, _) in zip(xs, bundles)], (np.add,))
    c_planes = bit_planes(c)
    low = c_planes[:_LOW_BITS]
    gen = [low & s[:_LOW_BITS] for _, s in bundles]
    prop = [s[:_LOW_BITS] ^ low if i == 0 else s[:_LOW_BITS] for i, (_, s) in enumerate(bundles)]
    while gen[0].shape[0] > 1:
        pairs = gen[0].shape[0] // 2
        high_prop = [p[1:2 * pairs:2] for p in prop]
        low_both = [np.stack([g[0:2 * pairs:2], p[0:2 * pairs:2]]) for g, p in zip(gen, prop)]
        both = beaver(cluster, high_prop, low_both, np.bitwise_and, binary=True)
        gen = [np.concatenate([g[1:2 * pairs:2] ^ z[0], g[2 * pairs:]]) for g, z in zip(gen, both)]
        prop = [np.concatenate([z[1], p[2 * pairs:]]) for p, z in zip(prop, both)]
    top = [s[_LOW_BITS] ^ g[0] for (_, s), g in zip(bundles, gen)]
    top[0] = top[0] ^ c_planes[_LOW_BITS]
    return [unpack_plane(plane, shape) for plane in top]


def negate_bits(bits: Shares) -> Shares:
    """XOR shares of NOT b (party 0 flips its share)."""
    return [~b if i == 0 else b for i, b in enumerate(bits)]


def to_arithmetic(cluster: Cluster, bits: Shares) -> Shares:
    """Arithmetic shares (uint64) of XOR-shared bits; one round."""
    bundles = cluster.dealer.dabit(bits[0].shape)
    (e,) = cluster.network.broadcast([(b ^ rb,) for b, (rb, _) in zip(bits, bundles)],
                                     (np.bitwise_xor,))
    e = e.astype(np.uint64)
    out = []
    for i, (_, rho) in enumerate(bundles):
        z = rho - (e << _ONE) * rho
        out.append(z + e if i == 0 else z)
    return out


def bit_times(cluster: Cluster, bits: Shares, ys: Shares) -> Shares:
    """Arithmetic shares of b y for XOR-shared bits b and shared y (shapes broadcast); one round."""
    bundles = cluster.dealer.bit_injection(bits[0].shape, ys[0].shape)
    e, d = cluster.network.broadcast(
        [(b ^ rb, y - a) for b, y, (rb, _, a, _) in zip(bits, ys, bundles)],
        (np.bitwise_xor, np.add))
    e = e.astype(np.uint64)
    sign = _ONE - (e << _ONE)  # 1 - 2e: +1 or -1 mod 2^64
    return [e * y + sign * (rho * d + rho_a) for y, (_, rho, _, rho_a) in zip(ys, bundles)]
