"""Cryptography for private learning in pure NumPy: secret sharing, SMPC, RLWE.

Modules and packages: `secagg` (the `SecureAggregator` interface, `Faults`, the
scheme registry), `fixed_point` (the one fixed-point codec), `shamir`, `smpc`,
`rlwe`. Randomness comes from `tfpriv.rng` only.
"""

from tfpriv.crypto.secagg import (SCHEMES, AggregationStats, Faults, PlainAggregator,
                                  SecureAggregator, registry, scheme_class)

__all__ = ['AggregationStats', 'Faults', 'PlainAggregator', 'SCHEMES', 'SecureAggregator',
           'registry', 'scheme_class']
