"""MaskingAggregator (SecAgg+): exact sums, dropouts at every stage, the server's view.

References are independent of the code under test: `PlainAggregator` for the
average, NumPy's own rounding for the quantized input, the byte layout of the
messages written out here, and SciPy's chi-square quantiles for uniformity.
"""

import struct
import time

import numpy as np
import pytest
from scipy import stats

from tfpriv.crypto.masking import Dropouts, MaskingAggregator, primitives, protocol
from tfpriv.crypto.secagg import PlainAggregator
from tfpriv.errors import DropoutError, FixedPointRangeError
from tfpriv.rng import RandomSource
from tests.crypto.reference import polynomial_mod_p

HEADER = 8  # stage byte, 3 padding bytes, 4-byte sender of a masked-input message


def updates_and_weights(num_parties, seed=0, shape=((13, 7), (5,))):
    rng = np.random.default_rng(seed)
    updates = [[rng.normal(size=s) for s in shape] for _ in range(num_parties)]
    return updates, rng.integers(1, 200, size=num_parties)


def max_difference(average, reference):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(average, reference))


def error_bound(aggregator, weights):
    """|U3| e 2^-f / W (quantize.py): e = 1/2 nearest, 1 stochastic; W = U3's share of the weight."""
    config, state = aggregator.config, aggregator.last_round
    e = 0.5 if config.quantizer.rounding == 'deterministic' else 1.0
    fraction = weights[list(state.submitted)].sum() / weights.sum()
    return len(state.submitted) * e * 2.0**-config.quantizer.precision / fraction


def check_against_plain(aggregator, updates, weights):
    average, stats_ = aggregator.aggregate(updates, weights)
    kept = list(aggregator.last_round.submitted)
    reference, _ = PlainAggregator().aggregate([updates[u] for u in kept], weights[kept])
    assert max_difference(average, reference) <= error_bound(aggregator, weights)
    return average, stats_


def chi_square_is_uniform(words, bits_from, num_bits=8):
    """Two-sided chi-square test of bits [bits_from, bits_from + num_bits) being uniform.

    With B = 2^num_bits bins the statistic is chi-square with B - 1 degrees of
    freedom under uniformity; it must lie between its 1e-6 and 1 - 1e-6 quantiles
    (a false alarm has probability 2e-6; too small a statistic means too regular).
    """
    bins = 1 << num_bits
    values = (np.asarray(words, dtype=np.uint64) >> np.uint64(bits_from)) & np.uint64(bins - 1)
    counts = np.bincount(values.astype(np.int64), minlength=bins)
    expected = len(words) / bins
    statistic = float(((counts - expected)**2 / expected).sum())
    return stats.chi2.ppf(1e-6, bins - 1) < statistic < stats.chi2.ppf(1 - 1e-6, bins - 1)


@pytest.mark.parametrize('neighbours, bits, rounding', [
    (None, 32, 'deterministic'), (None, 32, 'stochastic'), (4, 32, 'stochastic'),
    (6, 20, 'deterministic'), (4, 64, 'stochastic')])
def test_average_matches_plain_within_quantization_error(neighbours, bits, rounding):
    updates, weights = updates_and_weights(10)
    aggregator = MaskingAggregator(10, neighbours=neighbours, bits=bits, precision=bits // 2,
                                   bound=8.0, rounding=rounding, rng=RandomSource(seed=1))
    average, stats_ = check_against_plain(aggregator, updates, weights)
    assert [a.shape for a in average] == [(13, 7), (5,)]
    assert stats_.scheme == 'secagg' and stats_.num_dropped == 0
    assert stats_.extra['max_abs_error'] == pytest.approx(error_bound(aggregator, weights))


