"""Distributed DP under secure aggregation: the distributed discrete Gaussian (DDGauss).

Kairouz, Liu, Steinke, "The Distributed Discrete Gaussian Mechanism for
Federated Learning with Secure Aggregation", ICML 2021 (Algorithms 1 and 2),
the mechanism of TFF's `tff.aggregators.DistributedDpSumFactory`
('distributed_dgauss'), re-implemented in NumPy because TFF's factory needs
its own `federated_secure_sum` intrinsic and cannot run inside tfpriv's Python
secure-aggregation protocols. Each of the m clients of a round, on its own:

1. clips its flattened update x to L2 norm S;
2. pads it to d = 2^j and rotates it, y = H D x / sqrt(d) (randomized Walsh-
   Hadamard transform; the random signs D are public, drawn per round from a
   shared seed), which flattens the coordinates so few of them wrap (Sec. 4.2);
3. scales by 1/γ (`scale`, Kairouz et al. Sec. 4.4's heuristic, as TFF's
   `_heuristic_scale_factor`: k stddevs of the sum fit in b bits) and rounds
   to integers with *conditional* randomized rounding: unbiased randomized
   rounding repeated until the L2 norm is at most Δ̃ (Sec. 4.1; `inflated_l2`);
4. adds its noise share, discrete Gaussian N_Z(0, σ_l^2) per coordinate with
   σ_l = σ S/(γ sqrt(m)) (Canonne, Kamath, Steinke 2020, Algorithm 3);
5. reduces the integers mod 2^b (centred) and hands them to the secure
   aggregator (`plain`, `shamir`, `smpc`, `rlwe` or `secagg`).

The server only learns Σ_i z_i mod 2^b; it reduces it mod 2^b (centred),
multiplies by γ, rotates back and divides by m (unweighted, as DP-FedAvg).

How the integers go through a fixed-point aggregator exactly: client i sends
v_i = z_i / 2^(b-1) ∈ [-1, 1] with equal weights; the aggregator returns the
mean of the v_i up to its fixed-point error, at most k 2^-f per value for k
clients and f fractional bits. With f = b + 1 + ceil(2 log2 k) that error is
below 1/4 in units of the integer sum k 2^(b-1) mean(v), so rounding recovers
Σ z_i exactly; `aggregate` checks the distance to the nearest integer and
raises `InconsistentResultError` if it were ever above 1/4.

Noise actually present and accounting (`tfpriv.dp.accounting.ddgauss_*`): the
sum holds k noise shares, k = the clients whose shares arrived (k = m without
dropouts): per coordinate the sum of k iid N_Z(0, σ_l^2). Kairouz et al.
Prop. 14 bound its Rényi DP at order α by α Δ̃^2 / (2 k σ_l^2) + τ d with
τ = 10 Σ_{j<k} exp(-2π^2 σ_l^2 j/(j+1)): the Gaussian mechanism with noise
multiplier σ_eff = sqrt(k) σ_l / Δ̃ plus τ d. We account σ_eff with
dp_accounting's sampled-Gaussian analysis and require τ d <= 1e-6 (so the
discrete/continuous gap is negligible; it is reported). If clients drop after
being sampled (dropouts independent of the data), the accountant uses the
smaller k of that round: only noise that is provably in the sum is counted.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import List, Optional, Sequence

import numpy as np

from tfpriv import checks
from tfpriv.crypto.secagg import (PER_ROUND_SCHEMES, AggregationStats, SecureAggregator,
                                  UpdateSpec, check_updates, scheme_class)
from tfpriv.dp import accounting
from tfpriv.errors import InconsistentResultError, RoundingError
from tfpriv.federated import dropouts
from tfpriv.rng import Prg, RandomSource, unit_floats

DEFAULT_BETA = math.exp(-0.5)  # Kairouz et al.'s recommended conditional-rounding bias
_MAX_ROUNDING_TRIES = 1000
_NOISE_BLOCK = 16384  # discrete-Gaussian candidates per block (128 KiB per float64 temporary)


@dataclasses.dataclass(frozen=True)
class DdgParams:
    """The public parameters of one DDGauss run (every client and the server share them).

    Attributes:
      l2_norm_clip: S, L2 bound of a client update.
      noise_multiplier: σ: the m shares add up to noise of std σ S per coordinate.
      clients_per_round: m, the clients whose shares make up the noise.
      dim: d, the flattened update size before padding.
      bits: b, the modulus 2^b of the secure sum.
      beta: conditional-rounding bias β in [0, 1) (0: plain randomized rounding).
      modclip_prob: target probability that a coordinate of the sum wraps mod 2^b.
    """

    l2_norm_clip: float
    noise_multiplier: float
    clients_per_round: int
    dim: int
    bits: int = 16
    beta: float = DEFAULT_BETA
    modclip_prob: float = 1e-4

    def __post_init__(self):
        checks.number('l2_norm_clip', self.l2_norm_clip, minimum=0, strict_minimum=True)
        checks.number('noise_multiplier', self.noise_multiplier, minimum=0)
        checks.integer('clients_per_round', self.clients_per_round, minimum=1)
        checks.integer('dim', self.dim, minimum=1)
        checks.integer('bits', self.bits, minimum=2, maximum=30)
        checks.number('beta', self.beta, minimum=0, maximum=1)
        checks.number('modclip_prob', self.modclip_prob, minimum=0, maximum=1, strict_minimum=True)
        if self.beta >= 1:
            raise ValueError(f'beta must be in [0, 1), got {self.beta}')
        if 2 ** (2 * self.bits) <= self.clients_per_round * self.k_stddevs ** 2:
            raise ValueError(f'bits={self.bits} leaves no room for {self.clients_per_round} '
                             f'clients at modclip_prob={self.modclip_prob}: raise bits')

    @property
    def padded_dim(self) -> int:
        """d' = the next power of two (the Walsh-Hadamard transform's size)."""
        return 1 << (self.dim - 1).bit_length()

    @property
    def k_stddevs(self) -> float:
        """Standard deviations of the sum kept inside 2^b: Φ^-1(1 - p/2) (normal tails)."""
        from statistics import NormalDist  # pylint: disable=import-outside-toplevel
        return NormalDist().inv_cdf(1.0 - self.modclip_prob / 2.0)

    @property
    def scale(self) -> float:
        """1/γ solving 2^b = 2 k_σ sqrt(c^2 m^2 / d + (γ^2/4 + σ_l^2) m) / γ (Sec. 4.4)."""
        m, c, k = self.clients_per_round, self.l2_norm_clip, self.k_stddevs
        local = self.noise_multiplier * c / math.sqrt(m)
        return (math.sqrt(2.0 ** (2 * self.bits) - m * k * k)
                / (2.0 * k * math.sqrt(c * c * m * m / self.padded_dim + m * local * local)))

    @property
    def local_stddev(self) -> float:
        """σ_l in integer units: σ S / (γ sqrt(m))."""
        return self.noise_multiplier * self.l2_norm_clip * self.scale / math.sqrt(
            self.clients_per_round)

    @property
    def inflated_l2(self) -> float:
        """Δ̃: the L2 bound after conditional rounding, in integer units (Kairouz et al. Thm. 1).

        min(Δ + sqrt(d), sqrt(Δ^2 + d/4 + sqrt(2 ln(1/β)) (Δ + sqrt(d)/2))), Δ = S/γ.
        """
        norm, root_d = self.l2_norm_clip * self.scale, math.sqrt(self.padded_dim)
        plain = norm + root_d
        if self.beta == 0:
            return plain
        squared = (norm ** 2 + self.padded_dim / 4.0
                   + math.sqrt(2.0 * math.log(1.0 / self.beta)) * (norm + root_d / 2.0))
        return min(plain, math.sqrt(squared))

    def noise_multiplier_with(self, contributors: int) -> float:
        """σ_eff = sqrt(k) σ_l / Δ̃ of a sum holding `contributors` = k noise shares."""
        return accounting.ddgauss_noise_multiplier(self.local_stddev, self.inflated_l2, contributors)


def matching_params(noise_multiplier: float, l2_norm_clip: float, clients_per_round: int,
                    dim: int, bits: int = 16) -> DdgParams:
    """DDGauss parameters whose m noise shares give σ_eff = `noise_multiplier` exactly.

    σ_eff = sqrt(m) σ_l / Δ̃ falls short of the requested σ by the rounding inflation
    Δ̃ / (S/γ) (0.05 % for the MNIST MLP at b = 16), so the same σ would give distributed DP
    a slightly larger ε than central DP-FedAvg. Bisection on the requested σ' in
    [σ, 2σ] (σ_eff grows with σ') until σ_eff(σ') = σ to 1e-12 relative: both modes then
    have the same ε at the same `noise_multiplier`.
    """
    def params(sigma: float) -> DdgParams:
        return DdgParams(l2_norm_clip, sigma, clients_per_round, dim, bits)

    if noise_multiplier == 0:
        return params(0.0)
    low, high = noise_multiplier, 2.0 * noise_multiplier
    if params(high).noise_multiplier_with(clients_per_round) < noise_multiplier:
        raise ValueError(f'bits={bits} inflates the rounded norm by more than 2x: raise bits')
    while high - low > 1e-12 * noise_multiplier:
        middle = (low + high) / 2.0
        if params(middle).noise_multiplier_with(clients_per_round) < noise_multiplier:
            low = middle
        else:
            high = middle
    return params(high)


def clip_l2(update: np.ndarray, bound: float) -> np.ndarray:
    """update · min(1, S / ||update||_2): the client's clipping, step 1 (zero stays zero)."""
    norm = float(np.linalg.norm(update))
    return update * min(1.0, bound / norm) if norm > 0 else update


