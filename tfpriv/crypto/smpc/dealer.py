"""The crypto provider: a trusted dealer of correlated randomness (preprocessing).

The dealer never sees a secret. It draws random values, shares them and sends
party i its bundle; parties then spend each bundle in exactly one protocol step.
This is the PySyft `crypto_provider` of the seed notebooks, the commodity-server
model of Beaver ("Commodity-based cryptography", STOC 1997). Everything it hands
out is independent of the data, so it can all be produced before the inputs
exist; its traffic is counted as `offline`.

Bundles, per call (x ⋆ y is the bilinear map the triple is for):
  triple:          [a], [b], [a ⋆ b]  (Beaver, CRYPTO 1991): products, matmul, conv2d;
                   with `binary`, XOR shares and ⋆ = AND, for Boolean circuits.
  truncation_pair: [r], [r_63], [(r mod 2^63) >> m]   for exact truncation by m bits
                   (the r_63 bit corrects the wrap-around, after Escudero et al.,
                   "Improved primitives for MPC over mixed arithmetic-binary
                   circuits", CRYPTO 2020).
  edabit:          [r] arithmetic and <-r> binary (as bit planes): one random word in
                   both sharings (Escudero et al. 2020), to bit-decompose a masked opening.
  dabit:           a random bit <rho> binary and [rho] arithmetic (Rotaru and Wood,
                   INDOCRYPT 2019), to convert a binary-shared bit to arithmetic.
  bit_injection:   a dabit plus [a], [rho a], to multiply a binary-shared bit by an
                   arithmetic value in one round.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from tfpriv.crypto.smpc.party import Network
from tfpriv.rng import Prg, RandomSource
from tfpriv.crypto.smpc.ring import bit_planes
from tfpriv.crypto.smpc.sharing import split

Bundles = List[Tuple[np.ndarray, ...]]  # bundles[i] is party i's
_LOW_63 = np.uint64(2**63 - 1)


class Dealer:
    """Hands out correlated randomness to `num_parties` computing parties."""

    def __init__(self, num_parties: int, network: Network, rng: Optional[RandomSource] = None):
        self.num_parties = num_parties
        self._network = network
        self._prg = Prg(rng)

    def _deal(self, values: Sequence[Tuple[np.ndarray, bool]]) -> Bundles:
        """Shares each (value, binary) and sends party i the i-th share of each."""
        per_value = [split(value, self.num_parties, self._prg, binary) for value, binary in values]
        bundles = [tuple(shares[i] for shares in per_value) for i in range(self.num_parties)]
        self._network.offline_delivery(bundles)
        return bundles


    def triple(self, op: Callable[[np.ndarray, np.ndarray], np.ndarray], shape_a: Tuple[int, ...],
               shape_b: Tuple[int, ...], binary: bool = False,
               dtype: np.dtype = np.uint64) -> Bundles:
        """Beaver triples ([a], [b], [op(a, b)]) for a bilinear `op` (AND if `binary`).

        Binary triples may be uint8 (packed bit planes) or uint64 words.
        """
        a, b = self._prg.draw(shape_a, dtype), self._prg.draw(shape_b, dtype)
        return self._deal([(a, binary), (b, binary), (op(a, b), binary)])

    def truncation_pair(self, shape: Tuple[int, ...], shift: int) -> Bundles:
        """([r], [bit 63 of r], [(r mod 2^63) >> shift]) for a uniform word r."""
        r = self._prg.uint64(shape)
        return self._deal([(r, False), (r >> np.uint64(63), False),
                           ((r & _LOW_63) >> np.uint64(shift), False)])

    def edabit(self, shape: Tuple[int, ...]) -> Bundles:
        """([r], <planes of -r>): a uniform word shared arithmetically, and the 64 bit
        planes of its negation (`ring.bit_planes`) shared by XOR."""
        r = self._prg.uint64(shape)
        return self._deal([(r, False), (bit_planes(np.uint64(0) - r), True)])

    def dabit(self, shape: Tuple[int, ...]) -> Bundles:
        """(<rho>, [rho]) for uniform bits rho (binary shares are bool)."""
        rho = self._prg.bits(shape)
        return self._deal([(rho, True), (rho.astype(np.uint64), False)])

    def bit_injection(self, bit_shape: Tuple[int, ...], value_shape: Tuple[int, ...]) -> Bundles:
        """(<rho>, [rho], [a], [rho a]): a dabit of `bit_shape` and a mask of `value_shape`."""
        rho = self._prg.bits(bit_shape)
        a = self._prg.uint64(value_shape)
        return self._deal([(rho, True), (rho.astype(np.uint64), False), (a, False),
                           (rho * a, False)])
