"""RLWE homomorphic encryption (BFV) in pure NumPy, for encrypted model aggregation.

Modules: `params` (128-bit HE Standard presets), `ntt` (batched negacyclic NTT),
`rns` (the ring in RNS form), `sampling` (ternary, discrete Gaussian and uniform
samplers on `tfpriv.rng.Prg`), `keys`, `bfv` (encryption and homomorphic
operations with noise tracking), `encoding` (fixed point through
`tfpriv.crypto.fixed_point`), `modswitch` (compression by modulus switching:
`compress`, `decompress`), `serialize`, `threshold` (Shamir-shared key),
`secagg` (`RlweAggregator`).
"""

from tfpriv.crypto.rlwe.bfv import (Ciphertext, Noise, NoiseBudgetError, PlaintextOverflowError,
                                    add, add_plain, decrypt, encrypt, encrypt_symmetric,
                                    mul_plain, mul_scalar, negate, sub)
from tfpriv.crypto.rlwe.modswitch import CompressedCiphertext, compress, decompress
from tfpriv.crypto.rlwe.encoding import Encoder
from tfpriv.crypto.rlwe.keys import PublicKey, SecretKey, keygen
from tfpriv.crypto.rlwe.params import InsecureParametersError, Params, preset
from tfpriv.crypto.rlwe.secagg import RlweAggregator
from tfpriv.crypto.rlwe.serialize import SerializationError, dumps, loads

__all__ = ['Ciphertext', 'CompressedCiphertext', 'Encoder', 'InsecureParametersError', 'Noise',
           'NoiseBudgetError', 'Params', 'PlaintextOverflowError', 'PublicKey', 'RlweAggregator',
           'SecretKey', 'SerializationError', 'add', 'add_plain', 'compress', 'decompress',
           'decrypt', 'dumps', 'encrypt', 'encrypt_symmetric', 'keygen', 'loads', 'mul_plain',
           'mul_scalar', 'negate', 'preset', 'sub']