def test_coarse_precision_error_is_within_and_near_the_bound():
    """At f = 2 rounding errors are visible: they stay inside |U3| / 2 2^-f / W, not far below."""
    updates, weights = updates_and_weights(10, seed=3, shape=((4000,),))
    aggregator = MaskingAggregator(10, bits=16, precision=2, bound=8.0, rounding='deterministic',
                                   rng=RandomSource(seed=2))
    average, _ = check_against_plain(aggregator, updates, weights)
    reference, _ = PlainAggregator().aggregate(updates, weights)
    assert max_difference(average, reference) > 0.1 * error_bound(aggregator, weights)


@pytest.mark.parametrize('neighbours', [None, 4])
@pytest.mark.parametrize('stage', ['after_advertise', 'after_share', 'after_masked_input'])
def test_one_dropout_at_each_stage(stage, neighbours):
    updates, weights = updates_and_weights(10, seed=4)
    aggregator = MaskingAggregator(10, neighbours=neighbours, dropouts=Dropouts(**{stage: [3]}),
                                   rng=RandomSource(seed=5))
    _, stats_ = check_against_plain(aggregator, updates, weights)
    counted = stage == 'after_masked_input'  # its masked input arrived: it is in the sum
    assert (3 in aggregator.last_round.submitted) == counted
    assert stats_.num_dropped == 1


def test_dropouts_at_every_stage_at_once_in_a_sparse_graph():
    updates, weights = updates_and_weights(12, seed=6)
    dropouts = Dropouts(after_advertise=[0], after_share=[5], after_masked_input=[9])
    aggregator = MaskingAggregator(12, neighbours=8, threshold=5, dropouts=dropouts,
                                   rng=RandomSource(seed=7))
    check_against_plain(aggregator, updates, weights)
    state = aggregator.last_round
    assert state.submitted == tuple(u for u in range(12) if u not in (0, 5))
    assert state.answered == tuple(u for u in range(12) if u not in (0, 5, 9))


def test_any_t_survivors_unmask_and_one_fewer_raises():
    """Complete graph, k = 6, t = 4: k - t = 2 clients may drop after the masked input, not 3."""
    updates, weights = updates_and_weights(7, seed=8)
    tolerated = MaskingAggregator(7, threshold=4, rng=RandomSource(seed=9),
                                  dropouts=Dropouts(after_masked_input=[1, 4]))
    check_against_plain(tolerated, updates, weights)
    too_many = MaskingAggregator(7, threshold=4, rng=RandomSource(seed=9),
                                 dropouts=Dropouts(after_masked_input=[1, 4, 6]))
    with pytest.raises(DropoutError, match='threshold 4'):
        too_many.aggregate(updates, weights)


@pytest.mark.parametrize('stage', ['after_advertise', 'after_share'])
def test_too_many_dropped_neighbours_raise(stage):
    """Sparse graph k = 4, t = 3: two of client 0's neighbours dropping leaves it 2 < t holders."""
    updates, weights = updates_and_weights(9, seed=10)
    probe = MaskingAggregator(9, neighbours=4, threshold=3, rng=RandomSource(seed=11))
    probe.aggregate(updates, weights)
    victim_neighbours = probe.last_round.graph[0][:2]
    aggregator = MaskingAggregator(9, neighbours=4, threshold=3, rng=RandomSource(seed=11),
                                   dropouts=Dropouts(**{stage: list(victim_neighbours)}))
    with pytest.raises(DropoutError, match='threshold 3'):
        aggregator.aggregate(updates, weights)


def test_everyone_dropping_raises():
    updates, weights = updates_and_weights(4)
    aggregator = MaskingAggregator(4, dropouts=Dropouts(after_share=[0, 1, 2, 3]),
                                   rng=RandomSource(seed=0))
    with pytest.raises(DropoutError, match='no client'):
        aggregator.aggregate(updates, weights)


def quantized_input(update, weight, precision, bits=32):
    """The client's encoding computed here with NumPy: rint(w x 2^f) mod 2^b."""
    flat = np.concatenate([np.ravel(a) for a in update])
    return (np.rint(flat * weight * 2.0**precision).astype(np.int64) % 2**bits).astype(np.uint64)


