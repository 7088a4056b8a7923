"""Threshold decryption with a Shamir-shared key (dealer-free setup), and the RLWE secure
aggregator."""

import numpy as np
import pytest

from tfpriv.crypto.rlwe import bfv, keys, modswitch, multiparty, threshold
from tfpriv.crypto.rlwe import params as rp
from tfpriv.crypto.rlwe.secagg import RlweAggregator
from tfpriv.crypto.secagg import PlainAggregator
from tfpriv.rng import RandomSource


@pytest.fixture(scope='module')
def setup():
    params = rp.preset('n4096')
    rng = RandomSource(seed=11)
    holders, key, _, _ = multiparty.setup_keys(params, 5, 3, rng)
    plain = np.random.default_rng(11).integers(-10**6, 10**6, (2, params.n))
    return params, key, plain, [holder.key_share for holder in holders]


def decrypt_with(shares, ct, xs, needed):
    bits = threshold.smudging_bits(ct.params, ct.noise, len(xs))
    partials = {x: threshold.partial_decrypt(shares[x - 1], ct, xs, bits) for x in xs}
    return threshold.combine(ct, partials, needed, bits)


def test_exactly_t_parties_decrypt(setup):
    params, key, plain, shares = setup
    ct = key.encrypt(plain)
    for xs in ([1, 2, 3], [2, 4, 5], [1, 3, 4, 5]):
        assert np.array_equal(decrypt_with(shares, ct, xs, 3), plain)


def test_t_minus_one_parties_fail(setup):
    params, key, plain, shares = setup
    ct = key.encrypt(plain)
    with pytest.raises(ValueError, match='at least 3 needed'):
        decrypt_with(shares, ct, [1, 2], 3)
    # Even ignoring the threshold, two shares interpolate the wrong key.
    assert np.mean(decrypt_with(shares, ct, [1, 2], 2) == plain) < 0.01


def test_partial_decryption_checks(setup):
    params, key, plain, shares = setup
    ct = key.encrypt(plain)
    with pytest.raises(ValueError, match='not in the decrypting set'):
        threshold.partial_decrypt(shares[0], ct, [2, 3, 4], 40)
    small = rp.preset('n2048')
    with pytest.raises(ValueError, match='^the key share and the ciphertext use different '
                                         'parameters$'):
        threshold.partial_decrypt(threshold.KeyShare(small, 1, shares[0].share), ct, [1, 2], 40)
    s2, p2 = keys.keygen(small)
    compressed = modswitch.decompress(modswitch.compress(
        bfv.encrypt(p2, np.zeros((1, small.n), dtype=np.int64)), 32, 40))
    with pytest.raises(ValueError, match='smudging needs'):
        threshold.smudging_bits(small, compressed.noise, 3)


def updates(clients, rng):
    return [[rng.normal(0, 0.5, (30, 7)).astype(np.float32), rng.normal(0, 0.5, 7)]
            for _ in range(clients)]


def test_aggregator_matches_plain_average():
    rng = np.random.default_rng(12)
    client_updates, weights = updates(4, rng), [3, 1, 2, 2]
    aggregator = RlweAggregator(rng=RandomSource(seed=12))
    average, stats = aggregator.aggregate(client_updates, weights)
    expected, _ = PlainAggregator().aggregate(client_updates, weights)
    for got, want in zip(average, expected):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, atol=2.0**-16)
    assert stats.scheme == 'rlwe' and stats.extra['threshold'] == 3
    assert stats.extra['smudging_bits'] >= 40


def test_aggregator_fractional_weights_and_compression():
    rng = np.random.default_rng(13)
    client_updates, weights = updates(3, rng), [0.2, 0.5, 0.3]
    aggregator = RlweAggregator('n2048', precision=12, bound=4.0, weight_bits=6,
                                compress_updates=True, kappa=0)
    average, stats = aggregator.aggregate(client_updates, weights)
    quantized = np.rint(np.array(weights) * 2**6)  # the documented integer weights
    expected, _ = PlainAggregator().aggregate(client_updates, quantized)
    for got, want in zip(average, expected):
        np.testing.assert_allclose(got, want, atol=2.0**-12)
    assert stats.extra['compressed'] == 1
    setup = stats.extra['setup_bytes_per_client']
    assert setup == 4 * 2 * 2048 * 3  # a public-key share and 2 Shamir shares of s_i, uint32
    assert stats.bytes_per_client - setup <= 11 * 2048 + 200  # one polynomial, <= 40 + 48 bits


def test_aggregator_bad_inputs():
    rng = np.random.default_rng(14)
    client_updates = updates(3, rng)
    aggregator = RlweAggregator(bound=1.0)
    with pytest.raises(ValueError, match='above the public bound'):
        aggregator.aggregate([[10 * u for u in client_updates[0]]] + client_updates[1:])
    bad = [[np.full((30, 7), np.nan, dtype=np.float32), np.zeros(7)]] + client_updates[1:]
    with pytest.raises(ValueError, match='NaN'):
        aggregator.aggregate(bad)
    with pytest.raises(ValueError, match='shapes'):
        aggregator.aggregate([client_updates[0], [np.zeros(3)]])
    with pytest.raises(rp.InsecureParametersError):
        RlweAggregator('toy')


