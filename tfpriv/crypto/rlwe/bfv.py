"""The BFV scheme (Brakerski 2012; Fan & Vercauteren 2012) with tracked noise.

A plaintext is a batch of polynomials m in R_t with centred integer
coefficients |m| < t/2. A ciphertext (c0, c1) in R_q^2 satisfies
c0 + c1 s = round(q m / t) + E (mod q), E the noise; decryption returns
round(t (c0 + c1 s) / q) mod t, which equals m exactly while
|E| < q / (2t) (Fan & Vercauteren, Lemma 1; the scaled encoding round(q m/t)
is the "Delta m" of the paper without its r_t(q) m error term).

Encryption:
* public key (b, a): u ternary, e0, e1 Gaussian; c = (b u + e0 + round(q m/t),
  a u + e1); E = e0 + e1 s - e u.
* symmetric (seeded): c1 = a uniform, expanded from a fresh 32-byte seed;
  c0 = -a s + e + round(q m/t); E = e. Serialized, c1 is just its seed.

Noise tracking. Every ciphertext carries a `Noise` record: the variance of
each coefficient of E, a deterministic rounding part, a bound on |m|, and the
set of fresh encryptions E descends from. Sums of operands with disjoint
ancestors (independent errors) add variances; when the ancestors may overlap
(`add(ct, ct)`, or unknown ancestry) the standard deviations add instead
(Minkowski: sd(X + Y) <= sd(X) + sd(Y) for any correlation), so the guard stays
sound: it never credits sqrt-of-sum growth to correlated terms. A product by a
public c scales the variance by c^2, by a polynomial p by ||p||_2^2. Decryption first checks
Z sqrt(variance) + rounding < q/(2t) - 1 with Z = 9 (a Gaussian exceeds 9
sigma with probability 2^-62 per coefficient) and |m| <= (t - 1)/2, and raises
`NoiseBudgetError` / `PlaintextOverflowError` instead of returning a result that
may be wrong. The variances use the worst case ||s||^2, ||u||^2 <= n.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import FrozenSet, Optional, Union

import numpy as np

from tfpriv import checks
from tfpriv.crypto.rlwe import sampling
from tfpriv.crypto.rlwe.keys import PublicKey, SecretKey, ring_of, uniform_poly
from tfpriv.crypto.rlwe.params import Params
from tfpriv.rng import Prg, RandomSource, as_prg
from tfpriv.errors import NoiseBudgetError, PlaintextOverflowError

Z_TAIL = 9.0
_FRESH_LABELS = itertools.count()  # one label per fresh encryption, for `Noise.ancestors`




@dataclasses.dataclass(frozen=True)
class Noise:
    """What is known about a ciphertext's noise E and plaintext m.

    Attributes:
      variance: variance of each coefficient of E (in units of Z_q).
      rounding: a deterministic bound on the rounding part of E.
      plain: a bound on |m| (centred coefficients).
      ancestors: labels of the fresh encryptions E is a combination of (empty: unknown).
    """

    variance: float
    rounding: float
    plain: int
    ancestors: FrozenSet[object] = frozenset()

    def __add__(self, other: 'Noise') -> 'Noise':
        independent = bool(self.ancestors and other.ancestors
                           and not self.ancestors & other.ancestors)
        variance = self.variance + other.variance if independent else \
            (math.sqrt(self.variance) + math.sqrt(other.variance)) ** 2
        return Noise(variance, self.rounding + other.rounding, self.plain + other.plain,
                     self.ancestors | other.ancestors)

    def scaled(self, l1: int, l2_squared: int) -> 'Noise':
        """After a product by a public polynomial with norms ||p||_1 = l1, ||p||_2^2."""
        return Noise(self.variance * l2_squared, self.rounding * l1, self.plain * l1,
                     self.ancestors)

    def with_variance(self, extra: float) -> 'Noise':
        """Plus an error of variance `extra` that may depend on this one (e.g. a rounding
        of the same ciphertext): standard deviations add."""
        return Noise((math.sqrt(self.variance) + math.sqrt(extra)) ** 2, self.rounding,
                     self.plain, self.ancestors)

    def bound(self) -> float:
        """High-probability bound on |E|."""
        return Z_TAIL * math.sqrt(self.variance) + self.rounding

    def budget_bits(self, params: Params) -> float:
        """log2 of (q/(2t)) / bound: how many bits of noise growth remain (< 0: none)."""
        return math.log2(params.q / (2 * params.t)) - math.log2(max(self.bound(), 1.0))

    def check(self, params: Params) -> None:
        """Raises unless decryption is certain to be correct (see module doc)."""
        limit = params.q / (2 * params.t) - 1
        if self.bound() >= limit:
            raise NoiseBudgetError(
                f'noise bound 2^{math.log2(self.bound()):.1f} reaches the decryption limit '
                f'q/(2t) = 2^{math.log2(limit):.1f}: too many additions or too large a scalar '
                f'for t = {params.t}; use fewer terms, smaller scalars, a smaller t or larger q')
        if self.plain > (params.t - 1) // 2:
            raise PlaintextOverflowError(
                f'plaintext bound {self.plain} reaches t/2 = {params.t / 2:g}: the result '
                f'would wrap modulo t; use a larger t or a smaller fixed-point scale')


def fresh_noise(params: Params, plain: int, symmetric: bool = False,
                ancestor: object = None, key_parties: int = 1) -> Noise:
    """Noise of a fresh encryption of |m| <= plain (see module doc), descending from
    `ancestor` (default a new label: the error is independent of every other).

    Under a public key whose secret is the sum of N = `key_parties` ternary shares and
    whose error has variance N sigma^2 (`multiparty`), Var(e0 + e1 s + e u) =
    sigma^2 (1 + ||s||^2 + N ||u||^2) <= sigma^2 (1 + N^2 n + N n): sigma^2 (1 + 2n)
    for one key.
    """
    sigma2, n = params.sigma**2, params.n
    variance = sigma2 if symmetric else sigma2 * (1 + key_parties**2 * n + key_parties * n)
    label = next(_FRESH_LABELS) if ancestor is None else ancestor
    return Noise(variance, 0.5, int(plain), frozenset({label}))


@dataclasses.dataclass(eq=False)
class Ciphertext:
    """A batch of BFV ciphertexts: residues c0, c1 of shape (L, B, n) and their noise.

    A seeded ciphertext keeps `seed` and expands c1 = a from it on demand.
    """

    params: Params
    c0: np.ndarray
    noise: Noise
    c1_residues: Optional[np.ndarray] = None
    seed: Optional[bytes] = None
    key_id: bytes = b''

    @property
    def batch(self) -> int:
        return self.c0.shape[1]

    @property
    def c1(self) -> np.ndarray:
        if self.c1_residues is None:
            self.c1_residues = uniform_poly(self.params, self.seed, self.batch)
        return self.c1_residues


def _plain(params: Params, plaintext: np.ndarray) -> np.ndarray:
    """Validates a plaintext batch (B, n) of centred integers |m| <= (t-1)/2."""
    plaintext = np.asarray(plaintext)
    if not np.issubdtype(plaintext.dtype, np.integer):
        raise TypeError(f'plaintext must be integers (encode floats first), got {plaintext.dtype}')
    if plaintext.ndim != 2 or plaintext.shape[1] != params.n:
        raise ValueError(f'plaintext must have shape (batch, n={params.n}), got {plaintext.shape}')
    plaintext = plaintext.astype(np.int64)
    if plaintext.size and np.abs(plaintext).max() > (params.t - 1) // 2:
        raise ValueError(f'plaintext coefficients must lie in [-(t-1)/2, (t-1)/2] with '
                         f't = {params.t}, got magnitude {np.abs(plaintext).max()}')
    return plaintext


def _scaled_message(params: Params, plaintext: np.ndarray) -> np.ndarray:
    """round(q m / t) mod q as residues."""
    return ring_of(params).lift(np.mod(plaintext, params.t), params.t)


def encrypt(public: PublicKey, plaintext: np.ndarray,
            rng: Union[RandomSource, Prg, None] = None) -> Ciphertext:
    """Public-key encryption of a plaintext batch (B, n); randomness from `rng` (a Prg
    or one keyed from a RandomSource, OS CSPRNG by default)."""
    params = public.params
    plaintext = _plain(params, plaintext)
    ring, shape = ring_of(params), plaintext.shape
    prg = as_prg(rng)
    u_hat = ring.ntt.forward(ring.from_signed(sampling.ternary(prg, shape)), reduce=False)
    b_op, a_op = public.operands
    c0 = ring.add(ring.from_ntt(b_op.times_ntt(u_hat)), _scaled_message(params, plaintext))
    c0 = ring.add_small(c0, sampling.gaussian(prg, shape, params.sigma))
    c1 = ring.add_small(ring.from_ntt(a_op.times_ntt(u_hat)),
                         sampling.gaussian(prg, shape, params.sigma))
    plain = int(np.abs(plaintext).max()) if plaintext.size else 0
    return Ciphertext(params, c0, fresh_noise(params, plain), c1, key_id=public.key_id)


def encrypt_symmetric(secret: SecretKey, plaintext: np.ndarray,
                      rng: Union[RandomSource, Prg, None] = None) -> Ciphertext:
    """Secret-key encryption with c1 expanded from a fresh seed (sent instead of c1)."""
    params = secret.params
    plaintext = _plain(params, plaintext)
    ring = ring_of(params)
    prg = as_prg(rng)
    seed = prg.uint8(Prg.SEED_BYTES).tobytes()
    a = uniform_poly(params, seed, plaintext.shape[0])
    c0 = ring.sub(_scaled_message(params, plaintext), secret.operand.times(a))
    c0 = ring.add_small(c0, sampling.gaussian(prg, plaintext.shape, params.sigma))
    plain = int(np.abs(plaintext).max()) if plaintext.size else 0
    return Ciphertext(params, c0, fresh_noise(params, plain, symmetric=True), a, seed,
                      secret.key_id)


def _check_key(secret: SecretKey, ct: Ciphertext) -> None:
    if not isinstance(secret, SecretKey) or not isinstance(ct, Ciphertext):
        raise TypeError('expected a SecretKey and a Ciphertext')
    if secret.params != ct.params:
        raise ValueError(f'the key is for parameters {secret.params.name} '
                         f'(fingerprint {secret.params.fingerprint().hex()}), the ciphertext for '
                         f'{ct.params.name} ({ct.params.fingerprint().hex()})')
    if ct.key_id and secret.key_id and ct.key_id != secret.key_id:
        raise ValueError(f'wrong key: the ciphertext was encrypted under key '
                         f'{ct.key_id.hex()}, this is key {secret.key_id.hex()}')


def phase(secret: SecretKey, ct: Ciphertext) -> np.ndarray:
    """c0 + c1 s mod q (residues), without any check."""
    ring = ring_of(ct.params)
    return ring.add(ct.c0, secret.operand.times(ct.c1))


def decode_phase(params: Params, residues: np.ndarray) -> np.ndarray:
    """round(t x / q) mod t as centred int64 (the last step of decryption)."""
    m = ring_of(params).scale_round(residues, params.t)
    return np.where(m > (params.t - 1) // 2, m - params.t, m)


def decrypt(secret: SecretKey, ct: Ciphertext) -> np.ndarray:
    """The plaintext batch (B, n) as centred int64.

    Raises:
      NoiseBudgetError, PlaintextOverflowError: the result could be wrong.
      ValueError: the key and ciphertext use different parameters.
    """
    _check_key(secret, ct)
    ct.noise.check(ct.params)
    return decode_phase(ct.params, phase(secret, ct))


# --- homomorphic operations ---------------------------------------------------------------

def _same(a: Ciphertext, b: Ciphertext) -> None:
    if not isinstance(a, Ciphertext) or not isinstance(b, Ciphertext):
        raise TypeError('both operands must be Ciphertexts')
    if a.params != b.params or a.c0.shape != b.c0.shape:
        raise ValueError(f'ciphertexts differ in parameters or batch size '
                         f'({a.params.name}, {a.c0.shape} vs {b.params.name}, {b.c0.shape})')


def add(a: Ciphertext, b: Ciphertext) -> Ciphertext:
    """Encryption of m_a + m_b."""
    _same(a, b)
    ring = ring_of(a.params)
    if a.key_id != b.key_id:
        raise ValueError(f'ciphertexts under different keys ({a.key_id.hex()} vs '
                         f'{b.key_id.hex()}) cannot be added')
    return Ciphertext(a.params, ring.add(a.c0, b.c0), a.noise + b.noise, ring.add(a.c1, b.c1),
                      key_id=a.key_id)


def negate(a: Ciphertext) -> Ciphertext:
    """Encryption of -m_a."""
    ring = ring_of(a.params)
    return Ciphertext(a.params, ring.neg(a.c0), a.noise, ring.neg(a.c1), key_id=a.key_id)


def sub(a: Ciphertext, b: Ciphertext) -> Ciphertext:
    """Encryption of m_a - m_b."""
    return add(a, negate(b))


def mul_scalar(a: Ciphertext, scalar: int) -> Ciphertext:
    """Encryption of scalar * m_a for a public integer scalar (noise grows by |scalar|)."""
    scalar = checks.integer('scalar', scalar)
    ring = ring_of(a.params)
    return Ciphertext(a.params, ring.mul_scalar(a.c0, scalar),
                      a.noise.scaled(abs(scalar), scalar * scalar),
                      ring.mul_scalar(a.c1, scalar), key_id=a.key_id)


def mul_plain(a: Ciphertext, poly: np.ndarray) -> Ciphertext:
    """Encryption of m_a * p for a public integer polynomial p (shape (n,) or (B, n))."""
    poly = np.asarray(poly)
    if not np.issubdtype(poly.dtype, np.integer) or poly.shape[-1:] != (a.params.n,) \
            or poly.ndim > 2:
        raise ValueError(f'plaintext polynomial must be integers of shape (n,) or (B, n) '
                         f'with n = {a.params.n}, got {poly.dtype} {poly.shape}')
    poly = np.broadcast_to(poly.astype(np.int64), a.c0.shape[1:])
    ring = ring_of(a.params)
    operand = ring.fixed(ring.from_signed(poly))
    l1 = int(np.abs(poly).sum(axis=-1).max())
    l2 = int((poly.astype(np.float64) ** 2).sum(axis=-1).max())
    return Ciphertext(a.params, operand.times(a.c0), a.noise.scaled(l1, l2),
                      operand.times(a.c1), key_id=a.key_id)


def add_plain(a: Ciphertext, plaintext: np.ndarray) -> Ciphertext:
    """Encryption of m_a + m for a public plaintext batch m (B, n)."""
    plaintext = _plain(a.params, plaintext)
    if plaintext.shape != a.c0.shape[1:]:
        raise ValueError(f'plaintext shape {plaintext.shape} differs from the ciphertext '
                         f'batch {a.c0.shape[1:]}')
    ring = ring_of(a.params)
    extra = Noise(0.0, 0.5, int(np.abs(plaintext).max()) if plaintext.size else 0)
    return Ciphertext(a.params, ring.add(a.c0, _scaled_message(a.params, plaintext)),
                      a.noise + extra, a.c1, a.seed, a.key_id)


