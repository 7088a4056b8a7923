"""Exact secure comparison by bit decomposition, and bit-times-value products.

Sign (most significant bit) of an arithmetically shared x, for any signed
x in [-2^63, 2^63) — exact, not a polynomial approximation:

 1. The dealer's edaBit gives [r] and the XOR shares <s> of s = -r mod 2^64.
    The parties open c = x + r (uniform, one round). Then x = c + s mod 2^64,
    a sum of a public word and a binary-shared word.
 2. bit 63 of c + s is c_63 xor s_63 xor carry_63, where carry_63 is the carry
    into bit 63. With generate g = c AND s and propagate p = c XOR s (both
    local, c being public), the carries are the parallel prefix
    (G, P) <- (G xor (P AND (G << k)), P AND (P << k)) for k = 1, 2, 4, ..., 32
    (Kogge and Stone, 1973). All 64 bit positions of a value live in one
    uint64 word, so a level is two word-wide ANDs, run as Beaver AND gates on
    XOR shares; P is masked once for both (6 rounds in all).

The result is the bit <msb(x)> in XOR shares (uint8). Two more primitives turn
it into something arithmetic, each with one dealer bundle and one round:

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

_SHIFTS = (1, 2, 4, 8, 16, 32)
_ONE = np.uint64(1)


def msb(cluster: Cluster, xs: Shares) -> Shares:
    """XOR shares (uint8) of the sign bit of x; 7 rounds."""
    bundles = cluster.dealer.edabit(xs[0].shape)
    (c,) = cluster.network.broadcast([(x + r,) for x, (r, _) in zip(xs, bundles)], (np.add,))
    gen = [c & s for _, s in bundles]
    prop = [s ^ c if i == 0 else s for i, (_, s) in enumerate(bundles)]
    for shift in _SHIFTS:
        k = np.uint64(shift)
        if shift != _SHIFTS[-1]:
            shifted = [np.stack([g << k, p << k]) for g, p in zip(gen, prop)]
            both = beaver(cluster, prop, shifted, np.bitwise_and, binary=True)
            gen = [g ^ z[0] for g, z in zip(gen, both)]
            prop = [z[1] for z in both]
        else:  # the last level needs the carries only
            last = beaver(cluster, prop, [g << k for g in gen], np.bitwise_and, binary=True)
            gen = [g ^ z for g, z in zip(gen, last)]
    c_top = c >> np.uint64(63)
    bits = []
    for i, ((_, s), g) in enumerate(zip(bundles, gen)):
        bit = (s >> np.uint64(63)) ^ ((g >> np.uint64(62)) & _ONE)
        bits.append((bit ^ c_top if i == 0 else bit).astype(np.uint8))
    return bits


def negate_bits(bits: Shares) -> Shares:
    """XOR shares of NOT b (party 0 flips its share)."""
    return [b ^ np.uint8(1) if i == 0 else b for i, b in enumerate(bits)]


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
