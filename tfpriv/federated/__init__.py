"""Federated learning on TensorFlow Federated: FedAvg, DP-FedAvg and secure aggregation.

Submodules import TensorFlow Federated lazily; import them directly, e.g.
`from tfpriv.federated.runtime import tff_context`.
"""