def server_view_of(aggregator, client):
    message = aggregator.last_round.view.masked_inputs[client]
    return np.frombuffer(message[HEADER:], dtype='<u4').astype(np.uint64)


def test_server_view_of_one_client_is_uniform_and_hides_its_input():
    """A constant update: its encoding is one value; the masked input must look uniform."""
    size = 1 << 16
    updates = [[np.full(size, 0.25)] for _ in range(5)]
    weights = np.ones(5)
    aggregator = MaskingAggregator(5, bits=32, precision=16, bound=1.0, rounding='deterministic',
                                   rng=RandomSource(seed=12))
    aggregator.aggregate(updates, weights)
    masked = server_view_of(aggregator, 2)
    encoded = quantized_input(updates[2], 0.2, 16)
    assert np.unique(encoded).size == 1
    assert np.mean(masked == encoded) < 1e-3  # equal by chance with probability 2^-32
    for bits_from in (0, 8, 24):
        assert chi_square_is_uniform(masked, bits_from)


def test_uniformity_check_rejects_unmasked_input(monkeypatch):
    """With every mask zeroed, the same server view is the constant encoding and is rejected."""
    def no_masks(out, seeds, signs, fill=None):
        if fill is not None:
            fill(0, out)
        return out
    monkeypatch.setattr(primitives, 'add_masks', no_masks)
    updates = [[np.full(1 << 12, 0.25)] for _ in range(3)]
    aggregator = MaskingAggregator(3, precision=16, bound=1.0, rounding='deterministic',
                                   rng=RandomSource(seed=13))
    aggregator.aggregate(updates, np.ones(3))
    masked = server_view_of(aggregator, 1)
    assert np.array_equal(masked, quantized_input(updates[1], 1 / 3, 16))
    assert not chi_square_is_uniform(masked, 0)


