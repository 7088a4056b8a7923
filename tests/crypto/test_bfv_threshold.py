"""Threshold decryption: any t parties decrypt, t - 1 cannot."""

import dataclasses

import numpy as np
import pytest

from tfpriv.crypto.bfv import scheme, threshold as thr
from tfpriv.crypto.bfv.params import preset
from tfpriv.crypto.field import reconstruct_field
from tfpriv.rng import RandomSource


@pytest.fixture(scope='module', params=['toy', 'bfv-4096'])
def setup(request):
    params = preset(request.param, insecure=True)
    rng = RandomSource(20)
    sk, pk = scheme.keygen(params, rng)
    m = rng.uniform_mod(params.t, (2, params.n))
    ct = scheme.add(scheme.compress(scheme.encrypt(pk, m, rng)),
                    scheme.compress(scheme.encrypt(pk, m, rng)))
    return params, sk, (2 * m) % params.t, ct, thr.share_key(sk, 3, 5, rng), rng


def test_any_t_parties_decrypt(setup):
    params, sk, m, ct, shares, rng = setup
    for xs in ([1, 2, 3], [5, 3, 1], [2, 3, 4, 5]):
        partials = [thr.partial_decrypt(shares[x - 1], ct, xs, rng) for x in xs]
        assert np.array_equal(thr.combine(ct, partials, 3), m)


def test_t_minus_one_parties_fail(setup):
    params, sk, m, ct, shares, rng = setup
    with pytest.raises(ValueError, match='at least 3'):
        thr.partial_decrypt(shares[0], ct, [1, 2], rng)
    with pytest.raises(ValueError, match='at least 3'):
        thr.combine(ct, [thr.partial_decrypt(shares[0], ct, [1, 2, 3], rng)], 3)
    # Two colluding parties that ignore the rule get garbage: their shares do not
    # determine s, so their "partial decryptions" combine to a wrong plaintext.
    cheats = [dataclasses.replace(shares[x - 1], threshold=2) for x in (1, 2)]
    partials = [thr.partial_decrypt(share, ct, [1, 2], rng) for share in cheats]
    assert np.mean(thr.combine(ct, partials, 2) == m) < 0.01
    ctx = scheme.ntt_context(params)
    guess = reconstruct_field([1, 2], np.stack([shares[0].ys[0], shares[1].ys[0]]), ctx.primes[0])
    assert not np.array_equal(guess, np.mod(sk.s, ctx.primes[0]))


def test_wrong_inputs(setup):
    params, sk, m, ct, shares, rng = setup
    other_sk, _ = scheme.keygen(params, rng)
    foreign = thr.share_key(other_sk, 3, 5, rng)[0]
    with pytest.raises(scheme.KeyMismatchError):
        thr.partial_decrypt(foreign, ct, [1, 2, 3], rng)
    with pytest.raises(ValueError, match='not in the decrypting set'):
        thr.partial_decrypt(shares[4], ct, [1, 2, 3], rng)
    with pytest.raises(ValueError, match='distinct'):
        thr.partial_decrypt(shares[0], ct, [1, 1, 2], rng)
    a = thr.partial_decrypt(shares[0], ct, [1, 2, 3], rng)
    b = thr.partial_decrypt(shares[1], ct, [1, 2, 4], rng)
    c = thr.partial_decrypt(shares[2], ct, [1, 2, 3], rng)
    with pytest.raises(ValueError, match='different decrypting sets'):
        thr.combine(ct, [a, b, c], 3)
    assert thr.smudging_bits(ct, 3) > 0