def test_exact_example_count_weights_and_wide_smudging():
    """Issue #17: integer weights (example counts) are used exactly, not quantized to
    10 bits (21001 = 6000 + 12000 + 3001 would be), and the smudging width is not capped
    at 62 bits: the weighted noise here needs 2^(b-1) >= 2^40 * 2^25, so b > 62."""
    rng = np.random.default_rng(15)
    client_updates, weights = updates(3, rng), [6000, 12000, 3001]
    aggregator = RlweAggregator(precision=12, bound=4.0, rng=RandomSource(seed=15))
    average, stats = aggregator.aggregate([[np.clip(u, -4, 4) for u in c]
                                           for c in client_updates], weights)
    expected, _ = PlainAggregator().aggregate([[np.clip(u, -4, 4) for u in c]
                                               for c in client_updates], weights)
    for got, want in zip(average, expected):
        np.testing.assert_allclose(got, want, atol=2.0**-13 + 1e-6)  # fixed point + float32
    assert stats.extra['smudging_bits'] > 62


def test_smudging_residues_match_python_integers():
    """e = w_0 + w_1 2^64 - 2^(b-1) in [-2^(b-1), 2^(b-1)) for b = 70 (the top word shifted
    down to 6 bits), and b = 20 in one word: the residues agree with Python integers."""
    from tfpriv.rng import Prg
    primes = rp.preset('n4096').primes
    for bits in (20, 70):
        got = threshold.smudging_residues(Prg(RandomSource(seed=16)), primes, (500,), bits)
        prg = Prg(RandomSource(seed=16))
        if bits <= 64:
            values = [int(w) for w in prg.uint64(500) >> np.uint64(64 - bits)]
        else:
            low, high = prg.uint64(500), prg.uint64(500) >> np.uint64(128 - bits)
            values = [int(lo) + (int(hi) << 64) for lo, hi in zip(low, high)]
        assert min(values) >= 0 and max(values) < 2**bits
        for row, p in enumerate(primes):
            assert got[row].tolist() == [(v - 2**(bits - 1)) % p for v in values]
    with pytest.raises(ValueError, match='bits must be >= 1'):
        threshold.smudging_residues(Prg(RandomSource(seed=1)), primes, (2,), 0)


def test_key_material_is_not_in_reprs(setup):
    params, _, _, shares = setup
    secret, _ = keys.keygen(params, RandomSource(seed=12))
    for text in (repr(secret), repr(shares[0]), str(shares[1])):
        assert 'array' not in text and 'share=' not in text and ' s=' not in text
    assert 'x=1' in repr(shares[0]) and 'key_id' in repr(secret)


def test_threshold_arguments_and_seeded_key_shares():
    """num_parties >= 1 is checked by name; shares drawn from a given seeded source are
    reproducible (the source is used, not the OS CSPRNG)."""
    with pytest.raises(ValueError, match='^num_parties must be'):
        threshold.check_threshold(0, 0)
    params = rp.preset(rp.TOY_PRESET, insecure=True)
    residues = np.arange(len(params.primes) * params.n, dtype=np.int64).reshape(
        len(params.primes), params.n)
    first, second = (threshold.share_polynomial(params, residues, 2, 3, RandomSource(seed=51))
                     for _ in range(2))
    assert first.shape == (3, len(params.primes), params.n)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize('bits', [1, 2, 63, 64, 65, 127, 128, 129, 200])