def self_mask_reference(seed: bytes, size: int) -> np.ndarray:
    """PRG(b_u) as 32-bit words: AES-128-CTR (zero IV) keyed by the seed's first 16 bytes,
    straight from `cryptography`."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    stream = Cipher(algorithms.AES(seed[:16]), modes.CTR(bytes(16))).encryptor().update(
        bytes(4 * size))
    return np.frombuffer(stream, dtype='<u4').astype(np.uint64)


def deterministic_round(n, size, seed):
    """One round of n clients (k = 4, t = 3, f = 16, nearest rounding) on one vector each:
    (its state, u -> y_u - q_u - PRG(b_u) mod 2^32, with q_u and PRG(b_u) computed here)."""
    updates, weights = updates_and_weights(n, seed=seed, shape=((size,),))
    aggregator = MaskingAggregator(n, neighbours=4, threshold=3, precision=16, bound=8.0,
                                   rounding='deterministic', rng=RandomSource(seed=seed + 1))
    aggregator.aggregate(updates, weights)
    state, normalized = aggregator.last_round, weights / weights.sum()

    def pairwise_part(u):
        return (server_view_of(aggregator, u) - quantized_input(updates[u], normalized[u], 16)
                - self_mask_reference(state.clients[u].self_seed, size)) % 2**32
    return state, pairwise_part


def test_pairwise_masks_are_uniform_and_cancel():
    """sum_u (y_u - q_u - PRG(b_u)) = 0 mod 2^32, while each client's pairwise part is uniform.

    PRG(b_u) is computed here from the client's seed with `cryptography` directly, so a
    client that leaves out its self mask (and a server that removes none) is caught."""
    size, n = 1 << 14, 6
    state, pairwise_part = deterministic_round(n, size, seed=14)
    total = np.zeros(size, dtype=np.uint64)
    for u in range(n):
        assert chi_square_is_uniform(self_mask_reference(state.clients[u].self_seed, size), 0)
        pairwise = pairwise_part(u)
        assert chi_square_is_uniform(pairwise, 0) and chi_square_is_uniform(pairwise, 24)
        total = (total + pairwise) % 2**32
    assert not np.any(total)


def test_each_pairwise_mask_is_keyed_by_hkdf_of_the_pair_s_x25519_secret():
    """y_u - q_u - PRG(b_u) = sum_{v in N(u), v > u} PRG(s_uv) - sum_{v in N(u), v < u} PRG(s_uv)
    mod 2^32, with s_uv = HKDF-SHA256(X25519(mask key of u, mask public key v advertised),
    info = the mask label) recomputed here with `cryptography` (Bonawitz et al. 2017, Sec. 4;
    the label written out). v's private key with u's public key gives the same s_uv. A seed
    derived from public data (the pair's public keys, say) would still cancel and look
    uniform, and the server could compute it: this test is what catches that."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    size, n = 1 << 12, 7
    state, pairwise_part = deterministic_round(n, size, seed=17)

    def seed(u, v):
        shared = state.clients[u].mask_key.exchange(
            X25519PublicKey.from_public_bytes(state.public_keys[v][1]))
        return HKDF(hashes.SHA256(), 32, salt=None,
                    info=b'tfpriv secagg+ pairwise mask').derive(shared)

    for u in range(n):
        assert len(state.graph[u]) == 4 and u not in state.graph[u]
        expected = np.zeros(size, dtype=np.uint64)
        for v in state.graph[u]:
            assert seed(u, v) == seed(v, u)
            expected += self_mask_reference(seed(u, v), size) * (1 if v > u else 2**32 - 1)
        assert np.array_equal(pairwise_part(u), expected % 2**32)


def test_each_client_shares_its_secrets_on_a_polynomial_of_degree_exactly_t_minus_1():
    """The k = 4 shares of (b_u, s_u) that u's neighbours hold lie, limb by limb, on one
    polynomial over GF(2^31 - 1) whose constant term is the limb and whose degree is t - 1 = 2:
    its coefficients of degree >= t are 0 and its top one is uniform, so 0 with probability
    2^-31 per limb (at most one zero allowed among the 32). Solved here with Python integers.
    Shares of a lower degree (threshold 1: each share is the secret) would let t - 1 colluding
    neighbours, or the server with fewer answers than t, recover b_u and s_u."""
    n, t = 7, 3
    aggregator = MaskingAggregator(n, neighbours=4, threshold=t, rng=RandomSource(seed=19))
    aggregator.aggregate(*updates_and_weights(n))
    state, p = aggregator.last_round, 2**31 - 1
    assert primitives.PRIME == p
    for u in range(n):
        holders = state.graph[u]
        shares = [np.frombuffer(state.clients[v].held[u], dtype='<u4').tolist() for v in holders]
        secret = state.clients[u].self_seed + state.clients[u].mask_key.private_bytes_raw()
        limbs = np.frombuffer(secret, dtype='<u2').tolist()
        assert all(len(row) == len(limbs) == 32 for row in shares)
        top = []
        for j, limb in enumerate(limbs):
            coefficients = polynomial_mod_p([v + 1 for v in holders], [row[j] for row in shares], p)
            assert coefficients[0] == limb and coefficients[t:] == [0] * (len(holders) - t)
            top.append(coefficients[t - 1])
        assert sum(c == 0 for c in top) <= 1


def test_two_rounds_of_the_same_update_are_masked_independently():
    """An aggregator used for two rounds draws fresh keys, seeds and graph each time, so the
    same update sent twice gives masked inputs whose difference mod 2^32 is uniform
    (two-sided χ², low and high byte). Masks repeated across rounds would make the
    difference 0, or the difference of the two updates: the server could follow a client's
    update from round to round."""
    size, n = 1 << 14, 5
    updates, weights = updates_and_weights(n, seed=25, shape=((size,),))
    aggregator = MaskingAggregator(n, neighbours=4, threshold=3, precision=16, bound=8.0,
                                   rounding='deterministic', rng=RandomSource(seed=26))
    views, states = [], []
    for _ in range(2):
        aggregator.aggregate(updates, weights)
        states.append(aggregator.last_round)
        views.append([server_view_of(aggregator, u) for u in range(n)])
    for u in range(n):
        first, second = states[0].clients[u], states[1].clients[u]
        assert first.self_seed != second.self_seed
        assert first.mask_key.private_bytes_raw() != second.mask_key.private_bytes_raw()
        difference = (views[1][u] - views[0][u]) % 2**32
        assert chi_square_is_uniform(difference, 0) and chi_square_is_uniform(difference, 24)


def test_pairwise_seeds_agree_between_the_pair_only():
    aggregator = MaskingAggregator(4, rng=RandomSource(seed=16))
    aggregator.aggregate(*updates_and_weights(4))
    clients = aggregator.last_round.clients
    keys = aggregator.last_round.public_keys

    def seed(u, v):
        return primitives.agree(clients[u].mask_key, keys[v][1], primitives.MASK_LABEL)

    assert seed(0, 1) == seed(1, 0)
    assert len({seed(0, 1), seed(0, 2), seed(1, 2)}) == 3


def test_seeded_source_reproduces_the_round_and_another_seed_does_not():
    updates, weights = updates_and_weights(5)

    def run(seed):
        aggregator = MaskingAggregator(5, rng=RandomSource(seed=seed))
        average, _ = aggregator.aggregate(updates, weights)
        return average, aggregator.last_round.view

    first, second, other = run(21), run(21), run(22)
    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0]))
    assert first[1] == second[1]
    assert first[1].masked_inputs[0] != other[1].masked_inputs[0]


