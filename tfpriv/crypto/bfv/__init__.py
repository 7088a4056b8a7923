"""BFV-style RLWE homomorphic encryption in NumPy, for encrypted aggregation.

Modules: `params` (128-bit presets), `ntt` (RNS negacyclic NTT and exact
products), `scheme` (keys, encryption, homomorphic add/scalar multiply, noise
tracking), `encoding` (float tensors <-> fixed point mod t), `serialize`
(compact authenticated bytes), `threshold` (Shamir-shared key, partial
decryption) and `secagg` (`RlweAggregator`). See docs/bfv.md.
"""
