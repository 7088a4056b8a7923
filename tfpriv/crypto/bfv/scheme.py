"""BFV-style RLWE encryption over R_q = Z_q[x]/(x^n + 1), q = 2^K, with noise tracking.

Scheme (Brakerski 2012; Fan and Vercauteren 2012, "Somewhat practical fully
homomorphic encryption", section 3), with Delta = q / t = 2^(K - T):

  keygen:  s ternary uniform, a uniform mod q, e from CBD; pk = (-a s + e, a).
  encrypt: u ternary, e1, e2 from CBD; c = (pk0 u + e1 + Delta m, pk1 u + e2).
  symmetric (seeded): a expanded from a public 32-byte seed by SHAKE-256;
           c = (-a s + e + Delta m, a), so only the seed and c0 need be sent.
  decrypt: x = c0 + c1 s = Delta m + v (mod q); m = round(x / Delta) mod t,
           correct iff |v|_inf < Delta / 2.
  compress: c0 -> round(c0 / 2^d) kept on K - d bits (modulus switching of the
           c0 part only, as Kyber compresses v); it adds at most 2^(d-1) to v.

Errors follow the centred binomial distribution CBD(eta) (params.py), from
`tfpriv.rng.RandomSource` bytes (OS CSPRNG by default).

Noise tracking: every `Ciphertext` carries `noise`, a bound on |v|_inf that
holds except with probability 2^-64 per coefficient. A fresh public-key
encryption has v = e u + e1 + e2 s: given u and s (|u|, |s| <= 1) each
coefficient is a sum of 2n + 1 independent sub-Gaussian terms of parameter
sigma = sqrt(eta / 2) (CBD(eta) is a sum of 2 eta variables in [-1/2, 1/2]),
so |v| <= z sigma sqrt(2n + 1) with
z = sqrt(2 ln(2^65)) ~ 9.5 (Hoeffding-type tail bound). Sums add bounds (valid
for dependent ciphertexts too), a scalar c multiplies them by |c|. `decrypt`
raises `NoiseBudgetError` *before* decoding when the bound reaches Delta / 2,
so too many additions or too large a scalar fail loudly instead of returning a
wrong plaintext. `plain_bound` tracks the largest |centred plaintext| when the
caller declares one (the fixed-point encoder does), and `decrypt` raises
`PlaintextOverflowError` when the sum may have wrapped mod t.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Optional

import numpy as np

from tfpriv.crypto.bfv.fft import limb_bits, multiplier
from tfpriv.crypto.bfv.ntt import RnsNtt, context
from tfpriv.crypto.bfv.params import BfvParams
from tfpriv.rng import RandomSource

TAIL_Z = math.sqrt(2.0 * math.log(2.0**65))
SEED_BYTES = 32


class NoiseBudgetError(ArithmeticError):
    """The tracked noise bound may exceed Delta / 2: decryption could be wrong."""


class PlaintextOverflowError(ArithmeticError):
    """The tracked plaintext bound exceeds (t - 1) / 2: the sum may have wrapped mod t."""


class KeyMismatchError(ValueError):
    """Key and ciphertext belong to different key pairs or parameter sets."""


@dataclasses.dataclass(frozen=True)
class SecretKey:
    params: BfvParams
    s: np.ndarray  # int64 (n,), entries in {-1, 0, 1}
    key_id: bytes  # 8-byte tag shared with the public key

    def s_hat(self) -> np.ndarray:
        """FFT transform of s for `fft.FftMultiplier.multiply`."""
        return multiplier(self.params.n).transform(self.s.astype(np.float64))


@dataclasses.dataclass(frozen=True)
class PublicKey:
    params: BfvParams
    p0: np.ndarray  # uint64 (n,), -a s + e mod q
    p1: np.ndarray  # uint64 (n,), a
    key_id: bytes


@dataclasses.dataclass
class Ciphertext:
    """A batch of BFV ciphertexts (c0 mod 2^c0_bits, c1 mod 2^K), shape (batch, n) each.

    Attributes:
      noise: high-probability bound on |v|_inf in units of q = 2^K.
      plain_bound: bound on |centred plaintext| or None (arithmetic mod t).
      seed: the 32-byte seed c1 was expanded from (fresh symmetric encryption only).
    """

    params: BfvParams
    c0: np.ndarray
    c1: np.ndarray
    c0_bits: int
    noise: float
    key_id: bytes
    plain_bound: Optional[int] = None
    seed: Optional[bytes] = None

    @property
    def batch(self) -> int:
        return self.c0.shape[0]


def _mask(bits: int) -> np.uint64:
    return np.uint64((1 << bits) - 1)


def ntt_context(params: BfvParams) -> RnsNtt:
    return context(params.n, params.primes)


def _ternary(rng: RandomSource, shape) -> np.ndarray:
    """Uniform {-1, 0, 1}: random bytes below 255 = 3 * 85, reduced mod 3 (unbiased)."""
    size = int(np.prod(shape))
    kept = np.zeros(0, dtype=np.uint8)
    while kept.size < size:
        draw = np.frombuffer(rng.bytes(size - kept.size + 64), dtype=np.uint8)
        kept = np.concatenate([kept, draw[draw < 255]])
    return (kept[:size] % 3).astype(np.int64).reshape(shape) - 1


_WORDS = np.arange(2**16, dtype=np.int64)
_POPCOUNT16 = sum((_WORDS >> k) & 1 for k in range(16)).astype(np.int8)
# For a 16-bit word holding 8 bits of each side: popcount(low byte) - popcount(high byte).
_DIFF16 = (sum((_WORDS >> k) & 1 for k in range(8))
           - sum((_WORDS >> k) & 1 for k in range(8, 16))).astype(np.int8)


def _cbd(params: BfvParams, rng: RandomSource, shape) -> np.ndarray:
    """Centred binomial errors: popcount(eta random bits) - popcount(eta random bits).

    The 2 eta bits of a sample are eta / 8 16-bit words; word k counts positive
    for k < eta / 16, negative for k >= eta / 16, both ways for the middle word
    when eta / 8 is odd (table lookups on 16-bit words).
    """
    size = int(np.prod(shape))
    width = params.eta // 8
    words = np.frombuffer(rng.bytes(2 * width * size), dtype=np.uint16).reshape(size, width)
    half = width // 2
    out = _POPCOUNT16[words[:, :half]].sum(axis=1, dtype=np.int64)
    out -= _POPCOUNT16[words[:, width - half:]].sum(axis=1, dtype=np.int64)
    if width % 2:
        out += _DIFF16[words[:, half]]
    return out.reshape(shape)


def fresh_noise(params: BfvParams, public: bool = True) -> float:
    """High-probability bound on |v| of a fresh (public- or secret-key) encryption."""
    terms = 2 * params.n + 1 if public else 1
    return TAIL_Z * params.sigma * math.sqrt(terms)


def expand_seed(params: BfvParams, seed: bytes, batch: int) -> np.ndarray:
    """Uniform polynomials mod 2^K expanded from a seed with SHAKE-256 (public randomness)."""
    words = np.frombuffer(hashlib.shake_256(b'tfpriv-bfv-a' + seed).digest(8 * batch * params.n),
                          dtype=np.uint64)
    return (words & _mask(params.log_q)).reshape(batch, params.n)


def keygen(params: BfvParams, rng: Optional[RandomSource] = None):
    """Returns (SecretKey, PublicKey): s ternary, pk = (-a s + e mod q, a)."""
    rng = rng or RandomSource()
    s = _ternary(rng, params.n)
    key_id = rng.bytes(8)
    sk = SecretKey(params, s, key_id)
    a = rng.uint64((1, params.n)) & _mask(params.log_q)
    e = _cbd(params, rng, (1, params.n))
    p0 = _neg(params, _times_s(sk, a)) + e.astype(np.uint64)
    return sk, PublicKey(params, (p0 & _mask(params.log_q))[0], a[0], key_id)


def _times_s(sk: SecretKey, big: np.ndarray) -> np.ndarray:
    """big * s mod q (exact, FFT)."""
    fft = multiplier(sk.params.n)
    return fft.multiply(fft.limbs(big, sk.params.log_q), sk.s_hat(), sk.params.log_q)


def _neg(params: BfvParams, x: np.ndarray, bits: Optional[int] = None) -> np.ndarray:
    return (np.uint64(0) - x) & _mask(params.log_q if bits is None else bits)


def _check_plain(params: BfvParams, plain: np.ndarray) -> np.ndarray:
    plain = np.asarray(plain)
    if plain.ndim != 2 or plain.shape[1] != params.n:
        raise ValueError(f'plaintext must have shape (batch, n={params.n}), got {plain.shape}')
    if not np.issubdtype(plain.dtype, np.integer):
        raise TypeError(f'plaintext must be integers mod t, got dtype {plain.dtype}')
    if plain.size and (plain.min() < 0 or plain.max() >= params.t):
        raise ValueError(f'plaintext entries must lie in [0, t = 2^{params.plain_bits})')
    return plain.astype(np.uint64)


def encrypt(pk: PublicKey, plain: np.ndarray, rng: Optional[RandomSource] = None,
            plain_bound: Optional[int] = None) -> Ciphertext:
    """Public-key encryption of plaintexts (batch, n) with entries in [0, t)."""
    params, rng = pk.params, rng or RandomSource()
    m = _check_plain(params, plain)
    fft = multiplier(params.n)
    batch, mask = m.shape[0], _mask(params.log_q)
    u_hat = fft.transform(_ternary(rng, (batch, params.n)).astype(np.float64))
    pk_hat = fft.limbs(np.stack([pk.p0, pk.p1]), params.log_q)  # (limbs, 2, n/2)
    prod = fft.multiply(pk_hat[:, :, None, :] * u_hat, 1.0, params.log_q)  # (2, batch, n)
    e = _cbd(params, rng, (2, batch, params.n)).astype(np.uint64)
    c0 = (prod[0] + e[0] + (m << np.uint64(params.delta_bits))) & mask
    c1 = (prod[1] + e[1]) & mask
    return Ciphertext(params, c0, c1, params.log_q, fresh_noise(params), pk.key_id, plain_bound)


def encrypt_symmetric(sk: SecretKey, plain: np.ndarray, rng: Optional[RandomSource] = None,
                      plain_bound: Optional[int] = None) -> Ciphertext:
    """Seeded secret-key encryption: c1 = a(seed), so the ciphertext travels as seed + c0."""
    params, rng = sk.params, rng or RandomSource()
    m = _check_plain(params, plain)
    seed = rng.bytes(SEED_BYTES)
    a = expand_seed(params, seed, m.shape[0])
    e = _cbd(params, rng, m.shape).astype(np.uint64)
    c0 = (_neg(params, _times_s(sk, a)) + e
          + (m << np.uint64(params.delta_bits))) & _mask(params.log_q)
    return Ciphertext(params, c0, a, params.log_q, fresh_noise(params, public=False), sk.key_id,
                      plain_bound, seed)


def compress(ct: Ciphertext, bits: Optional[int] = None) -> Ciphertext:
    """Keeps the top `bits` (default params.c0_bits) of c0: c0 -> round(c0 / 2^d)."""
    params = ct.params
    bits = params.c0_bits if bits is None else bits
    if not params.plain_bits < bits <= ct.c0_bits:
        raise ValueError(f'can compress c0 from {ct.c0_bits} bits to ({params.plain_bits}, '
                         f'{ct.c0_bits}] bits, not {bits}')
    d = ct.c0_bits - bits
    if d == 0:
        return ct
    c0 = ((ct.c0 + np.uint64(1 << (d - 1))) >> np.uint64(d)) & _mask(bits)
    noise = ct.noise + 2.0 ** (params.log_q - bits - 1)
    return dataclasses.replace(ct, c0=c0, c0_bits=bits, noise=noise)


def _check_pair(a: Ciphertext, b: Ciphertext) -> None:
    if a.params != b.params:
        raise KeyMismatchError('ciphertexts use different parameters')
    if a.key_id != b.key_id:
        raise KeyMismatchError('ciphertexts were encrypted under different keys')
    if a.c0.shape != b.c0.shape:
        raise ValueError(f'ciphertext batches differ: {a.c0.shape} vs {b.c0.shape}')


def _align(a: Ciphertext, b: Ciphertext):
    bits = min(a.c0_bits, b.c0_bits)
    return compress(a, bits), compress(b, bits)


def _sum_bounds(x: Optional[int], y: Optional[int]) -> Optional[int]:
    return None if x is None or y is None else x + y


def add(a: Ciphertext, b: Ciphertext) -> Ciphertext:
    """Homomorphic addition: plaintexts add mod t, noise bounds add."""
    _check_pair(a, b)
    a, b = _align(a, b)
    params = a.params
    return Ciphertext(params, (a.c0 + b.c0) & _mask(a.c0_bits),
                      (a.c1 + b.c1) & _mask(params.log_q), a.c0_bits, a.noise + b.noise,
                      a.key_id, _sum_bounds(a.plain_bound, b.plain_bound))


def negate(a: Ciphertext) -> Ciphertext:
    return Ciphertext(a.params, _neg(a.params, a.c0, a.c0_bits), _neg(a.params, a.c1),
                      a.c0_bits, a.noise, a.key_id, a.plain_bound)


def sub(a: Ciphertext, b: Ciphertext) -> Ciphertext:
    return add(a, negate(b))


def add_plain(a: Ciphertext, plain: np.ndarray, plain_bound: Optional[int] = None) -> Ciphertext:
    """Adds a plaintext (batch, n) mod t: c0 += Delta m (no noise growth)."""
    m = _check_plain(a.params, plain)
    if m.shape != a.c0.shape:
        raise ValueError(f'plaintext shape {m.shape} differs from ciphertext {a.c0.shape}')
    shift = np.uint64(a.c0_bits - a.params.plain_bits)
    return dataclasses.replace(a, c0=(a.c0 + (m << shift)) & _mask(a.c0_bits), seed=None,
                               plain_bound=_sum_bounds(a.plain_bound, plain_bound))


def mul_scalar(a: Ciphertext, scalar: int) -> Ciphertext:
    """Multiplies by a plaintext integer c: plaintext c m mod t, noise |c| times larger."""
    if isinstance(scalar, bool) or not isinstance(scalar, (int, np.integer)):
        raise TypeError(f'scalar must be an int, got {type(scalar).__name__}')
    c = int(scalar)
    cu = np.uint64(c % 2**64)
    return Ciphertext(a.params, (a.c0 * cu) & _mask(a.c0_bits),
                      (a.c1 * cu) & _mask(a.params.log_q), a.c0_bits, a.noise * abs(c),
                      a.key_id, None if a.plain_bound is None else a.plain_bound * abs(c))


def mul_plain(a: Ciphertext, poly: np.ndarray) -> Ciphertext:
    """Multiplies by a plaintext polynomial p with small signed integer coefficients.

    Plaintext m p mod t, noise and plaintext bounds times |p|_1 (each output
    coefficient is a signed sum of |p|_1 input coefficients at most).

    Args:
      poly: int array (n,) or (batch, n); |coefficients| <= 2^12 so that the FFT
        products stay exact (`fft.limb_bits`).
    """
    params = a.params
    poly = np.asarray(poly)
    if not np.issubdtype(poly.dtype, np.integer) or poly.shape[-1:] != (params.n,) \
            or poly.ndim > 2:
        raise ValueError(f'plaintext polynomial must be integers of shape (n,) or (batch, n) '
                         f'with n = {params.n}, got {poly.dtype} {poly.shape}')
    largest = int(np.max(np.abs(poly))) if poly.size else 0
    if largest > 2**12:
        raise ValueError(f'plaintext polynomial coefficients must satisfy |p| <= 2^12, '
                         f'got {largest}')
    fft = multiplier(params.n)
    width = limb_bits(params.n, max(largest, 1))
    p_hat = fft.transform(poly.astype(np.float64))
    c0 = fft.multiply(fft.limbs(a.c0, a.c0_bits, width), p_hat, a.c0_bits, width)
    c1 = fft.multiply(fft.limbs(a.c1, params.log_q, width), p_hat, params.log_q, width)
    norm = int(np.max(np.abs(poly).reshape(-1, params.n).sum(axis=1))) if poly.size else 0
    return Ciphertext(params, c0, c1, a.c0_bits, a.noise * norm, a.key_id,
                      None if a.plain_bound is None else a.plain_bound * norm)


def check_decryptable(ct: Ciphertext) -> None:
    """Raises NoiseBudgetError / PlaintextOverflowError if decryption might be wrong."""
    params = ct.params
    half_delta = 2.0 ** (params.delta_bits - 1)
    if not ct.noise < half_delta:
        raise NoiseBudgetError(
            f'noise bound {ct.noise:.4g} reached Delta/2 = 2^{params.delta_bits - 1}: decryption '
            f'could be wrong (too many additions or too large a scalar); the noise budget '
            f'left is {noise_budget_bits(ct):.1f} bits')
    if ct.plain_bound is not None and ct.plain_bound > (params.t - 1) // 2:
        raise PlaintextOverflowError(
            f'plaintext bound {ct.plain_bound} exceeds (t-1)/2 = {(params.t - 1) // 2}: the '
            f'sum may have wrapped mod t; add fewer terms or use a smaller fixed-point precision')


def noise_budget_bits(ct: Ciphertext) -> float:
    """log2(Delta / 2) - log2(noise bound); decryption is guaranteed while > 0."""
    return ct.params.delta_bits - 1 - math.log2(max(ct.noise, 1.0))


def decrypt_phase(ct: Ciphertext, c1s: np.ndarray) -> np.ndarray:
    """c0 2^(K - c0_bits) + c1 s mod q, as uint64 (batch, n), given c1 s mod q."""
    params = ct.params
    return ((ct.c0 << np.uint64(params.log_q - ct.c0_bits)) + c1s) & _mask(params.log_q)


def round_phase(params: BfvParams, x: np.ndarray) -> np.ndarray:
    """m = round(x / Delta) mod t as int64 (batch, n)."""
    d = np.uint64(params.delta_bits)
    half = np.uint64(1 << (params.delta_bits - 1))
    return (((x + half) >> d) & _mask(params.plain_bits)).astype(np.int64)


def decrypt(sk: SecretKey, ct: Ciphertext, check: bool = True) -> np.ndarray:
    """Plaintexts (batch, n) in [0, t). `check=False` skips the guard (tests only)."""
    if not isinstance(ct, Ciphertext) or not isinstance(sk, SecretKey):
        raise TypeError('decrypt(secret_key, ciphertext) expects a SecretKey and a Ciphertext')
    if sk.params != ct.params or sk.key_id != ct.key_id:
        raise KeyMismatchError('this secret key does not belong to the key that encrypted '
                               'the ciphertext (different key id or parameters)')
    if check:
        check_decryptable(ct)
    return round_phase(ct.params, decrypt_phase(ct, _times_s(sk, ct.c1)))