def test_replies_never_give_the_server_both_secrets_of_any_client():
    """Stage 4 (Bonawitz et al. 2017, Sec. 4): a neighbour answers with its share of b_u when
    u's masked input arrived (U3) and of s_u when it did not, never both: t shares of both
    would let the server strip every mask off y_u. Parsed here from the bytes the server
    received (stage 1 B, sender 4 B, entry count 4 B, then per entry the owner 4 B, the kind
    1 B, 0 = b and 1 = s, and a 64-byte share). Client 1 drops after sharing, so both kinds
    are asked for; 5 drops after its masked input, so it does not answer."""
    n = 10
    dropouts = Dropouts(after_share=(1,), after_masked_input=(5,))
    aggregator = MaskingAggregator(n, neighbours=6, threshold=4, dropouts=dropouts,
                                   rng=RandomSource(seed=23))
    aggregator.aggregate(*updates_and_weights(n))
    state = aggregator.last_round
    kinds = {}
    for holder, message in state.view.replies.items():
        stage, sender, count = struct.unpack_from('<BII', message)
        assert stage == 4 and sender == holder and len(message) == 9 + count * (5 + 64)
        for i in range(count):
            owner, kind = struct.unpack_from('<IB', message, 9 + i * 69)
            assert owner in state.graph[holder] and kind in (0, 1)
            kinds.setdefault(owner, set()).add(kind)
    assert sorted(state.view.replies) == [u for u in range(n) if u not in (1, 5)]
    assert 1 in kinds and 5 in kinds
    for owner, asked in kinds.items():
        assert asked == ({0} if owner in state.submitted else {1}), (owner, asked)


def test_bytes_per_client_are_those_of_the_serialized_messages():
    """Complete graph of 5: keys 1+4+64, 4 shares of 1+4+4 + 128 + 16 (GCM tag), input 8 + 4d,
    reply 1+4+4 + 4 entries of 4+1 + 64."""
    updates, weights = updates_and_weights(5)
    size = 13 * 7 + 5
    _, stats_ = MaskingAggregator(5, rng=RandomSource(seed=0)).aggregate(updates, weights)
    expected = 69 + 4 * (9 + 128 + 16) + (8 + 4 * size) + (9 + 4 * 69)
    assert stats_.bytes_per_client == expected
    assert stats_.messages == 5 * (1 + 4 + 1 + 1)


