"""Multiparty BFV without a dealer: collective key generation and t-of-N decryption.

The construction of Mouchet, Troncoso-Pastoriza, Bossuat and Hubaux,
"Multiparty Homomorphic Encryption from Ring-Learning-with-Errors" (PoPETs
2021, Sec. 4: CKG; Sec. 5: threshold variant), as in Lattigo's `multiparty`
package. N key holders (the clients, at points x = 1..N) and a server:

1. Secret-key shares. Holder i draws its own ternary s_i. The key
   s = sum_i s_i is never formed by anyone.
2. Collective public key. A common random polynomial a is expanded with
   `tfpriv.rng.Prg` from a public 32-byte seed. Holder i publishes
   p_i = -(a s_i) + e_i with e_i ~ D_{Z, sigma}, and the server publishes
   pk = (sum_i p_i, a) = (-(a s) + e, a) with e = sum_i e_i: an ordinary BFV
   public key for s (its error has variance N sigma^2).
3. Threshold re-sharing. Holder i Shamir-shares s_i with threshold T
   among the N holders, modulo every RNS prime (`share_polynomial`),
   and sends share j to holder j over a private holder-to-holder channel.
   Holder j adds what it receives: sum_i f_i(x_j) = f(x_j) with
   f = sum_i f_i of degree T - 1 and f(0) = s, a Shamir share of s.
4. Encryption under pk is plain BFV. The noise is larger than under a
   single key: E = e0 + e1 s + e u with ||s||_2^2 <= N^2 n (worst case,
   |s| <= N per coefficient) and Var(e) = N sigma^2 (`fresh_noise`).
5. Decryption of the aggregate by any T holders: partial decryptions with
   smudging noise, combined by the server (`threshold.partial_decrypt`,
   `threshold.combine`; the argument is in `threshold`'s docstring).

Threat model. The server is honest-but-curious: it follows the protocol and
tries to learn individual updates from what it receives. Up to T - 1 key
holders may collude with it and pool everything they hold (their s_i and
Shamir shares). The server receives only the public-key shares p_i, the
clients' ciphertexts and the T partial decryptions of the aggregate; all of it
is recorded in a `ServerView`. It never holds a secret key or any Shamir share.
* p_i is an RLWE sample with secret s_i: it hides s_i (RLWE assumption).
* The T - 1 colluders' Shamir shares are uniform whatever the honest holders'
  s_i are; together with their own s_i they know s only up to the sum of the
  honest holders' s_i, a secret of RLWE strength, so an individual ciphertext
  stays pseudo-random to them (tested in tests/crypto/rlwe/test_multiparty.py).
* The partial decryptions reveal only the aggregate, up to a statistical
  distance 2^-kappa per coefficient (smudging lemma, Asharov et al. 2012).
Assumptions: every holder is online for the key setup (steps 1-3; a holder
that drops out then forces a new setup), the holder-to-holder channels are
private and authenticated (in deployment: encrypted under pairwise keys and
relayed by the server, which then sees only ciphertexts), the common seed is
drawn by the honest-but-curious server, and holders partially decrypt only the
round's aggregate. T colluding holders can reconstruct s.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfpriv.crypto.rlwe import bfv, keys, sampling
from tfpriv.crypto.rlwe.threshold import (DEFAULT_KAPPA, KeyShare, check_threshold, combine,
                                          partial_decrypt, share_polynomial, smudging_bits)
from tfpriv.crypto.rlwe.params import Params
from tfpriv.rng import Prg, RandomSource, as_prg

RESIDUE_BYTES = 4  # residues are below 2^27 and travel as uint32


@dataclasses.dataclass(eq=False)
class KeyHolder:
    """Key holder at point x: its own ternary share s_i and, once re-shared, its Shamir
    share of s. Neither is shown by repr."""

    params: Params
    x: int
    secret_share: np.ndarray = dataclasses.field(repr=False)
    key_share: Optional[KeyShare] = dataclasses.field(default=None, repr=False)

    @classmethod
    def generate(cls, params: Params, x: int, rng: Optional[RandomSource] = None) -> 'KeyHolder':
        """A holder with a fresh ternary secret-key share (coefficients uniform in {-1, 0, 1})."""
        return cls(params, x, sampling.ternary(as_prg(rng), (params.n,)))

    def public_key_share(self, seed: bytes, rng: Optional[RandomSource] = None) -> np.ndarray:
        """p_i = -(a s_i) + e_i mod q over the common a expanded from `seed`; (L, 1, n)."""
        ring = keys.ring_of(self.params)
        a = keys.uniform_poly(self.params, seed, 1)
        error = sampling.gaussian(as_prg(rng), (1, self.params.n), self.params.sigma)
        secret = ring.fixed(ring.from_signed(self.secret_share)[:, None, :])
        return ring.sub(ring.from_signed(error), secret.times(a))

    def reshare(self, threshold: int, num_parties: int,
                rng: Optional[RandomSource] = None) -> np.ndarray:
        """Shamir shares of s_i for holders x = 1..N, residues (N, L, n); row j goes to x = j+1."""
        residues = keys.ring_of(self.params).from_signed(self.secret_share)
        return share_polynomial(self.params, residues, threshold, num_parties, rng)

    def receive(self, shares: Sequence[np.ndarray]) -> None:
        """Sums the shares of every holder's s_i sent to this holder into its share of s."""
        primes = np.array(self.params.primes, dtype=np.int64).reshape(-1, 1)
        total = np.zeros((self.params.num_primes, self.params.n), dtype=np.int64)
        for share in shares:
            total = (total + share) % primes
        self.key_share = KeyShare(self.params, self.x, total)

    def partial_decrypt(self, ct: bfv.Ciphertext, xs: Sequence[int], bits: int,
                        rng: Optional[RandomSource] = None) -> np.ndarray:
        """This holder's smudged partial decryption for the decrypting set `xs`."""
        if self.key_share is None:
            raise ValueError(f'key holder x = {self.x} has no share of s yet: run the '
                             're-sharing (setup_keys) first')
        return partial_decrypt(self.key_share, ct, xs, bits, rng)


