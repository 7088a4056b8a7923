"""Threshold decryption: the BFV secret key Shamir-shared among the key holders.

Setup (dealer-free, `multiparty.setup_keys`). Every holder i Shamir-shares
its own ternary key share s_i modulo every RNS prime p_i with the project's
`tfpriv.crypto.shamir.field.split_field` at the same points x_1..x_N
(`share_polynomial`; CRT glues the per-prime sharings into one sharing over
Z_q, coefficient-wise on R_q), and holder j adds the shares it receives:
s_j = sum_i f_i(x_j) = f(x_j) for f = sum_i f_i, a polynomial of degree
T - 1 with f(0) = sum_i s_i = s. Nobody ever holds s.

Decryption of (c0, c1) by a set S of at least T parties. With the Lagrange
coefficients lambda_j of S at 0 (`field.lagrange_coefficients`, per prime),
sum_{j in S} lambda_j s_j = s, so party j publishes the partial decryption
    d_j = lambda_j c1 s_j + e_j  (mod q),
with e_j uniform in [-2^(b-1), 2^(b-1)) (smudging noise), and anyone computes
c0 + sum_j d_j = round(q m / t) + E + sum_j e_j and rounds as in `bfv`.

Security argument (semi-honest parties, the server included; Asharov et al.,
Eurocrypt 2012, Sec. 4, and Mouchet et al., PoPETs 2021, for the smudging
lemma).
* Fewer than T parties learn nothing about s beyond their own s_i: their
  Shamir shares f(x_j) are uniformly distributed whatever the other holders'
  s_i are (each f_i has T - 1 uniform coefficients). Without s, an individual
  client's ciphertext (b u + e0 + Delta m, a u + e1) is pseudo-random under
  RLWE, so neither the server (which holds no share) nor any T - 1 colluding
  holders can decrypt it.
* Partial decryptions reveal only the aggregate. d_j hides lambda_j s_j:
  given c1, (c1, c1 lambda_j s_j + e_j) is an RLWE sample with a uniform secret.
  After combining, the only value beyond m that is revealed is E + sum_j e_j.
  E depends on s and on the clients' ephemeral randomness; each e_j is uniform
  on 2^b values with 2^(b-1) >= 2^kappa |E|, so the distribution of E + e_j
  is within statistical distance |E| / 2^(b-1) <= 2^-kappa per coefficient of
  one that does not depend on E (smudging lemma): the transcript can be
  simulated from m alone. `smudging_bits` picks b from `kappa` and the tracked
  noise bound, and raises if q/(2t) leaves no room for it.
* T parties together can reconstruct s: the threshold is the trust
  assumption, as for Shamir secure aggregation. Parties must answer only for
  the aggregate ciphertext of the round (not for an individual client's).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Dict, Sequence, Union

import numpy as np

from tfpriv import checks
from tfpriv.crypto.shamir import field
from tfpriv.crypto.rlwe.bfv import Ciphertext, Noise, decode_phase
from tfpriv.crypto.rlwe.keys import ring_of
from tfpriv.crypto.rlwe.params import Params
from tfpriv.crypto.rlwe.rns import FixedOperand
from tfpriv.rng import Prg, RandomSource, as_prg

DEFAULT_KAPPA = 40


@dataclasses.dataclass(eq=False)
class KeyShare:
    """Party j's Shamir share of s: residues (L, n) at the point x."""

    params: Params
    x: int
    share: np.ndarray = dataclasses.field(repr=False)  # key material: never in a repr or log

    @functools.cached_property
    def operand(self) -> FixedOperand:
        return ring_of(self.params).fixed(self.share[:, None, :])


def check_threshold(threshold: int, num_parties: int) -> None:
    """Raises unless 1 <= threshold <= num_parties (ints)."""
    num_parties = checks.integer('num_parties', num_parties, minimum=1)
    checks.integer('threshold', threshold, minimum=1, maximum=num_parties)


def share_polynomial(params: Params, residues: np.ndarray, threshold: int, num_parties: int,
                     rng: Union[RandomSource, Prg, None] = None) -> np.ndarray:
    """Shamir-shares a polynomial of R_q (residues (L, n)) among parties x = 1..N modulo
    every RNS prime; any `threshold` reconstruct. Returns residues (N, L, n)."""
    check_threshold(threshold, num_parties)
    return np.stack([field.split_field(residues[row], threshold, num_parties, p, rng)
                     for row, p in enumerate(params.primes)], axis=1)


