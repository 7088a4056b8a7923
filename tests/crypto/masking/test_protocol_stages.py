"""SecAgg+ stages (`tfpriv.crypto.masking.protocol`): the messages as bytes, the share
encryption recomputed with `cryptography` directly, the refusals of misrouted shares and of a
mask key that does not match its public key, and each party's clock.

References are independent of the code under test: the message layout of the module
docstring written out here (stage byte, sender), HKDF-SHA256 and AES-256-GCM from
`cryptography` for the share channel, and block counts worked out by hand for the clocks.
"""

import struct
import types

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tfpriv.crypto.masking import Dropouts, MaskingAggregator, Quantizer, primitives, protocol
from tfpriv.errors import DecodingError, DropoutError
from tfpriv.rng import RandomSource

N = 5


def one_round(num_parties=N, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    updates = [[rng.uniform(-1, 1, 6)] for _ in range(num_parties)]
    aggregator = MaskingAggregator(num_parties, rng=RandomSource(seed=seed), **kwargs)
    aggregator.aggregate(updates, rng.integers(1, 9, num_parties))
    return aggregator.last_round


def staged(dropouts=Dropouts(), stages=protocol.STAGES[:2]):
    """A round of N clients (complete graph, t = 3) run through `stages` only."""
    config = protocol.Config(N, 3, N - 1, Quantizer(32, 16, 1.0, 'deterministic'), dropouts)
    updates = [np.full(6, 0.25) for _ in range(N)]
    state = protocol.setup(config, updates, np.full(N, 1 / N), RandomSource(seed=3))
    for stage in stages:
        state = stage(state)
    return state


def test_each_message_starts_with_its_stage_and_sender():
    """Stage 1 keys, 2 shares, 3 masked inputs, 4 replies: byte 0 is the stage, then the sender
    (a uint32 after 3 padding bytes in a masked input, so its vector stays 8-byte aligned)."""
    state = one_round()
    view = state.view
    for u, message in view.keys.items():
        assert struct.unpack_from('<BI', message) == (1, u)
    for (u, v), message in view.shares.items():
        assert struct.unpack_from('<BII', message) == (2, u, v)
    for u, message in view.masked_inputs.items():
        assert struct.unpack_from('<BxxxI', message) == (3, u)
    for v, message in view.replies.items():
        assert struct.unpack_from('<BI', message) == (4, v)
    assert state.sent.dtype == np.int64 and len(view.shares) == N * (N - 1)


def test_shares_open_only_under_hkdf_of_the_pair_cipher_keys():
    """Share u -> v is AES-256-GCM under HKDF-SHA256(X25519(c_u, c_v), info = the share
    label), nonce (sender, recipient): recomputed here it opens to what v holds; under the
    pairwise-mask label, or the mask key pair, it does not."""
    state = one_round()
    for (u, v), message in state.view.shares.items():
        nonce = struct.pack('<IIxxxx', u, v)
        peer = X25519PublicKey.from_public_bytes(state.public_keys[u][0])
        shared = state.clients[v].cipher_key.exchange(peer)
        key = HKDF(hashes.SHA256(), 32, salt=None, info=primitives.SHARE_LABEL).derive(shared)
        assert AESGCM(key).decrypt(nonce, message[9:], nonce) == state.clients[v].held[u]
        wrong = HKDF(hashes.SHA256(), 32, salt=None, info=primitives.MASK_LABEL).derive(shared)
        mask_shared = state.clients[v].mask_key.exchange(
            X25519PublicKey.from_public_bytes(state.public_keys[u][1]))
        for bad in (wrong, mask_shared):
            with pytest.raises(InvalidTag):
                AESGCM(bad).decrypt(nonce, message[9:], nonce)


def test_a_share_routed_to_another_client_is_refused():
    state = one_round()
    message = state.view.shares[(0, 1)]
    with pytest.raises(DecodingError, match='client 2 got a share routed 0 -> 1'):
        protocol._receive_share(state, state.clients[2], message)


def test_a_client_with_fewer_than_t_peers_refuses_to_share():
    state = staged(stages=protocol.STAGES[:1])
    client = state.clients[0]
    client.peers = dict(sorted(client.peers.items())[:2])
    with pytest.raises(DropoutError, match='^client 0 has 2 neighbours left to share its keys '
                                           'with, fewer than threshold 3$'):
        protocol._client_shares(state, client)


@pytest.mark.parametrize('kind, what', [(protocol._SEED, 'self-mask seed'),
                                        (protocol._KEY, r'mask key \(it dropped\)')])
def test_rebuild_names_the_secret_and_how_many_neighbours_may_drop(kind, what):
    state = types.SimpleNamespace(config=types.SimpleNamespace(threshold=3, neighbours=4))
    for shares, count in (({}, 0), ({(2, kind): [(0, b''), (1, b'')]}, 2)):
        with pytest.raises(DropoutError, match=(
                f"^client 2's {what} has shares from only {count} surviving neighbours, "
                r"threshold 3 are needed: too many clients dropped \(at most 1 of each "
                r"client's 4 neighbours may\)$")):
            protocol._rebuild(state, shares, 2, kind)


def test_a_client_without_any_surviving_holder_raises_dropout_error():
    """Complete graph of 4, t = 2: clients 1, 2, 3 drop after their masked inputs; client 0's
    self-mask seed has no holder left (0 shares), which is a DropoutError, not a crash."""
    with pytest.raises(DropoutError, match="client 0's self-mask seed has shares from only 0"):
        one_round(4, threshold=2, dropouts=Dropouts(after_masked_input=[1, 2, 3]))


def test_a_mask_key_that_does_not_match_its_public_key_is_refused():
    """Client 1 drops after sharing; if its advertised mask key is not the one its shares
    rebuild, the server must refuse rather than remove the wrong pairwise masks."""
    state = staged(Dropouts(after_share=[1]), protocol.STAGES[:3])
    other = primitives.public_bytes(primitives.private_key(RandomSource(seed=9)))
    state.public_keys[1] = (state.public_keys[1][0], other)
    with pytest.raises(DecodingError, match='^the mask key rebuilt for client 1 does not match '
                                            'the public key it advertised: a share was wrong$'):
        protocol.unmask(state)


def test_surviving_inputs_of_weight_zero_raise_instead_of_dividing_by_zero():
    rng = np.random.default_rng(1)
    updates = [[rng.uniform(-1, 1, 6)] for _ in range(4)]
    aggregator = MaskingAggregator(4, dropouts=Dropouts(after_share=[0]),
                                   rng=RandomSource(seed=2))
    with pytest.raises(DropoutError, match=r'^the clients whose inputs arrived \(\[1, 2, 3\]\) '
                                           'all have weight 0: nothing to average$'):
        aggregator.aggregate(updates, [1.0, 0.0, 0.0, 0.0])
    with pytest.raises(DropoutError, match='^no client sent its masked input: nothing to '
                                           'aggregate$'):
        MaskingAggregator(4, dropouts=Dropouts(after_share=[0, 1, 2, 3]),
                          rng=RandomSource(seed=2)).aggregate(updates, np.ones(4))


def test_each_party_is_charged_for_its_own_blocks(monkeypatch):
    """A fake clock that advances by 1 per reading makes every timed block cost 1: on the
    complete graph of 5 a client runs 8 blocks (keys, shares, 4 received shares, masked input,
    reply) and the server 7 (forwarding keys, 5 input sums, unmasking)."""
    counters = {'perf_counter': 0, 'thread_time': 0}

    def reading(name):
        def read():
            counters[name] += 1
            return float(counters[name])
        return read

    monkeypatch.setattr(protocol, 'time', types.SimpleNamespace(
        perf_counter=reading('perf_counter'), thread_time=reading('thread_time')))
    state = one_round()
    for client in state.clients:
        assert (client.seconds, client.cpu_seconds) == (8.0, 8.0)
        assert client.stage_cpu_seconds == {'keys': 1.0, 'shares': 5.0, 'masked_input': 1.0,
                                            'reply': 1.0}
    assert (state.server_seconds, state.server_cpu_seconds) == (7.0, 7.0)