def secret_norm2(params: Params, num_parties: int) -> int:
    """Worst-case ||s||_2^2 = N^2 n for s the sum of N ternary shares."""
    return num_parties * num_parties * params.n


def fresh_noise(params: Params, num_parties: int, plain: int) -> bfv.Noise:
    """Noise of a fresh public-key encryption under an N-party collective key
    (`bfv.fresh_noise` with `key_parties=N`; a new independence label)."""
    return bfv.fresh_noise(params, plain, key_parties=num_parties)


@dataclasses.dataclass(eq=False)
class CollectiveKey:
    """The collective public key of `num_parties` holders."""

    public: keys.PublicKey
    num_parties: int

    @classmethod
    def from_shares(cls, params: Params, seed: bytes,
                    shares: Dict[int, np.ndarray]) -> 'CollectiveKey':
        """pk = (sum_i p_i, a) from every holder's public-key share {x_i: p_i}.

        Raises:
          ValueError: a share of the wrong shape or with residues outside [0, p).
        """
        ring = keys.ring_of(params)
        b = np.zeros((params.num_primes, 1, params.n), dtype=np.int64)
        for x, share in shares.items():
            share = np.asarray(share)
            if share.shape != b.shape or not np.issubdtype(share.dtype, np.integer) \
                    or np.any(share < 0) or np.any(share >= ring.p):
                raise ValueError(f'public-key share of holder x = {x} must be residues in '
                                 f'[0, p) of shape {b.shape}, got {share.dtype} {share.shape}')
            b = ring.add(b, share.astype(np.int64))
        key_id = hashlib.sha256(b'tfpriv-rlwe-collective' + seed).digest()[:keys.KEY_ID_BYTES]
        public = keys.PublicKey(params, b, keys.uniform_poly(params, seed, 1), seed, key_id)
        return cls(public, len(shares))

    @property
    def params(self) -> Params:
        return self.public.params

    @property
    def secret_norm2(self) -> int:
        return secret_norm2(self.params, self.num_parties)

    def fresh_noise(self, plain: int) -> bfv.Noise:
        return fresh_noise(self.params, self.num_parties, plain)

    def encrypt(self, plaintext: np.ndarray,
                rng: Optional[RandomSource] = None) -> bfv.Ciphertext:
        """BFV encryption under pk, with the noise record of the collective key."""
        ct = bfv.encrypt(self.public, plaintext, rng)
        return dataclasses.replace(ct, noise=self.fresh_noise(ct.noise.plain))


