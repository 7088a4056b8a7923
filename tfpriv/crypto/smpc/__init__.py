"""Secure multi-party computation by additive secret sharing over Z_2^64.

    from tfpriv.crypto.smpc import Cluster, SharedTensor
    cluster = Cluster(num_parties=3)                 # + a trusted dealer
    alice = cluster.client('alice')
    x = SharedTensor.share(cluster, [[1.5, -2.0]], owner=alice)
    y = (x @ np.ones((2, 3))).relu()
    y.reveal(to=alice)                               # only alice learns it

Modules: `ring` (Z_2^64, fixed point through `tfpriv.crypto.fixed_point`),
`sharing` (additive and XOR shares drawn from `tfpriv.rng.Prg`), `party` (parties,
network, cluster), `dealer` (correlated randomness), `protocols` (Beaver,
truncation), `compare` (exact comparison), `conv`, `tensor` (`SharedTensor`),
`secagg` (`SmpcAggregator`), `inference` (encrypted Keras inference).
"""

from tfpriv.crypto.smpc.party import Cluster, Network, Party, Traffic
from tfpriv.crypto.smpc.ring import Encoding
from tfpriv.crypto.smpc.tensor import SharedTensor, stack

__all__ = ['Cluster', 'Encoding', 'Network', 'Party', 'SharedTensor', 'Traffic', 'stack']
