"""Parameter sets of the BFV scheme and the 128-bit security rule.

Design choice: the ciphertext modulus is a power of two, q = 2^K (K <= 62), so
ciphertext arithmetic is plain wrapping uint64 arithmetic masked to K bits, and
dropping low bits of a ciphertext (modulus switching q -> 2^b, which makes the
transmitted ciphertexts small) is a shift. Polynomial products always have one
small operand (a ternary u or s); they are computed *exactly* over the integers
with a negacyclic NTT modulo L NTT-friendly primes p_i < 2^31 (p_i = 1 mod 2n),
whose product P exceeds twice the largest possible |coefficient| n 2^K, then
mapped back mod 2^K by Garner's mixed-radix CRT (see `ntt.py`).

Errors: centred binomial CBD(eta), as SEAL (since 3.6) and Kyber sample them:
eta = 24 gives standard deviation sqrt(12) = 3.46, above the 3.19 of the HE
Standard's table, and a sub-Gaussian parameter of the same value.

Security: the Homomorphic Encryption Standard (Albrecht et al. 2018, Table 1,
ternary secret, error deviation 3.19, also SEAL's default table) bounds log2 q for
128-bit classical security by 27, 54, 109, 218, 438, 881 bits for n = 1024 ...
32768. Smaller q is harder (smaller q/sigma), so n = 4096 with K = 48 and
n = 8192 with K = 47 are well inside the table. `BfvParams` refuses anything
outside it unless `insecure=True` is passed explicitly (teaching/toy sizes).

Plaintext modulus t = 2^T: with q = 2^K, Delta = q / t = 2^(K - T) exactly, so
decryption is an exact shift and correct iff the noise |v| < Delta / 2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Dict, Tuple

from tfpriv.crypto.field import is_prime

# HE Standard, Table 1 (classical, ternary secret): n -> largest log2 q for 128 bits.
HE_STANDARD_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
_PRIME_LIMIT = 2**31
_MAX_LOG_Q = 62


class InsecureParametersError(ValueError):
    """The parameters do not reach 128-bit security and insecure=True was not given."""


def ntt_primes(n: int, product_bits: float) -> Tuple[int, ...]:
    """The largest primes p < 2^31 with p = 1 mod 2n whose product exceeds 2^product_bits."""
    primes, bits, candidate = [], 0.0, (_PRIME_LIMIT - 1) // (2 * n) * (2 * n) + 1
    while bits <= product_bits:
        if candidate < 2 * n:
            raise ValueError(f'not enough NTT primes below 2^31 for n={n}')
        if is_prime(candidate):
            primes.append(candidate)
            bits += math.log2(candidate)
        candidate -= 2 * n
    return tuple(primes)


@dataclasses.dataclass(frozen=True)
class BfvParams:
    """Ring degree n, ciphertext modulus 2^log_q, plaintext modulus 2^plain_bits.

    Attributes:
      n: ring degree, a power of two (R = Z[x] / (x^n + 1)).
      log_q: K, ciphertext modulus q = 2^K, 8 <= K <= 62.
      plain_bits: T, plaintext modulus t = 2^T, 1 <= T < K.
      c0_bits: bits kept of c0 when a ciphertext is compressed for sending.
      eta: errors follow the centred binomial distribution CBD(eta) (sum of eta
        coin differences), standard deviation sqrt(eta / 2); eta = 24 gives
        3.46 >= the 3.19 the HE Standard assumes; a multiple of 8.
      insecure: explicitly accept parameters below 128-bit security.
    """

    n: int
    log_q: int
    plain_bits: int
    c0_bits: int
    eta: int = 24
    insecure: bool = False

    def __post_init__(self):
        n = self.n
        if not isinstance(n, int) or n < 4 or n & (n - 1):
            raise ValueError(f'n must be a power of two >= 4, got {n!r}')
        if not 8 <= self.log_q <= _MAX_LOG_Q:
            raise ValueError(f'log_q must be in [8, {_MAX_LOG_Q}] (uint64 arithmetic), '
                             f'got {self.log_q}')
        if not 1 <= self.plain_bits < self.log_q:
            raise ValueError(f'plain_bits must be in [1, log_q) = [1, {self.log_q}), '
                             f'got {self.plain_bits}')
        if not self.plain_bits < self.c0_bits <= self.log_q:
            raise ValueError(f'c0_bits must be in (plain_bits, log_q] = '
                             f'({self.plain_bits}, {self.log_q}], got {self.c0_bits}')
        if self.eta not in (8, 16, 24, 32) or (self.eta < 21 and not self.insecure):
            raise ValueError(f'eta must be 24 or 32 (8 and 16 only with insecure=True: the '
                             f'HE Standard assumes an error deviation >= 3.19), got {self.eta}')
        limit = HE_STANDARD_128.get(n, 0)
        if self.log_q > limit and not self.insecure:
            raise InsecureParametersError(
                f'n={n} with log2 q={self.log_q} is below 128-bit security: the HE Standard '
                f'allows log2 q <= {limit} for n={n} '
                f'(table: {HE_STANDARD_128}); pass insecure=True only for teaching/tests')

    @property
    def sigma(self) -> float:
        """Standard deviation (and sub-Gaussian parameter) of CBD(eta): sqrt(eta / 2)."""
        return math.sqrt(self.eta / 2)

    @property
    def q(self) -> int:
        return 1 << self.log_q

    @property
    def t(self) -> int:
        return 1 << self.plain_bits

    @property
    def delta_bits(self) -> int:
        """log2 Delta = K - T."""
        return self.log_q - self.plain_bits

    @property
    def primes(self) -> Tuple[int, ...]:
        """RNS primes for exact products: P > 2 (n 2^(K-1) + n 2^(K-1))."""
        return ntt_primes(self.n, self.log_q + math.log2(self.n) + 1.0)

    @property
    def security_bits(self) -> int:
        """128 when inside the HE Standard table, else 0 (unknown / insecure)."""
        return 128 if self.log_q <= HE_STANDARD_128.get(self.n, 0) else 0

    def fingerprint(self) -> bytes:
        """16-byte SHA-256 digest identifying these parameters (in serialized data)."""
        text = f'bfv-v1|{self.n}|{self.log_q}|{self.plain_bits}|{self.c0_bits}|{self.eta}'
        return hashlib.sha256(text.encode()).digest()[:16]


PRESETS: Dict[str, BfvParams] = {
    # 128-bit: log2 q = 48 <= 109; 37 + 48 bits sent per coefficient (10.6 bytes).
    'bfv-4096': BfvParams(n=4096, log_q=48, plain_bits=27, c0_bits=37),
    # 128-bit: log2 q = 47 <= 218; more slots per ciphertext, same sizes.
    'bfv-8192': BfvParams(n=8192, log_q=47, plain_bits=26, c0_bits=37),
    # 128-bit: log2 q = 62 <= 109; 2^14 times more noise room, spent on the
    # smudging of threshold decryption (~15 bits for 10 clients); 14.3 bytes.
    'bfv-4096-threshold': BfvParams(n=4096, log_q=62, plain_bits=27, c0_bits=52),
}
TOY = BfvParams(n=256, log_q=40, plain_bits=16, c0_bits=30, insecure=True)


def preset(name: str, insecure: bool = False) -> BfvParams:
    """A named parameter set; 'toy' (n=256, insecure) needs insecure=True."""
    if name == 'toy':
        if not insecure:
            raise InsecureParametersError("the 'toy' preset (n=256) offers no security; "
                                          'pass insecure=True for tests and teaching only')
        return TOY
    if name not in PRESETS:
        raise ValueError(f'unknown preset {name!r}; choose from {sorted(PRESETS)} or toy')
    return PRESETS[name]