def test_smudging_residues_are_the_python_int_noise_mod_each_prime(bits):
    """e = sum_k w_k 2^(64 k) - 2^(bits-1) over ceil(bits / 64) words of the Prg stream, all
    64-bit but the top one, which keeps its high bits - 64 (ceil(bits / 64) - 1) bits; the
    reference rebuilds e from the replayed stream with Python ints (so it lies in
    [-2^(bits-1), 2^(bits-1))) and reduces it mod each prime."""
    from tfpriv.crypto.rlwe.threshold import smudging_residues
    from tfpriv.rng import Prg, RandomSource
    primes, shape = [12289, 1073479681, 2147352577], (3, 5)
    got = smudging_residues(Prg(RandomSource(seed=bits)), primes, shape, bits)
    count = -(-bits // 64)
    widths = [64] * (count - 1) + [bits - 64 * (count - 1)]
    prg = Prg(RandomSource(seed=bits))
    words = [[int(w) >> (64 - width) for w in prg.uint64(shape).ravel()] for width in widths]
    noise = [sum(word[i] << (64 * k) for k, word in enumerate(words)) - 2 ** (bits - 1)
             for i in range(15)]
    assert all(-2 ** (bits - 1) <= e < 2 ** (bits - 1) for e in noise)
    assert got.shape == (3,) + shape
    for row, p in enumerate(primes):
        assert got[row].ravel().tolist() == [e % p for e in noise]


def test_threshold_bounds_are_one_and_num_parties():
    from tfpriv.crypto.rlwe.threshold import check_threshold
    check_threshold(1, 1)
    check_threshold(1, 3)
    check_threshold(3, 3)
    with pytest.raises(ValueError, match='^threshold must be >= 1'):
        check_threshold(0, 3)
    with pytest.raises(ValueError, match='^threshold must be <= 3'):
        check_threshold(4, 3)
    with pytest.raises(ValueError, match='^num_parties must be >= 1'):
        check_threshold(1, 0)


def _largest_smudging_width(q, t, bound, parties):
    """The documented rule, by search: the largest b >= 1 with bound + N 2^(b-1) <= q/(2t) - 1."""
    b = 0
    while bound + parties * 2 ** b <= q / (2 * t) - 1:
        b += 1
    return b


@pytest.mark.parametrize('parties', [1, 3])
@pytest.mark.parametrize('k', [2, 5, 20])
@pytest.mark.parametrize('offset', [-1, 0, 1])
@pytest.mark.parametrize('bound', [0.5, 1.5, 2.0 ** 10])
def test_smudging_width_is_the_largest_that_fits_and_kappa_is_enforced(parties, k, offset, bound):
    """q/(2t) - 1 - bound = N 2^k + offset (t = 1): just below, at and above a power of two.
    The width against the search above; then kappa at and around the available margin
    b - 1 - log2 max(bound, 1): it raises exactly when the margin is below kappa."""
    import math
    from types import SimpleNamespace
    q = 2 * (1 + bound + parties * 2 ** k + offset)
    params = SimpleNamespace(q=q, t=1)
    noise = SimpleNamespace(bound=lambda: bound)
    want = _largest_smudging_width(q, 1, bound, parties)
    margin = want - 1 - math.log2(max(bound, 1.0))
    for kappa in sorted({math.floor(margin) - 1, math.floor(margin), math.ceil(margin),
                         math.ceil(margin) + 1}):
        if margin < kappa:
            with pytest.raises(ValueError, match=rf'^smudging needs 2\^{kappa} times the noise '
                                                 rf'bound .* only leaves 2\^{want - 1} per party'):
                threshold.smudging_bits(params, noise, parties, kappa)
        else:
            assert threshold.smudging_bits(params, noise, parties, kappa) == want


@pytest.mark.parametrize('room', [-5.0, 0.0, 1.0, 2.0])
def test_no_room_for_smudging_is_refused_by_name(room):
    """q/(2t) - 1 - bound <= N (= 3) leaves no width: refused with the documented message
    (2^-1 per party), not a math error."""
    from types import SimpleNamespace
    params = SimpleNamespace(q=2 * (1 + 2.0 + room), t=1)
    noise = SimpleNamespace(bound=lambda: 2.0)
    with pytest.raises(ValueError, match=r'^smudging needs 2\^40 times .* only leaves 2\^-1 per'):
        threshold.smudging_bits(params, noise, 3)


def test_partial_decryption_smudges_from_the_given_source(setup):
    """d_j = λ_j c1 s_j + e_j: with a seeded source, e_j is `smudging_residues` of that source's
    Prg (replayed here), so d_j minus the replayed e_j is the same for two seeds."""
    from tfpriv.rng import Prg
    _, key, plain, shares = setup
    ct = key.encrypt(plain)
    bits = threshold.smudging_bits(ct.params, ct.noise, 3)
    ring = keys.ring_of(ct.params)
    unsmudged = []
    for seed in (71, 72):
        d = threshold.partial_decrypt(shares[0], ct, [1, 2, 3], bits, RandomSource(seed=seed))
        e = threshold.smudging_residues(Prg(RandomSource(seed=seed)), ct.params.primes,
                                        ct.c0.shape[1:], bits)
        unsmudged.append(ring.sub(d, e))
    np.testing.assert_array_equal(unsmudged[0], unsmudged[1])


def test_each_client_encrypts_with_its_own_randomness(monkeypatch):
    """Two clients with the same update: their ciphertexts (recorded as serialized for the
    server) share no more equal residues than chance allows (each residue of c0 and c1 equal
    with probability 1/q_i, about 2^-27 for n2048's two primes; at most 2 of the 8,192
    allowed). Encrypting both with the same u and errors would give identical ciphertexts,
    and for different updates c0 would differ by Delta (m_A - m_B): the server would read
    the difference of two updates."""
    from tfpriv.crypto.rlwe import secagg, serialize
    sent = []
    real = serialize.dumps

    def record(ct):
        sent.append(ct)
        return real(ct)

    monkeypatch.setattr(secagg.serialize, 'dumps', record)
    update = [np.linspace(-1.0, 1.0, 50)]
    aggregator = RlweAggregator('n2048', precision=12, bound=4.0, kappa=0,
                                compress_updates=False, rng=RandomSource(seed=30))
    aggregator.aggregate([update, update, update])
    assert len(sent) == 3
    first, second = sent[0], sent[1]
    equal = (np.count_nonzero(first.c0 == second.c0)
             + np.count_nonzero(np.asarray(first.c1) == np.asarray(second.c1)))
    assert first.c0.shape == (2, 1, 2048) and equal <= 2