def smudging_bits(params: Params, noise: Noise, num_parties: int,
                  kappa: int = DEFAULT_KAPPA) -> int:
    """Width b of each party's smudging noise: the largest b with
    noise + num_parties 2^(b-1) below q/(2t), required to give 2^(b-1) >= 2^kappa |E|.

    Raises:
      ValueError: q/(2t) leaves less than kappa bits above the ciphertext noise.
    """
    room = params.q / (2 * params.t) - 1 - noise.bound()
    bits = int(math.floor(math.log2(room / num_parties))) + 1 if room > num_parties else 0
    have = bits - 1 - math.log2(max(noise.bound(), 1.0))
    if have < kappa:
        raise ValueError(
            f'smudging needs 2^{kappa} times the noise bound 2^{math.log2(noise.bound()):.1f} '
            f'but q/(2t) only leaves 2^{bits - 1} per party ({have:.1f} bits): use a smaller t, '
            f'uncompressed ciphertexts or a larger q')
    return bits


def partial_decrypt(key: KeyShare, ct: Ciphertext, xs: Sequence[int], bits: int,
                    rng: Union[RandomSource, Prg, None] = None) -> np.ndarray:
    """d_j = lambda_j c1 s_j + e_j mod q for the decrypting set with points `xs`."""
    if key.params != ct.params:
        raise ValueError('the key share and the ciphertext use different parameters')
    xs = [int(x) for x in xs]
    if key.x not in xs:
        raise ValueError(f'party x = {key.x} is not in the decrypting set {xs}')
    ring, index = ring_of(ct.params), xs.index(key.x)
    lambdas = [int(field.lagrange_coefficients(xs, p)[index]) for p in ct.params.primes]
    product = key.operand.times(ct.c1)
    scaled = product * np.array(lambdas, dtype=np.int64).reshape(-1, 1, 1) % ring.p
    return ring.add(scaled, smudging_residues(as_prg(rng), ct.params.primes, ct.c0.shape[1:],
                                              bits))


def smudging_residues(prg: Prg, primes: Sequence[int], shape, bits: int) -> np.ndarray:
    """Residues (L, *shape) of e uniform in [-2^(bits-1), 2^(bits-1)), for any width.

    e + 2^(bits-1) = sum_k w_k 2^(64 k) is drawn as ceil(bits / 64) uniform words
    (the top one shifted down to the remaining bits), reduced word by word modulo
    each prime p < 2^31: every product (w_k mod p)(2^(64 k) mod p) stays below 2^62.
    """
    bits = checks.integer('bits', bits, 1)
    widths = [64] * ((bits - 1) // 64) + [bits - 64 * ((bits - 1) // 64)]
    words = [prg.uint64(shape) >> np.uint64(64 - width) for width in widths]
    out = np.empty((len(primes),) + tuple(shape), dtype=np.int64)
    for row, p in enumerate(primes):
        acc = np.full(shape, (-pow(2, bits - 1, p)) % p, dtype=np.uint64)
        for k, word in enumerate(words):
            factor = np.uint64(pow(2, 64 * k, p))
            acc = (acc + (word % np.uint64(p)) * factor) % np.uint64(p)
        out[row] = acc.astype(np.int64)
    return out


def combine(ct: Ciphertext, partials: Dict[int, np.ndarray], threshold: int,
            bits: int) -> np.ndarray:
    """The plaintext (B, n) from the partial decryptions {x_j: d_j} of >= threshold parties.

    Raises:
      ValueError: fewer than `threshold` partial decryptions.
      NoiseBudgetError, PlaintextOverflowError: as `bfv.decrypt`.
    """
    if len(partials) < threshold:
        raise ValueError(f'{len(partials)} partial decryptions, at least {threshold} needed')
    noise = ct.noise + Noise(0.0, len(partials) * 2.0**(bits - 1), 0)
    noise.check(ct.params)
    ring = ring_of(ct.params)
    total = ct.c0
    for partial in partials.values():
        total = ring.add(total, partial)
    return decode_phase(ct.params, total)
