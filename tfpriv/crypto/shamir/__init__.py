"""Shamir secret sharing over a prime field, robust reconstruction, and `ShamirAggregator`.

Modules: `field` (arithmetic mod a prime p < 2^31, Lagrange interpolation),
`reed_solomon` (Berlekamp-Welch decoding of corrupted shares), `sharing`
(`split` / `reconstruct` of float tensors through `tfpriv.crypto.fixed_point`),
`secagg` (`ShamirAggregator`).
"""

from tfpriv.crypto.shamir.secagg import ShamirAggregator
from tfpriv.crypto.shamir.sharing import (DEFAULT_PRECISION, Share, reconstruct,
                                          reconstruct_with_report, split)

__all__ = ['DEFAULT_PRECISION', 'ShamirAggregator', 'Share', 'reconstruct',
           'reconstruct_with_report', 'split']