def test_bytes_are_within_1_1_of_the_quantized_update_plus_neighbour_overhead():
    size = 100_000
    updates, weights = updates_and_weights(8, shape=((size,),))
    for bits in (24, 32):
        aggregator = MaskingAggregator(8, neighbours=4, threshold=3, bits=bits, precision=12,
                                       bound=8.0, rng=RandomSource(seed=0))
        _, stats_ = aggregator.aggregate(updates, weights)
        quantized = size * bits // 8
        assert quantized < stats_.bytes_per_client <= 1.1 * quantized


def test_headroom_is_checked_before_encoding_and_is_tight():
    """bits = 16, f = 0: n clients at bound B fit iff B + n <= 2^15 - 1 (quantize.py)."""
    n = 3
    largest = 2**15 - 1 - n
    aggregator = MaskingAggregator(n, bits=16, precision=0, bound=float(largest),
                                   rounding='deterministic', rng=RandomSource(seed=0))
    updates = [[np.full(4, float(largest))] for _ in range(n)]
    average, _ = aggregator.aggregate(updates, np.ones(n))
    assert np.all(np.abs(average[0] - largest) <= n * 0.5)
    with pytest.raises(FixedPointRangeError, match='raise bits to >= 17'):
        MaskingAggregator(n, bits=16, precision=0, bound=float(largest + 1))


def test_value_above_bound_is_refused():
    updates, weights = updates_and_weights(3)
    updates[1][0][0, 0] = 9.0
    with pytest.raises(ValueError, match='exceeds bound=8'):
        MaskingAggregator(3, bound=8.0, rng=RandomSource(seed=0)).aggregate(updates, weights)


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_parties=6, neighbours=3), 'neighbours must be even'),
    (dict(num_parties=6, neighbours=4, threshold=2), 'threshold must be >= 3'),
    (dict(num_parties=6, neighbours=6), 'neighbours must be <= 5'),
    (dict(num_parties=2), 'num_parties must be >= 3'),
    (dict(num_parties=4, dropouts=Dropouts(after_share=[4])), r'clients in \[0, 4\)'),
    (dict(num_parties=4, dropouts=Dropouts(after_share=[1], after_advertise=[1])), 'at most once'),
    (dict(num_parties=4, bits=65), 'bits must be <= 64'),
    (dict(num_parties=4, rounding='up'), 'rounding must be one of'),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskingAggregator(**kwargs)


def test_wrong_number_of_updates_is_refused():
    updates, weights = updates_and_weights(3)
    with pytest.raises(ValueError, match='num_parties=4'):
        MaskingAggregator(4, rng=RandomSource(seed=0)).aggregate(updates, weights)


def test_client_repr_hides_key_material():
    aggregator = MaskingAggregator(3, rng=RandomSource(seed=0))
    aggregator.aggregate(*updates_and_weights(3))
    client = aggregator.last_round.clients[0]
    shown = repr(aggregator.last_round)
    for secret in (client.mask_key.private_bytes_raw(), client.cipher_key.private_bytes_raw(),
                   client.self_seed):
        assert repr(secret)[2:-1] not in shown and secret.hex() not in shown
    assert 'Client(index=0' in repr(client)


@pytest.mark.slow
def test_hundred_clients_sparse_graph_with_dropouts_at_every_stage():
    updates, weights = updates_and_weights(100, seed=30, shape=((2000,),))
    dropouts = Dropouts(after_advertise=[3, 50], after_share=[10, 77], after_masked_input=[20, 99])
    aggregator = MaskingAggregator(100, neighbours=14, threshold=8, dropouts=dropouts,
                                   rng=RandomSource(seed=31))
    _, stats_ = check_against_plain(aggregator, updates, weights)
    assert len(aggregator.last_round.submitted) == 96 and stats_.num_dropped == 6


