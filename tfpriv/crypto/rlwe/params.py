"""BFV parameters: ring degree n, RNS ciphertext modulus q, plaintext modulus t.

Security. The presets follow the Homomorphic Encryption Standard (Albrecht et
al. 2018, homomorphicencryption.org, Table 1, ternary secret, error width
sigma = 3.2) for 128-bit classical security: log2 q <= 27, 54, 109, 218, 438,
881 for n = 1024 ... 32768 (the same table Microsoft SEAL enforces).
Constructing `Params` with a larger q, a smaller n, or a smaller sigma raises
`InsecureParametersError` unless `insecure=True` is passed explicitly (the
`toy` teaching preset does that and says so in its name).

RNS primes. q is a product of distinct primes p < 2^27 with p = 1 mod 2n (so a
primitive 2n-th root of unity exists and the negacyclic NTT applies). Keeping
p < 2^27 rather than the usual 2^31 lets the NTT skip every intermediate
reduction: with values below (2 log2 n + 1) p < 2^32 a Shoup multiplication
(one 32x32-bit high product) stays exact in uint64. The HE Standard bounds are
met with log2 q = 27 L, e.g. n = 4096 uses four primes (108 bits <= 109).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
from typing import Dict, Optional, Tuple

from tfpriv import checks
from tfpriv.crypto.shamir.field import is_prime
from tfpriv.errors import InsecureParametersError

# HE Standard (2018), Table 1: max log2 q for 128-bit classical security, ternary secret.
HE_STANDARD_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
STANDARD_SIGMA = 3.2
PRIME_BITS = 27
MAX_PLAIN_MODULUS = 2**31



def ntt_primes(n: int, count: int, bits: int = PRIME_BITS) -> Tuple[int, ...]:
    """The `count` largest primes p < 2^bits with p = 1 mod 2n, in decreasing order."""
    step = 2 * n
    candidate = ((2**bits - 1) // step) * step + 1  # < 2^bits: the even step never divides 2^bits - 1
    found = []
    while len(found) < count and candidate > step:
        if is_prime(candidate):
            found.append(candidate)
        candidate -= step
    if len(found) < count:
        raise ValueError(f'only {len(found)} primes below 2^{bits} are 1 mod {step}, '
                         f'{count} requested')
    return tuple(found)


@dataclasses.dataclass(frozen=True)
class Params:
    """Parameters of the BFV scheme over R_q = Z_q[x]/(x^n + 1) with plaintexts in R_t.

    Attributes:
      n: ring degree, a power of two.
      primes: the RNS primes, product q.
      t: plaintext modulus, 2 <= t < 2^31.
      sigma: standard deviation of the discrete Gaussian errors.
      insecure: True only for deliberately weak teaching parameters.
      name: preset name, for messages.
    """

    n: int
    primes: Tuple[int, ...]
    t: int
    sigma: float = STANDARD_SIGMA
    insecure: bool = False
    name: str = 'custom'

    def __post_init__(self):
        n = checks.integer('n', self.n)
        if n < 4 or n & (n - 1):
            raise ValueError(f'n must be a power of two >= 4, got {n!r}')
        if not self.primes or len(set(self.primes)) != len(self.primes):
            raise ValueError(f'primes must be a non-empty tuple of distinct primes, '
                             f'got {self.primes}')
        logn = n.bit_length() - 1
        for p in self.primes:
            if not isinstance(p, int) or not is_prime(p) or p % (2 * n) != 1:
                raise ValueError(f'every RNS prime must be a prime = 1 mod 2n = {2 * n}, got {p}')
            if (2 * logn + 1) * p >= 2**32:
                raise ValueError(f'RNS prime {p} too large for the lazy NTT: need '
                                 f'(2 log2 n + 1) p < 2^32, i.e. p < 2^{PRIME_BITS} for n <= 16384')
        checks.integer('plaintext modulus t', self.t, 2, MAX_PLAIN_MODULUS - 1)
        if math.gcd(self.t, self.q) != 1:
            raise ValueError(f'plaintext modulus t = {self.t} must be coprime to q')
        if not math.isfinite(self.sigma) or self.sigma <= 0:
            raise ValueError(f'sigma must be positive, got {self.sigma}')
        if not self.insecure:
            check_security(n, self.q, self.sigma)

    @property
    def q(self) -> int:
        """The ciphertext modulus, product of the RNS primes (a Python int)."""
        return math.prod(self.primes)

    @property
    def log2_q(self) -> float:
        return math.log2(self.q)

    @property
    def num_primes(self) -> int:
        return len(self.primes)

    def fingerprint(self) -> bytes:
        """16 bytes identifying the parameters (SHA-256 of their canonical encoding)."""
        blob = struct.pack('<IdI?', self.n, self.sigma, self.t, self.insecure)
        blob += struct.pack(f'<{len(self.primes)}Q', *self.primes)
        return hashlib.sha256(b'tfpriv-rlwe-params' + blob).digest()[:16]

    def with_plain_modulus(self, t: int) -> 'Params':
        """The same ring and q with plaintext modulus `t`."""
        return dataclasses.replace(self, t=t)


def check_security(n: int, q: int, sigma: float) -> None:
    """Raises `InsecureParametersError` unless (n, q, sigma) meets the 128-bit HE Standard row."""
    if n not in HE_STANDARD_128:
        raise InsecureParametersError(
            f'n = {n} is not in the HE Standard 128-bit table (n in {sorted(HE_STANDARD_128)}); '
            'pass insecure=True only for teaching')
    if math.log2(q) > HE_STANDARD_128[n]:
        raise InsecureParametersError(
            f'log2 q = {math.log2(q):.1f} exceeds {HE_STANDARD_128[n]}, the 128-bit HE Standard '
            f'bound for n = {n}: use fewer primes or a larger n')
    if sigma < STANDARD_SIGMA - 0.01:
        raise InsecureParametersError(f'sigma = {sigma} is below the standard 3.2')


# name -> (n, number of primes, default t)
PRESETS: Dict[str, Tuple[int, int, int]] = {
    'n1024': (1024, 1, 2**10),
    'n2048': (2048, 2, 2**24),
    'n4096': (4096, 4, 2**30),
    'n8192': (8192, 8, 2**30),
    'n16384': (16384, 16, 2**30),
}
TOY_PRESET = 'toy'  # n = 64, two primes: about 10 bits of security


def preset(name: str, t: Optional[int] = None, insecure: bool = False) -> Params:
    """A named parameter set; `t` overrides its default plaintext modulus.

    `preset('toy', insecure=True)` is a tiny ring (n = 64) for teaching and fast
    demos; asking for it without `insecure=True` raises.
    """
    if name == TOY_PRESET:
        if not insecure:
            raise InsecureParametersError(
                "the 'toy' preset (n = 64) is insecure: pass insecure=True to use it for teaching")
        return Params(64, ntt_primes(64, 2), 2**16 if t is None else t, insecure=True, name=name)
    if name not in PRESETS:
        raise ValueError(f'unknown preset {name!r}; choose one of '
                         f'{sorted(PRESETS) + [TOY_PRESET]}')
    n, count, default_t = PRESETS[name]
    return Params(n, ntt_primes(n, count), default_t if t is None else t, name=name)
