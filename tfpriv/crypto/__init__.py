"""Cryptography for private learning in pure NumPy: secret sharing, SMPC, RLWE."""

from tfpriv.crypto.secagg import AggregationStats, PlainAggregator, SecureAggregator

__all__ = ['AggregationStats', 'PlainAggregator', 'SecureAggregator']
