"""SecAgg+ as named stages over one round state (Bonawitz et al. 2017; Bell et al. 2020).

Stages (the numbering of Bonawitz et al. 2017, Fig. 4; the sparse graph of
Bell et al. 2020 restricts every "all clients" to "the k neighbours of u"):

0. `setup`: public parameters (n clients, threshold t, k neighbours, modulus
   2^b, `bound`, `precision`) and the random Harary graph (`graph.py`).
1. `advertise_keys`: client u draws two X25519 key pairs, (c_u) to encrypt
   shares and (s_u) to agree masks, and sends both public keys; the server
   forwards them to u's neighbours. U1 = the clients that advertised.
2. `share_keys`: u draws a self-mask seed b_u and Shamir-shares b_u and its
   private key s_u t-of-k among its neighbours in U1 (`primitives`); the share
   for v is AES-GCM-encrypted under HKDF(X25519(c_u, c_v)) and routed through
   the server, which cannot read it. U2 = the clients whose shares arrived.
3. `masked_input`: u sends
       y_u = q_u + PRG(b_u) + sum_{v in N(u) cap U2, v > u} PRG(s_uv)
                            - sum_{v in N(u) cap U2, v < u} PRG(s_uv)   mod 2^b,
   q_u the quantized weighted update (`quantize.py`), s_uv =
   HKDF(X25519(s_u, s_v)) = s_vu. U3 = the clients whose y_u arrived.
4. `unmask`: the server announces U3; each survivor v in U4 sends, for each
   neighbour u whose shares it holds, the share of b_u if u is in U3, else the
   share of s_u (never both). From t shares the server rebuilds b_u for every u
   in U3 and s_u for every u in U2 minus U3, subtracts the self masks and the
   pairwise masks that u's neighbours in U3 added towards the dropped u, and
   decodes sum_{u in U3} q_u. Pairwise masks between two members of U3 cancel.

Threat model: an honest-but-curious server and up to t - 1 colluding clients
per neighbourhood (Bell et al. give the graph conditions for collusions across
neighbourhoods). The defences of the actively malicious variant (signed keys,
the consistency round that stops a server from claiming a live client dropped
to learn both of its secrets) are not implemented; t > k/2 keeps honest
survivors from ever revealing more than t - 1 shares of the secret they do not
open. The server learns the sum over U3, the sets U1..U4, the graph
and the public weights; each y_u alone is uniform in Z_{2^b}^d because PRG(b_u)
is. Weights are public, as in FedAvg: clients encode (n_u / N) x_u with N the
round's total count, and the server divides the decoded sum by the total weight
of U3, so the average is over the clients whose inputs count.

Every party runs in this process; what a party holds is kept in its own record
and every message is serialized, so byte counts are those of a deployment (the
server's broadcasts to clients are not counted in `sent`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tfpriv.crypto.masking import primitives
from tfpriv.crypto.masking.graph import Graph, harary_graph
from tfpriv.crypto.masking.quantize import Quantizer
from tfpriv.errors import DecodingError, DropoutError
from tfpriv.progress import Progress, each
from tfpriv.rng import Prg, RandomSource

_KEYS = struct.Struct('<BI32s32s')  # stage, sender, c public key, s public key
_SHARE = struct.Struct('<BII')  # stage, sender, recipient; AES-GCM ciphertext follows
_INPUT = struct.Struct('<BxxxI')  # stage, sender; the masked vector follows, 8-byte aligned
_REPLY = struct.Struct('<BII')  # stage, sender, number of entries
_ENTRY = struct.Struct('<IB')  # owner of the shared secret, 0 = seed b, 1 = key s; share follows
_SEED, _KEY = 0, 1


@dataclasses.dataclass(frozen=True)
class Dropouts:
    """Clients that go offline right after a stage (fault injection for tests and benchmarks)."""

    after_advertise: Tuple[int, ...] = ()
    after_share: Tuple[int, ...] = ()
    after_masked_input: Tuple[int, ...] = ()

    def __post_init__(self):
        for name in ('after_advertise', 'after_share', 'after_masked_input'):
            object.__setattr__(self, name, tuple(int(u) for u in getattr(self, name)))

    @property
    def indices(self) -> Tuple[int, ...]:
        """Every client that drops, stage by stage."""
        return self.after_advertise + self.after_share + self.after_masked_input

    def check(self, num_parties: int) -> None:
        """ValueError unless every index is a client and none drops twice."""
        bad = [u for u in self.indices if not 0 <= u < num_parties]
        if bad:
            raise ValueError(f'dropouts must name clients in [0, {num_parties}), got {bad}')
        if len(set(self.indices)) != len(self.indices):
            raise ValueError(f'dropouts must name each client at most once, got {self}')


@dataclasses.dataclass(frozen=True)
class Config:
    """The public parameters of stage 0."""

    num_parties: int
    threshold: int
    neighbours: int
    quantizer: Quantizer
    dropouts: Dropouts = Dropouts()


@dataclasses.dataclass(repr=False)
class Client:
    """What client u holds; `repr=False` keeps key material and the update out of logs."""

    index: int
    update: np.ndarray
    weight: float
    cipher_key: Optional[X25519PrivateKey] = None
    mask_key: Optional[X25519PrivateKey] = None
    self_seed: bytes = b''
    peers: Dict[int, Tuple[bytes, bytes]] = dataclasses.field(default_factory=dict)
    held: Dict[int, bytes] = dataclasses.field(default_factory=dict)
    share_keys: Dict[int, bytes] = dataclasses.field(default_factory=dict)  # per neighbour, stage 2
    seconds: float = 0.0  # wall-clock time computing its messages
    cpu_seconds: float = 0.0  # CPU time of the same (insensitive to waiting for a busy CPU)
    stage_cpu_seconds: Dict[str, float] = dataclasses.field(default_factory=dict)  # by `STAGE_NAMES`

    def __repr__(self) -> str:
        return f'Client(index={self.index}, peers={sorted(self.peers)})'


@dataclasses.dataclass
class ServerView:
    """Every message the server received in the round, as the bytes that arrived."""

    keys: Dict[int, bytes] = dataclasses.field(default_factory=dict)
    shares: Dict[Tuple[int, int], bytes] = dataclasses.field(default_factory=dict)
    masked_inputs: Dict[int, bytes] = dataclasses.field(default_factory=dict)
    replies: Dict[int, bytes] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RoundState:
    """One round: parameters, the parties' records, the server's view and the costs."""

    config: Config
    graph: Graph
    rng: RandomSource
    clients: List[Client]
    size: int
    view: ServerView = dataclasses.field(default_factory=ServerView)
    public_keys: Dict[int, Tuple[bytes, bytes]] = dataclasses.field(default_factory=dict)
    advertised: Tuple[int, ...] = ()  # U1
    shared: Tuple[int, ...] = ()  # U2
    submitted: Tuple[int, ...] = ()  # U3
    answered: Tuple[int, ...] = ()  # U4
    total: Optional[np.ndarray] = None
    average: Optional[np.ndarray] = None
    sent: Optional[np.ndarray] = None  # bytes each client sent
    messages: int = 0
    server_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    progress: Optional[Progress] = None  # told ('clients: <stage>', i, n) per client and stage


@contextlib.contextmanager
def _clock(state: RoundState, client: Optional[Client] = None,
           stage: str = '') -> Iterator[None]:
    """Adds the block's wall-clock and CPU time to the client's (None: the server's) totals;
    a client's CPU time also to its `stage` (one of `STAGE_NAMES`)."""
    start, cpu = time.perf_counter(), time.thread_time()
    yield
    elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
    if client is None:
        state.server_seconds += elapsed
        state.server_cpu_seconds += cpu
    else:
        client.seconds += elapsed
        client.cpu_seconds += cpu
        client.stage_cpu_seconds[stage] = client.stage_cpu_seconds.get(stage, 0.0) + cpu


def _send(state: RoundState, sender: int, message: bytes) -> bytes:
    state.sent[sender] += len(message)
    state.messages += 1
    return message


def _survivors(members: Sequence[int], dropped: Sequence[int]) -> Tuple[int, ...]:
    gone = set(dropped)
    return tuple(u for u in members if u not in gone)


def setup(config: Config, updates: Sequence[np.ndarray], weights: np.ndarray,
          rng: RandomSource, progress: Optional[Progress] = None) -> RoundState:
    """Stage 0: the graph and one record per client (its update and public weight)."""
    clients = [Client(u, np.asarray(x, dtype=np.float64), float(w))
               for u, (x, w) in enumerate(zip(updates, weights))]
    graph = harary_graph(config.num_parties, config.neighbours, rng)
    size = int(clients[0].update.size)
    return RoundState(config, graph, rng, clients, size,
                      sent=np.zeros(config.num_parties, dtype=np.int64), progress=progress)


def advertise_keys(state: RoundState) -> RoundState:
    """Stage 1: two X25519 key pairs per client; the server forwards public keys to neighbours."""
    for client in each(state.progress, 'clients: keys', state.clients):
        with _clock(state, client, 'keys'):
            client.cipher_key = primitives.private_key(state.rng)
            client.mask_key = primitives.private_key(state.rng)
            message = _KEYS.pack(1, client.index, primitives.public_bytes(client.cipher_key),
                                 primitives.public_bytes(client.mask_key))
        state.view.keys[client.index] = _send(state, client.index, message)
    with _clock(state):
        for message in state.view.keys.values():
            _, sender, cipher_public, mask_public = _KEYS.unpack(message)
            state.public_keys[sender] = (cipher_public, mask_public)
        state.advertised = tuple(sorted(state.public_keys))
    for u in state.advertised:
        state.clients[u].peers = {v: state.public_keys[v] for v in state.graph[u]
                                  if v in state.public_keys}
    return state


def _share_key(client: Client, peer: int) -> bytes:
    """The AES-GCM key of the pair (client, peer), agreed once and kept for both directions."""
    if peer not in client.share_keys:
        client.share_keys[peer] = primitives.agree(client.cipher_key, client.peers[peer][0],
                                                   primitives.SHARE_LABEL)
    return client.share_keys[peer]


def _client_shares(state: RoundState, client: Client) -> Dict[int, bytes]:
    """Client side of stage 2: encrypted t-of-k shares of (b_u, s_u), one message per neighbour."""
    t = state.config.threshold
    recipients = sorted(client.peers)
    if len(recipients) < t:
        raise DropoutError(f'client {client.index} has {len(recipients)} neighbours left to '
                           f'share its keys with, fewer than threshold {t}')
    client.self_seed = state.rng.bytes(primitives.SECRET_BYTES)
    blobs = primitives.split_secrets([client.self_seed, client.mask_key.private_bytes_raw()],
                                     recipients, t, state.rng)
    messages = {}
    for v, blob in zip(recipients, blobs):
        ciphertext = primitives.seal(_share_key(client, v), client.index, v, blob)
        messages[v] = _SHARE.pack(2, client.index, v) + ciphertext
    return messages


def _receive_share(state: RoundState, client: Client, message: bytes) -> None:
    """Client side of the stage-2 forwarding: decrypt and keep one neighbour's share."""
    _, sender, recipient = _SHARE.unpack_from(message)
    if recipient != client.index or sender not in client.peers:
        raise DecodingError(f'client {client.index} got a share routed {sender} -> {recipient}')
    client.held[sender] = primitives.unseal(_share_key(client, sender), sender, recipient,
                                            message[_SHARE.size:])


def share_keys(state: RoundState) -> RoundState:
    """Stage 2: each client in U1 that is still online shares (b_u, s_u) among its neighbours."""
    active = _survivors(state.advertised, state.config.dropouts.after_advertise)
    for u in each(state.progress, 'clients: shares', active):
        client = state.clients[u]
        with _clock(state, client, 'shares'):
            messages = _client_shares(state, client)
        for v, message in messages.items():
            state.view.shares[(u, v)] = _send(state, u, message)
    state.shared = active
    members = set(active)
    for (u, v), message in state.view.shares.items():
        if v in members:
            with _clock(state, state.clients[v], 'shares'):
                _receive_share(state, state.clients[v], message)
    return state


def _masked_input(state: RoundState, client: Client) -> bytes:
    """The stage-3 message: header, then y_u = q_u + PRG(b_u) + sum_{v > u} PRG(s_uv)
    - sum_{v < u} PRG(s_uv) mod 2^b, computed in place in the message."""
    quantizer = state.config.quantizer
    encoder = quantizer.encoder(client.update, client.weight, Prg(state.rng))
    peers = sorted(client.held)
    seeds = [client.self_seed] + [
        primitives.agree(client.mask_key, client.peers[v][1], primitives.MASK_LABEL)
        for v in peers]
    signs = [1] + [1 if v > client.index else -1 for v in peers]
    return quantizer.wire_message(
        state.size, _INPUT.pack(3, client.index),
        lambda out: primitives.add_masks(out, seeds, signs, fill=encoder))


def masked_input(state: RoundState) -> RoundState:
    """Stage 3: every client of U2 still online sends y_u; the server sums them mod 2^b."""
    quantizer = state.config.quantizer
    active = _survivors(state.shared, state.config.dropouts.after_share)
    state.total = np.zeros(state.size, dtype=quantizer.dtype)
    for u in each(state.progress, 'clients: masked inputs', active):
        client = state.clients[u]
        with _clock(state, client, 'masked_input'):
            message = _masked_input(state, client)
        state.view.masked_inputs[u] = _send(state, u, message)
        with _clock(state):
            state.total += quantizer.from_wire(memoryview(message)[_INPUT.size:], state.size)
    state.submitted = active
    if not active:
        raise DropoutError('no client sent its masked input: nothing to aggregate')
    return state


def _reply(state: RoundState, client: Client) -> bytes:
    """Client side of stage 4: for each neighbour, the share of b (in U3) or of s (dropped)."""
    submitted = set(state.submitted)
    entries = []
    for owner in sorted(client.held):
        kind = _SEED if owner in submitted else _KEY
        share = client.held[owner][kind * primitives.SHARE_BYTES:
                                   (kind + 1) * primitives.SHARE_BYTES]
        entries.append(_ENTRY.pack(owner, kind) + share)
    return _REPLY.pack(4, client.index, len(entries)) + b''.join(entries)


def _parse_replies(state: RoundState) -> Dict[Tuple[int, int], List[Tuple[int, bytes]]]:
    """Server side: (owner, kind) -> [(holder, share), ...] from the stage-4 replies."""
    shares: Dict[Tuple[int, int], List[Tuple[int, bytes]]] = {}
    for message in state.view.replies.values():
        _, holder, count = _REPLY.unpack_from(message)
        offset = _REPLY.size
        for _ in range(count):
            owner, kind = _ENTRY.unpack_from(message, offset)
            offset += _ENTRY.size
            share = message[offset:offset + primitives.SHARE_BYTES]
            offset += primitives.SHARE_BYTES
            shares.setdefault((owner, kind), []).append((holder, share))
    return shares


def _rebuild(state: RoundState, shares, owner: int, kind: int) -> bytes:
    """Server side: b_u or s_u of `owner` from t of its neighbours' shares, else DropoutError."""
    received = shares.get((owner, kind), [])
    t = state.config.threshold
    if len(received) < t:
        what = 'self-mask seed' if kind == _SEED else 'mask key (it dropped)'
        raise DropoutError(
            f'client {owner}\'s {what} has shares from only {len(received)} surviving '
            f'neighbours, threshold {t} are needed: too many clients dropped (at most '
            f'{state.config.neighbours - t} of each client\'s {state.config.neighbours} '
            f'neighbours may)')
    holders, blobs = zip(*received[:t])
    return primitives.reconstruct_secret(holders, blobs)


def _dropped_masks(state: RoundState, shares, owner: int) -> List[Tuple[bytes, int]]:
    """(seed, sign) undoing the pairwise masks that owner's neighbours in U3 added towards it."""
    submitted = set(state.submitted)
    partners = [v for v in state.graph[owner] if v in submitted]
    if not partners:
        return []
    key = X25519PrivateKey.from_private_bytes(_rebuild(state, shares, owner, _KEY))
    if primitives.public_bytes(key) != state.public_keys[owner][1]:
        raise DecodingError(f'the mask key rebuilt for client {owner} does not match the public '
                            f'key it advertised: a share was wrong')
    # y_v added +PRG(s_vu) when u > v and -PRG(s_vu) when u < v: subtract what was added.
    return [(primitives.agree(key, state.public_keys[v][1], primitives.MASK_LABEL),
             -1 if owner > v else 1) for v in partners]


def unmask(state: RoundState) -> RoundState:
    """Stage 4: survivors send shares; the server removes every mask and decodes the average."""
    state.answered = _survivors(state.submitted, state.config.dropouts.after_masked_input)
    for v in each(state.progress, 'clients: replies', state.answered):
        with _clock(state, state.clients[v], 'reply'):
            message = _reply(state, state.clients[v])
        state.view.replies[v] = _send(state, v, message)
    quantizer = state.config.quantizer
    with _clock(state):
        shares = _parse_replies(state)
        masks = [(_rebuild(state, shares, u, _SEED), -1) for u in state.submitted]
        for u in sorted(set(state.shared) - set(state.submitted)):
            masks += _dropped_masks(state, shares, u)
        seeds, signs = zip(*masks)
        primitives.add_masks(state.total, seeds, signs)
        total_weight = sum(state.clients[u].weight for u in state.submitted)
        if total_weight <= 0:
            raise DropoutError(f'the clients whose inputs arrived ({list(state.submitted)}) '
                               f'all have weight 0: nothing to average')
        state.average = quantizer.decode(quantizer.mask(state.total), total_weight)
    return state


STAGES = (advertise_keys, share_keys, masked_input, unmask)
STAGE_NAMES = ('keys', 'shares', 'masked_input', 'reply')  # a client's part of each stage


def run(config: Config, updates: Sequence[np.ndarray], weights: np.ndarray,
        rng: RandomSource, progress: Optional[Progress] = None) -> RoundState:
    """One round: `setup`, then every stage of `STAGES` in order (`progress`: see `RoundState`)."""
    state = setup(config, updates, weights, rng, progress)
    for stage in STAGES:
        state = stage(state)
    return state
