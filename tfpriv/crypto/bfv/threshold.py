"""Threshold decryption: the BFV secret key Shamir-shared among the clients.

Sharing: for each RNS prime p_i the ternary key s (as residues mod p_i) is
split with `tfpriv.crypto.field.split_field` into `num_parties` Shamir shares
of threshold t; party j holds y_j = (f_i(x_j))_i, a vector of n residues per
prime. For a set X of at least t parties with Lagrange coefficients lambda_j
(`lagrange_coefficients`, per prime), sum_j lambda_j y_j = s mod p_i.

Partial decryption of a ciphertext (c0, c1) by party j in X:
  d_j = lambda_j c1 y_j + e_j  (mod p_i, for every i),
with c1 lifted to centred integers and e_j a smudging polynomial uniform in
[-B, B]. The combiner adds the d_j: mod every p_i the sum is c1 s + E with
E = sum e_j, and since |c1 s + E| < P / 2 the CRT gives the integer c1 s + E
exactly, hence c0 + c1 s + E = Delta m + v + E mod q; m is recovered while the
tracked |v| + t B < Delta / 2 (checked before combining).

Security argument (semi-honest parties, after Asharov et al., EUROCRYPT 2012,
and Boneh et al., CRYPTO 2018, "Threshold cryptosystems from threshold FHE"):
  * Any t - 1 parties hold t - 1 Shamir shares, which are uniform and
    independent of s (Shamir 1979), so their view of the key is simulatable
    and they cannot decrypt; neither can the server, which holds no share.
    An individual client's ciphertext is never decrypted: partial decryptions
    are only produced for the aggregate the combiner names (honest parties must
    refuse others, see `partial_decrypt`'s `ct` argument).
  * A partial decryption d_j is lambda_j c1 y_j + e_j. Given the output m and
    the corrupted shares, the honest parties' d_j are uniform mod p_i subject to
    summing to (Delta m + v + E - c0) residues: the only thing they reveal
    beyond m is v + E, the aggregate noise blurred by the smudging E. v depends
    on the clients' encryption randomness and the key; E hides it statistically
    when B >> |v|: the statistical distance is about t |v| / B, i.e.
    log2(B / |v|) bits of smudging security (`smudging_bits`).
  * Mitigation: `RlweAggregator` draws a fresh key pair per round, so each key
    decrypts a single aggregate, and that round's v is one polynomial (n
    equations) in far more unknowns (s, the public-key error, every client's
    u, e1, e2); this is a heuristic argument, not a proof.
  * Limitation of this uint64 design (K <= 62): the smudging bound B uses the
    budget left above |v|: about 1 bit for 10 clients with 'bfv-4096',
    about 15 bits with 'bfv-4096-threshold' (q = 2^62), not the 40+ bits full
    noise flooding needs
    (that needs log2 q ~ 100, i.e. a multi-word modulus); key generation uses
    a trusted dealer (`share_key`), not a distributed key generation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence

import numpy as np

from tfpriv.crypto.bfv.scheme import (Ciphertext, KeyMismatchError, NoiseBudgetError, SecretKey,
                                      check_decryptable, decrypt_phase, ntt_context, round_phase)
from tfpriv.crypto.field import lagrange_coefficients, split_field
from tfpriv.rng import RandomSource


@dataclasses.dataclass(frozen=True)
class KeyShare:
    """Party x's Shamir share of the secret key: residues (L, n), one row per RNS prime."""

    x: int
    threshold: int
    ys: np.ndarray
    key_id: bytes


@dataclasses.dataclass(frozen=True)
class PartialDecryption:
    x: int
    xs: tuple
    values: np.ndarray  # (L, batch, n) residues
    smudge_bound: int


def share_key(sk: SecretKey, threshold: int, num_parties: int,
              rng: Optional[RandomSource] = None) -> List[KeyShare]:
    """Dealer step: Shamir-shares s per RNS prime; party j gets x = j + 1."""
    ctx = ntt_context(sk.params)
    per_prime = [split_field(np.mod(sk.s, p), threshold, num_parties, p, rng)
                 for p in ctx.primes]
    return [KeyShare(j + 1, threshold, np.stack([shares[j] for shares in per_prime]), sk.key_id)
            for j in range(num_parties)]


def smudging_bound(ct: Ciphertext, threshold: int) -> int:
    """B such that the t smudging terms use half the budget left: t B <= (Delta/2 - |v|) / 2."""
    room = 2.0 ** (ct.params.delta_bits - 1) - ct.noise
    if room <= 2 * threshold:
        raise NoiseBudgetError(f'no noise budget left for smudging {threshold} partial '
                               f'decryptions (noise bound {ct.noise:.4g})')
    return int(room / (2 * threshold))


def smudging_bits(ct: Ciphertext, threshold: int) -> float:
    """log2(B / |v|): the statistical hiding of the aggregate noise by the smudging."""
    return math.log2(smudging_bound(ct, threshold) / max(ct.noise, 1.0))


def _check_set(xs: Sequence[int], threshold: int) -> tuple:
    xs = tuple(int(x) for x in xs)
    if len(set(xs)) != len(xs):
        raise ValueError(f'party x-coordinates must be distinct, got {xs}')
    if len(xs) < threshold:
        raise ValueError(f'{len(xs)} parties cannot decrypt: the key was shared with '
                         f'threshold {threshold}, at least {threshold} partial decryptions needed')
    return xs


def partial_decrypt(share: KeyShare, ct: Ciphertext, xs: Sequence[int],
                    rng: Optional[RandomSource] = None) -> PartialDecryption:
    """Party `share.x`'s share lambda_x c1 y_x + e_x of the decryption of `ct` by set `xs`."""
    if share.key_id != ct.key_id:
        raise KeyMismatchError('key share and ciphertext belong to different keys')
    xs = _check_set(xs, share.threshold)
    if share.x not in xs:
        raise ValueError(f'party {share.x} is not in the decrypting set {xs}')
    check_decryptable(ct)
    rng = rng or RandomSource()
    params, ctx = ct.params, ntt_context(ct.params)
    index = xs.index(share.x)
    lam = np.array([lagrange_coefficients(xs, p)[index] for p in ctx.primes],
                   dtype=np.int64).reshape(-1, 1)
    key_hat = ctx.forward((share.ys * lam % ctx.p[:, 0])[:, None, :])
    values = ctx.inverse(ctx.forward(ctx.centred_residues(ct.c1, params.log_q)) * key_hat
                         % ctx.p)
    bound = smudging_bound(ct, share.threshold)
    noise = rng.uniform_mod(2 * bound + 1, ct.c1.shape) - bound
    return PartialDecryption(share.x, xs, (values + ctx.residues(noise)) % ctx.p, bound)


def combine(ct: Ciphertext, partials: Sequence[PartialDecryption], threshold: int) -> np.ndarray:
    """Plaintexts (batch, n) from at least `threshold` partial decryptions of `ct`."""
    if not partials:
        raise ValueError('no partial decryptions to combine')
    xs = _check_set([p.x for p in partials], threshold)
    if any(set(p.xs) != set(xs) for p in partials):
        raise ValueError('partial decryptions were made for different decrypting sets')
    smudge = sum(p.smudge_bound for p in partials)
    check_decryptable(dataclasses.replace(ct, noise=ct.noise + smudge))
    ctx = ntt_context(ct.params)
    total = sum(p.values for p in partials) % ctx.p
    return round_phase(ct.params, decrypt_phase(ct, ctx.lift(total, ct.params.log_q)))
