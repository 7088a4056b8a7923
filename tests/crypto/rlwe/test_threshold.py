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
