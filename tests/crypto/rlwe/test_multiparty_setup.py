"""Dealer-free key setup (`multiparty.setup_keys`) checked per test, without a shared fixture.

`test_multiparty.py` builds its committee once per module, so a tool that maps each test to the
code it calls (mutmut 3) credits `setup_keys` to the first test only and never runs the key
checks against a mutated setup. Here each test runs its own setup, and adds what those tests
leave open: seeded runs reproduce every message and another seed none (every random draw comes
from the caller's source), the residue range of public-key shares, and the noise record of a
collective-key encryption against the measured noise. References: the big-integer BFV of
`test_multiparty.py` (CRT, Kronecker products; no NTT, RNS ring or Shamir code) and the
variance formula of Mouchet et al. 2021 written out here. Tolerances are stated beside each
check.
"""

import math

import numpy as np
import pytest

from tests.crypto.rlwe import test_multiparty as base
from tfpriv.crypto.rlwe import multiparty
from tfpriv.crypto.rlwe import params as rp
from tfpriv.rng import RandomSource

PARTIES, T = 5, 3


def committee(seed=41, parties=PARTIES, threshold=T):
    params = rp.preset('n4096')
    holders, key, view, cost = multiparty.setup_keys(params, parties, threshold,
                                                     RandomSource(seed=seed))
    return params, holders, key, view, cost, sum(holder.secret_share for holder in holders)


def test_key_checks_of_test_multiparty_hold_for_a_setup_run_here():
    """The secret-key share, collective public key and re-sharing checks (two-sided, see
    test_multiparty.py) on a setup that this test itself runs; the key shares are integer
    residues."""
    setup = committee()
    base.test_secret_key_shares_are_independent_uniform_ternary(setup)
    base.test_collective_public_key_is_an_rlwe_sample_of_the_summed_secret(setup)
    base.test_resharing_gives_uniform_shamir_shares_of_the_summed_secret(setup)
    for holder in setup[1]:
        assert holder.key_share.share.dtype == np.int64


def _round(seed):
    """Setup of 3 holders (T = 2), one encryption and one decryption, all from `seed`."""
    params = rp.preset('n4096')
    holders, key, view, _ = multiparty.setup_keys(params, 3, 2, RandomSource(seed=seed))
    plain = np.arange(params.n).reshape(1, -1) % 100
    ct = key.encrypt(plain, RandomSource(seed=seed + 1))
    assert np.array_equal(multiparty.decrypt(ct, holders[:2], 2, view,
                                             rng=RandomSource(seed=seed + 2)), plain)
    return {
        'secret shares': [h.secret_share for h in holders],
        'key shares': [h.key_share.share for h in holders],
        'public-key shares': list(view.public_key_shares.values()),
        'collective b': [key.public.b],
        'seed': [np.frombuffer(view.seed, np.uint8)],
        'key id': [np.frombuffer(key.public.key_id, np.uint8)],
        'ciphertext': [ct.c0, ct.c1],
        'partial decryptions': list(view.partial_decryptions.values()),
    }


def test_seeded_runs_reproduce_every_message_and_another_seed_changes_each():
    """Every draw (s_i, e_i, the common seed, the Shamir coefficients, the encryption and the
    smudging noise) comes from the caller's source: the same seed gives the same bytes, another
    seed different ones (equal by chance with probability < 2^-60 per item)."""
    first, again, other = _round(51), _round(51), _round(52)
    for name in first:
        assert all(np.array_equal(a, b) for a, b in zip(first[name], again[name])), name
        assert not any(np.array_equal(a, b) for a, b in zip(first[name], other[name])), name
    assert first['key id'][0].size == 8


def test_unseeded_setups_differ():
    """Without a source each setup draws fresh OS randomness (and still works)."""
    params = rp.preset('n4096')
    (holders, key, view, _), (holders2, key2, view2, _) = (
        multiparty.setup_keys(params, 3, 2) for _ in range(2))
    assert view.seed != view2.seed and key.public.key_id != key2.public.key_id
    assert not np.array_equal(holders[0].secret_share, holders2[0].secret_share)


def test_public_key_share_residues_must_lie_in_0_to_p():
    """0 and p - 1 are residues and accepted; -1 and p are not; nor is a float array."""
    params, holders, key, view, cost, s = committee(seed=43, parties=3, threshold=2)
    primes = np.array(params.primes).reshape(-1, 1, 1)
    for value, accepted in ((0, True), (primes - 1, True), (-1, False), (primes, False)):
        shares = dict(view.public_key_shares)
        shares[2] = shares[2].copy()
        shares[2][:, :, 7:8] = value
        if accepted:
            multiparty.CollectiveKey.from_shares(params, view.seed, shares)
        else:
            with pytest.raises(ValueError, match='public-key share of holder x = 2'):
                multiparty.CollectiveKey.from_shares(params, view.seed, shares)
    shares = dict(view.public_key_shares)
    shares[3] = shares[3].astype(np.float64)
    with pytest.raises(ValueError, match='public-key share of holder x = 3'):
        multiparty.CollectiveKey.from_shares(params, view.seed, shares)


def test_noise_record_of_a_collective_key_covers_the_measured_noise():
    """E = c0 + c1 s - round(q m / t) has Var = sigma^2 (1 + ||s||^2 + N ||u||^2), about
    sigma^2 (1 + 2nN/3 + 2nN/3) = 6.7 sigma^2 n for N = 5; the record must use the worst case
    sigma^2 (1 + N^2 n + N n) with ||s||^2 <= N^2 n (the single-key record, sigma^2 (1 + 2n),
    is below the measured variance). The sample variance of 2n values has relative sd
    sqrt(2 / 2n) = 1.6 %; the check allows 5 sd."""
    params, holders, key, view, cost, s = committee(seed=44)
    n, q, t = params.n, params.q, params.t
    assert key.secret_norm2 == PARTIES**2 * n >= int(np.sum(s.astype(np.int64)**2))
    plain = np.random.default_rng(45).integers(-(t // 2) + 1, t // 2, (2, n))
    ct = key.encrypt(plain, RandomSource(seed=46))
    expected = params.sigma**2 * (1 + PARTIES**2 * n + PARTIES * n)
    assert ct.noise.variance == pytest.approx(expected, rel=1e-12)
    assert key.fresh_noise(7).variance == pytest.approx(expected, rel=1e-12)
    noise = []
    for row in range(2):
        phase = base.reference_phase(ct.c0[:, row], ct.c1[:, row], s, params)
        noise += [base.centred((x - (q * int(m) + t // 2) // t) % q, q)
                  for x, m in zip(phase, np.mod(plain[row], t))]
    measured = float(np.var(np.array(noise, dtype=np.float64)))
    assert measured * (1 - 5 * math.sqrt(1 / n)) <= ct.noise.variance
    assert measured > params.sigma**2 * (1 + 2 * n) * 2  # far above a single key's record


def test_a_holder_without_a_key_share_is_told_to_run_the_resharing():
    params = rp.preset('n4096')
    holders, key, view, _ = multiparty.setup_keys(params, 3, 2, RandomSource(seed=47))
    ct = key.encrypt(np.zeros((1, params.n), dtype=np.int64), RandomSource(seed=48))
    fresh = multiparty.KeyHolder.generate(params, 1, RandomSource(seed=49))
    with pytest.raises(ValueError, match=r'^key holder x = 1 has no share of s yet: run the '
                                         r're-sharing \(setup_keys\) first$'):
        fresh.partial_decrypt(ct, [1, 2], 40)