@dataclasses.dataclass
class ServerView:
    """Everything the server receives in one round (its transcript): the common seed,
    the public-key shares, the clients' serialized ciphertexts, and the partial
    decryptions of the aggregate (with the smudging width it asked for)."""

    seed: bytes
    public_key_shares: Dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    ciphertexts: List[bytes] = dataclasses.field(default_factory=list)
    partial_decryptions: Dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    smudging_bits: int = 0

    @property
    def decrypting_set(self) -> Tuple[int, ...]:
        return tuple(self.partial_decryptions)


@dataclasses.dataclass
class SetupCost:
    """Bytes one holder sends in the key setup: its public-key share and its N - 1
    Shamir shares of s_i (to the other holders)."""

    public_key_share_bytes: int
    reshare_bytes: int

    @property
    def bytes_per_holder(self) -> int:
        return self.public_key_share_bytes + self.reshare_bytes


def setup_keys(params: Params, num_parties: int, threshold: int,
               rng: Optional[RandomSource] = None
               ) -> Tuple[List[KeyHolder], CollectiveKey, ServerView, SetupCost]:
    """Runs steps 1-3 of the module doc among `num_parties` simulated holders.

    Returns the holders (client side), the collective key, the server's view so far
    and the bytes each holder sent.
    """
    check_threshold(threshold, num_parties)
    holders = [KeyHolder.generate(params, x, rng) for x in range(1, num_parties + 1)]
    view = ServerView((rng if rng is not None else RandomSource()).bytes(Prg.SEED_BYTES))
    view.public_key_shares = {h.x: h.public_key_share(view.seed, rng) for h in holders}
    collective = CollectiveKey.from_shares(params, view.seed, view.public_key_shares)
    dealt = [h.reshare(threshold, num_parties, rng) for h in holders]  # private channels
    for j, holder in enumerate(holders):
        holder.receive([shares[j] for shares in dealt])
    residues = params.num_primes * params.n * RESIDUE_BYTES
    return holders, collective, view, SetupCost(residues, (num_parties - 1) * residues)


def decrypt(ct: bfv.Ciphertext, decrypting: Sequence[KeyHolder], threshold: int,
            view: ServerView, kappa: int = DEFAULT_KAPPA,
            rng: Optional[RandomSource] = None) -> np.ndarray:
    """Step 5: the holders in `decrypting` (at least T) partially decrypt `ct`, the server
    records their messages in `view` and combines them into the plaintext (B, n).

    Raises:
      ValueError: fewer than `threshold` holders, or no room for the smudging noise.
    """
    xs = [holder.x for holder in decrypting]
    if len(xs) < threshold:
        raise ValueError(f'{len(xs)} key holders asked to decrypt, at least {threshold} needed')
    bits = view.smudging_bits = smudging_bits(ct.params, ct.noise, len(xs), kappa)
    view.partial_decryptions = {h.x: h.partial_decrypt(ct, xs, bits, rng) for h in decrypting}
    return combine(ct, view.partial_decryptions, threshold, bits)