def test_aggregator_arguments_are_checked_with_what_is_allowed():
    """Two clients would each learn the other's update from the sum (n >= 3); t must lie in
    [floor(k/2) + 1, k]; the defaults are 20 fractional bits and a bound of 512."""
    from tfpriv.crypto.masking.secagg import MaskingAggregator
    with pytest.raises(ValueError, match=r'^num_parties must be >= 3, got 2$'):
        MaskingAggregator(2)
    with pytest.raises(ValueError, match=r'^threshold must be <= 4, got 5$'):
        MaskingAggregator(5, neighbours=4, threshold=5)
    with pytest.raises(TypeError, match=r'^dropouts must be a Dropouts, got str$'):
        MaskingAggregator(5, dropouts='none')
    quantizer = MaskingAggregator(5).config.quantizer
    assert (quantizer.precision, quantizer.bound) == (20, 512.0)


def test_stats_summarize_the_clients_whose_input_arrived():
    """Every field of the round's AggregationStats against the round's own records, reduced
    here with NumPy over U3 (the clients whose masked input arrived). Dropouts at each stage
    make U3 differ from all clients (0 and 1 are missing) and from U4 (5 sent no reply);
    this seed's graph leaves every client t of its neighbours."""
    n, size = 10, 13 * 7 + 5
    updates, weights = updates_and_weights(n)
    dropouts = Dropouts(after_advertise=(0,), after_share=(1,), after_masked_input=(5,))
    aggregator = MaskingAggregator(n, neighbours=6, threshold=4, bits=32, dropouts=dropouts,
                                   rng=RandomSource(seed=0))
    began = time.perf_counter()
    _, stats_ = aggregator.aggregate(updates, weights)
    wall_clock = time.perf_counter() - began
    state = aggregator.last_round
    senders = [u for u in range(n) if u not in (0, 1)]
    assert list(state.submitted) == senders and 5 not in state.answered
    sent = state.sent
    assert sent[0] < sent[1] < sent[5] < min(sent[u] for u in senders if u != 5)
    assert (stats_.scheme, stats_.num_clients, stats_.num_dropped) == ('secagg', n, 3)
    assert stats_.bytes_per_client == pytest.approx(np.mean(sent[senders]), rel=1e-12)
    assert stats_.bytes_total == int(sent.sum())
    extra = stats_.extra
    assert (extra['neighbours'], extra['threshold'], extra['bits']) == (6.0, 4.0, 32.0)
    assert extra['bytes_per_weight_per_client'] == pytest.approx(np.mean(sent[senders]) / size)
    assert extra['inputs_summed'] == len(senders)
    assert extra['max_abs_error'] == pytest.approx(error_bound(aggregator, weights))
    wall = [state.clients[u].seconds for u in senders]
    cpu = [state.clients[u].cpu_seconds for u in senders]
    assert [extra[f'client_seconds_{name}'] for name in ('mean', 'median', 'max')] == \
        pytest.approx([np.mean(wall), np.median(wall), np.max(wall)], rel=1e-12)
    assert extra['client_cpu_seconds_median'] == pytest.approx(np.median(cpu), rel=1e-12)
    for stage in protocol.STAGE_NAMES:  # a sum's median is at least each part's median
        part = [state.clients[u].stage_cpu_seconds.get(stage, 0.0) for u in senders]
        assert extra[f'client_cpu_seconds_median_{stage}'] == pytest.approx(np.median(part))
        assert extra[f'client_cpu_seconds_median_{stage}'] <= np.median(cpu) + 1e-12
    assert (extra['server_seconds'], extra['server_cpu_seconds']) == \
        (state.server_seconds, state.server_cpu_seconds)
    everyone = sum(client.seconds for client in state.clients)
    assert 0 < state.server_seconds and state.server_seconds + everyone <= stats_.seconds
    assert stats_.seconds <= wall_clock
    one_value = MaskingAggregator(3, rng=RandomSource(seed=0))  # bytes per weight of a 1-value update
    _, single = one_value.aggregate([[np.array([0.5])] for _ in range(3)], [1, 1, 1])
    assert single.extra['bytes_per_weight_per_client'] == single.bytes_per_client