def hadamard(x: np.ndarray) -> np.ndarray:
    """The orthonormal Walsh-Hadamard transform H x / sqrt(d) of a vector of size d = 2^j.

    Sylvester's H_(2^j) = H_(2^a1) ⊗ H_(2^a2) ⊗ ... (a1 + a2 + ... = j, each a <= 6): with x
    read row-major as a 2^a1 x 2^a2 x ... array, H x applies H_(2^ai) along axis i (one
    batched matrix product over the axes before it), d (2^a1 + 2^a2 + ...) multiplications
    instead of d^2.
    """
    d = x.size
    if d < 1 or d & (d - 1):
        raise ValueError(f'the Walsh-Hadamard transform needs a power-of-two size, got {d}')
    j = d.bit_length() - 1
    parts = -(-j // 6) or 1
    y, before = np.asarray(x, dtype=np.float64), 1
    for e in (j // parts + (i < j % parts) for i in range(parts)):
        y = np.matmul(_sylvester(1 << e), y.reshape(before, 1 << e, -1))
        before <<= e
    return y.reshape(d) / math.sqrt(d)


@functools.lru_cache(maxsize=8)
def _sylvester(n: int) -> np.ndarray:
    """The ±1 Hadamard matrix of order n = 2^k (Sylvester's construction)."""
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def rotation_signs(seed: int, round_index: int, size: int) -> np.ndarray:
    """The public random signs D of one round (shared seed: every party derives the same)."""
    generator = np.random.Generator(np.random.PCG64([seed, round_index]))
    return generator.integers(0, 2, size).astype(np.float64) * 2.0 - 1.0


def discrete_gaussian(sigma: float, size: int, prg: Prg) -> np.ndarray:
    """`size` iid samples of N_Z(0, σ^2), P(x) ∝ exp(-x^2 / (2σ^2)) on the integers.

    Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy",
    NeurIPS 2020, Algorithm 3, vectorised over blocks of candidates: a discrete Laplace
    proposal Y, P(Y = y) ∝ exp(-|y|/t) with t = floor(σ) + 1, accepted with probability
    exp(-(|Y| - σ^2/t)^2 / (2σ^2)). Y = ±G as in their Algorithm 2: G = floor(-t ln U) is
    geometric (P(G >= k) = e^(-k/t)), the sign a fair bit, and (-, 0) rejected so that 0 is
    not counted twice. Each candidate takes two keystream words: U from the top 52 bits of
    the first, the sign from its lowest bit, the acceptance uniform from the second.
    Candidates are drawn in blocks of at most `_NOISE_BLOCK` (their temporaries stay in
    cache) and the accepted ones fill the output in order until it is full; the accepted
    candidates are iid N_Z(0, σ^2), so which block's surplus is dropped does not matter.
    """
    if sigma == 0:
        return np.zeros(size, dtype=np.int64)
    out = np.empty(size, dtype=np.int64)
    filled = 0
    while filled < size:
        wanted = size - filled
        accepted = _accepted_candidates(sigma, min(_NOISE_BLOCK, wanted + wanted // 2 + 16), prg)
        taken = min(accepted.size, wanted)
        out[filled:filled + taken] = accepted[:taken]
        filled += taken
    return out


def _accepted_candidates(sigma: float, count: int, prg: Prg) -> np.ndarray:
    """The accepted ones among `count` proposals ±G of `discrete_gaussian`, as int64."""
    t = math.floor(sigma) + 1
    words = prg.uint64((2, count))
    magnitude = unit_floats(words[0])
    np.log(magnitude, out=magnitude)
    magnitude *= -t
    np.floor(magnitude, out=magnitude)  # G = floor(-t ln U)
    threshold = magnitude - sigma * sigma / t
    np.square(threshold, out=threshold)
    threshold *= -0.5 / (sigma * sigma)
    np.exp(threshold, out=threshold)  # exp(-(G - σ²/t)² / (2σ²))
    sign = (words[0] & np.uint64(1)).astype(np.float64)  # 1: negative
    keep = unit_floats(words[1]) < threshold
    keep &= (sign == 0) | (magnitude != 0)  # reject (-, 0)
    sign *= -2.0
    sign += 1.0
    magnitude *= sign  # ±G by a product: NumPy's masked negation is 4x slower
    return magnitude[keep].astype(np.int64)


def conditional_round(y: np.ndarray, bound: float, prg: Prg) -> np.ndarray:
    """Unbiased randomized rounding of y, redrawn until ||round(y)||_2 <= bound (Sec. 4.1).

    Raises:
      RoundingError: no draw within the bound after many tries (bound too tight for y).
    """
    floor = np.floor(y)
    for _ in range(_MAX_ROUNDING_TRIES):
        rounded = floor + (prg.uniform01(y.shape) < (y - floor))
        if float(np.dot(rounded, rounded)) <= bound * bound:
            return rounded.astype(np.int64)
    raise RoundingError(f'conditional rounding found no rounding of norm <= {bound:.6g} in '
                        f'{_MAX_ROUNDING_TRIES} draws (||y|| = {np.linalg.norm(y):.6g})')


def centred_mod(z: np.ndarray, bits: int) -> np.ndarray:
    """z mod 2^b as the representative in [-2^(b-1), 2^(b-1))."""
    half = 1 << (bits - 1)
    return ((np.asarray(z, dtype=np.int64) + half) & (2 * half - 1)) - half  # two's complement


def inner_precision(bits: int, num_clients: int, name: str = 'shamir') -> int:
    """The fixed-point bits f that carry k integer vectors exactly through scheme `name`.

    Schemes that encode the weighted value v_i / k (Shamir, SMPC, SecAgg+) round each
    client's v_i / k to 2^-f: f = b + 1 + ceil(2 log2 k) keeps k rounding errors below 1/4
    of an integer of the sum. RLWE keeps equal weights as the integers W_i = 1 and encodes
    v_i = z_i / 2^(b-1) itself, which is exact once f >= b - 1: f = b, so the sum of k
    values needs only k 2^b of BFV's plaintext range (f = b + 1 + 2 log2 k overflowed it
    from k = 17 clients on at b = 16).
    """
    if name == 'rlwe':
        return bits
    return bits + 1 + math.ceil(2 * math.log2(max(num_clients, 1)))


def inner_aggregator(name: str, bits: int, num_clients: int,
                     rng: Optional[RandomSource] = None,
                     neighbours: Optional[int] = None) -> SecureAggregator:
    """The secure aggregator `name` set up to sum k vectors of values in [-1, 1] exactly
    (`neighbours`: SecAgg+'s graph degree, None for its default)."""
    cls, precision = scheme_class(name), inner_precision(bits, num_clients, name)
    if neighbours is not None and name not in PER_ROUND_SCHEMES:
        raise ValueError(f'neighbours is a setting of {PER_ROUND_SCHEMES}, not of {name!r}')
    if name == 'plain':
        return cls()
    if name == 'smpc':
        return cls(precision=precision, rng=rng)
    if name in PER_ROUND_SCHEMES:
        # Deterministic rounding: `_exact_sum` removes the rounding errors anyway, and
        # stochastic rounding would cost a keystream word and float operations per value.
        return cls(num_clients, neighbours=neighbours, precision=precision, bound=1.0,
                   rounding='deterministic', rng=rng)
    return cls(precision=precision, bound=1.0, rng=rng)


class DistributedDpAggregator(SecureAggregator):
    """DDGauss (module docstring) around a secure aggregator: returns (Σ noised updates) / m.

    Weights are ignored: DP-FedAvg averages clipped updates with equal weights. Clients
    that drop (`aggregate_with_dropouts`) send nothing; `stats.extra['contributors']` is the
    number of noise shares in the sum, for the accountant.
    """

    def __init__(self, params: DdgParams, inner: SecureAggregator,
                 rng: Optional[RandomSource] = None, rotation_seed: int = 0):
        if not isinstance(inner, SecureAggregator):
            raise TypeError(f'inner must be a SecureAggregator, got {type(inner).__name__}')
        self.params, self.inner = params, inner
        self.name = f'ddgauss+{inner.name}'
        self.prg = Prg(rng)  # the clients' rounding and noise: AES-CTR, keyed from rng / the OS
        self.rotation_seed = checks.integer('rotation_seed', rotation_seed)
        self.rounds = 0
        tau_d = accounting.ddgauss_tau(params.local_stddev, params.clients_per_round) * params.padded_dim
        if params.noise_multiplier > 0 and tau_d > 1e-6:
            raise ValueError(f'the discrete noise is too coarse (τ d = {tau_d:.3g} > 1e-6, '
                             f'σ_l = {params.local_stddev:.3g}): raise bits or noise_multiplier')

    def encode(self, update: np.ndarray, signs: np.ndarray) -> np.ndarray:
        """Client side, steps 1-5: clip, rotate, scale, round, add the noise share, mod 2^b."""
        p = self.params
        padded = np.zeros(p.padded_dim)
        padded[:update.size] = clip_l2(update, p.l2_norm_clip)
        rounded = conditional_round(hadamard(signs * padded) * p.scale, p.inflated_l2, self.prg)
        share = discrete_gaussian(p.local_stddev, p.padded_dim, self.prg)
        return centred_mod(rounded + share, p.bits)

    def decode(self, total: np.ndarray, signs: np.ndarray, contributors: int) -> np.ndarray:
        """Server side: Σ z mod 2^b (centred), times γ, rotated back, divided by the k
        clients whose shares it holds."""
        p = self.params
        values = centred_mod(total, p.bits).astype(np.float64) / p.scale
        return (signs * hadamard(values))[:p.dim] / contributors

    def aggregate(self, client_updates: Sequence[Sequence[np.ndarray]],
                  weights: Optional[Sequence[float]] = None):
        """(Σ_i noised clipped update_i) / m through the inner secure aggregator."""
        return self.aggregate_with_dropouts(client_updates, weights, None)

    def aggregate_with_dropouts(self, client_updates: Sequence[Sequence[np.ndarray]],
                                weights: Optional[Sequence[float]],
                                dropped: Optional[Sequence[bool]]):
        """(Σ over the k clients that did not drop of their noised clipped updates) / k.

        Dropped clients never encode nor send (`dropouts` says how each inner protocol
        loses them), so the sum holds k noise shares, not m: `stats.extra['contributors']`
        = k is what the accountant must use (`noise_multiplier_with(k)`).
        """
        start = time.perf_counter()
        spec, _ = check_updates(client_updates, weights)
        if spec.size != self.params.dim:
            raise ValueError(f'updates have {spec.size} values, the DDGauss parameters expect '
                             f'dim={self.params.dim}')
        mask = (np.zeros(len(client_updates), bool) if dropped is None
                else np.asarray(dropped, bool).reshape(-1))
        signs = rotation_signs(self.rotation_seed, self.rounds, self.params.padded_dim)
        self.rounds += 1
        half = float(1 << (self.params.bits - 1))
        silent = np.zeros(self.params.padded_dim)  # a dropped client's slot: never summed
        sent: List[List[np.ndarray]] = [[silent if gone else self.encode(spec.flatten(u), signs) / half]
                                        for u, gone in zip(client_updates, mask)]
        mean, stats = dropouts.aggregate(self.inner, sent, None, mask)
        k = int(np.count_nonzero(~mask))
        total = self._exact_sum(mean[0] * half * k)
        average = spec.unflatten(self.decode(total, signs, k))
        return average, self._stats(stats, k, time.perf_counter() - start)

    @staticmethod
    def _exact_sum(scaled_mean: np.ndarray) -> np.ndarray:
        total = np.rint(scaled_mean)
        gap = float(np.max(np.abs(scaled_mean - total))) if total.size else 0.0
        if gap > 0.25:
            raise InconsistentResultError(f'the secure sum is {gap:.3g} away from an integer '
                                          'vector: its fixed-point precision is too low')
        return total.astype(np.int64)

    def _stats(self, inner: AggregationStats, k: int, seconds: float) -> AggregationStats:
        p = self.params
        extra = dict(inner.extra)
        extra.update(scale=p.scale, local_stddev=p.local_stddev, inflated_l2=p.inflated_l2,
                     bits=float(p.bits), contributors=float(k),
                     inner_seconds=inner.seconds)
        return dataclasses.replace(inner, scheme=self.name, seconds=seconds, extra=extra)


def make_aggregator(name: str, l2_norm_clip: float, noise_multiplier: float,
                    clients_per_round: int, dim: int, bits: int = 16,
                    rng: Optional[RandomSource] = None, rotation_seed: int = 0,
                    neighbours: Optional[int] = None) -> DistributedDpAggregator:
    """DDGauss around the secure aggregator `name` (`plain` for no cryptography), its noise
    calibrated so that all m shares give σ_eff = `noise_multiplier` (`matching_params`)."""
    params = matching_params(noise_multiplier, l2_norm_clip, clients_per_round, dim, bits)
    inner = inner_aggregator(name, bits, clients_per_round, rng, neighbours)
    return DistributedDpAggregator(params, inner, rng, rotation_seed)
