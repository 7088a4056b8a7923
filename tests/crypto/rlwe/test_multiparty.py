"""Dealer-free multiparty BFV (`tfpriv.crypto.rlwe.multiparty`), checked against an
independent big-integer BFV written here.

The reference never touches the NTT, the RNS ring or the Shamir code under test: residues
are glued by the CRT into Python ints modulo q, negacyclic products are one big-integer
multiplication (Kronecker substitution), decryption is round(t (c0 + c1 s) / q) mod t, and
s = sum_i s_i is formed here, in the test only. Statistical tolerances are stated beside
each check (5 standard deviations unless said otherwise: false-failure rate < 1e-6).
"""

import math

import numpy as np
import pytest

from tfpriv.crypto.rlwe import multiparty, serialize, threshold
from tfpriv.crypto.rlwe import params as rp
from tfpriv.crypto.rlwe.secagg import RlweAggregator
from tfpriv.crypto.secagg import PlainAggregator
from tfpriv.rng import RandomSource

PARTIES, T = 5, 3


# --- independent big-integer reference -----------------------------------------------------

def to_ints(residues, primes):
    """CRT: residues (L, n) -> n Python ints in [0, q)."""
    q = math.prod(primes)
    basis = [(q // p) * pow(q // p, -1, p) for p in primes]
    return [sum(int(residues[i][k]) * basis[i] for i in range(len(primes))) % q
            for k in range(len(residues[0]))]


def _pack(values, slot):
    return int.from_bytes(b''.join(int(v).to_bytes(slot, 'little') for v in values), 'little')


def negacyclic(a, s, q):
    """a * s mod (x^n + 1, q) for a in [0, q) and small signed s, by Kronecker substitution."""
    n = len(a)
    slot = (q.bit_length() + (n * max(1, max(abs(int(v)) for v in s))).bit_length() + 8) // 8
    packed_a = _pack(a, slot)
    product = [0] * (2 * n)
    for sign in (1, -1):
        part = [max(sign * int(v), 0) for v in s]
        raw = (packed_a * _pack(part, slot)).to_bytes(2 * n * slot, 'little')
        for k in range(2 * n):
            product[k] += sign * int.from_bytes(raw[k * slot:(k + 1) * slot], 'little')
    return [(product[k] - product[k + n]) % q for k in range(n)]


def centred(x, q):
    return x - q if x > q // 2 else x


def reference_phase(c0, c1, s, params):
    """c0 + c1 s mod q for one polynomial of each component (residues (L, n))."""
    q = params.q
    c1s = negacyclic(to_ints(c1, params.primes), s, q)
    return [(a + b) % q for a, b in zip(to_ints(c0, params.primes), c1s)]


def reference_decrypt(ct, s, params):
    """BFV decryption of every polynomial of `ct` in Python ints: centred round(t x / q)."""
    q, t = params.q, params.t
    rows = []
    for row in range(ct.c0.shape[1]):
        phase = reference_phase(ct.c0[:, row], ct.c1[:, row], s, params)
        rows.append([centred((2 * t * x + q) // (2 * q) % t, t) for x in phase])
    return np.array(rows, dtype=np.int64)


def lagrange_at_zero(xs, p):
    return [math.prod(xm * pow(xm - xj, -1, p) for xm in xs if xm != xj) % p for xj in xs]


def interpolate(shares, xs, params):
    """Lagrange interpolation at 0 of Shamir shares (each (L, n)) per prime, in Python ints."""
    out = np.zeros((params.num_primes, params.n), dtype=np.int64)
    for row, p in enumerate(params.primes):
        lambdas = lagrange_at_zero(xs, p)
        out[row] = sum(lam * shares[j][row].astype(object) for j, lam in enumerate(lambdas)) % p
    return out


def agreement(got, want):
    """(fraction of equal coefficients, Pearson correlation) of two integer arrays."""
    got, want = np.asarray(got, dtype=np.float64).ravel(), np.asarray(want, np.float64).ravel()
    return float(np.mean(got == want)), float(np.corrcoef(got, want)[0, 1])


# --- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def committee():
    params = rp.preset('n4096')
    holders, key, view, cost = multiparty.setup_keys(params, PARTIES, T, RandomSource(seed=21))
    s = sum(holder.secret_share for holder in holders)  # formed in the test only
    return params, holders, key, view, cost, s


@pytest.fixture(scope='module')
def encrypted(committee):
    params, holders, key, view, cost, s = committee
    plain = np.random.default_rng(22).integers(-(params.t // 2) + 1, params.t // 2,
                                               (2, params.n))
    return plain, key.encrypt(plain, RandomSource(seed=23))


def decrypt_with(holders, ct, xs, needed, rng=None):
    view = multiparty.ServerView(b'')
    by_x = {holder.x: holder for holder in holders}
    return multiparty.decrypt(ct, [by_x[x] for x in xs], needed, view, rng=rng), view


# --- key generation ------------------------------------------------------------------------

def test_secret_key_shares_are_independent_uniform_ternary(committee):
    params, holders, key, view, cost, s = committee
    n = params.n
    # Counts of -1, 0, 1 are Binomial(n, 1/3): mean n/3, sd sqrt(n 2/9) = 30.2 for n = 4096.
    for holder in holders:
        counts = [int(np.sum(holder.secret_share == v)) for v in (-1, 0, 1)]
        assert all(abs(c - n / 3) <= 5 * math.sqrt(n * 2 / 9) for c in counts), counts
        assert sum(counts) == n
    # Distinct holders draw independently: |Pearson r| ~ N(0, 1/n), 5 sd = 5/sqrt(n).
    for first, second in zip(holders, holders[1:]):
        r = np.corrcoef(first.secret_share, second.secret_share)[0, 1]
        assert abs(r) < 5 / math.sqrt(n)


def test_collective_public_key_is_an_rlwe_sample_of_the_summed_secret(committee):
    """b + a s = e with e = sum_i e_i: variance N sigma^2 (two-sided)."""
    params, holders, key, view, cost, s = committee
    q = params.q
    b = to_ints(key.public.b[:, 0], params.primes)
    a_s = negacyclic(to_ints(key.public.a[:, 0], params.primes), s, q)
    e = np.array([centred((x + y) % q, q) for x, y in zip(b, a_s)], dtype=np.float64)
    expected = PARTIES * params.sigma**2  # 51.2
    # Sample variance of n Gaussians: relative sd sqrt(2/n) = 2.2 %; 5 sd = 11 %. A key
    # without the errors (0), with one holder's error (10.24) or with a key from fewer
    # holders' s_i (e ~ uniform mod q) fails.
    assert abs(e.var() / expected - 1) < 5 * math.sqrt(2 / params.n)
    assert abs(e.mean()) < 5 * math.sqrt(expected / params.n)
    assert np.abs(e).max() <= PARTIES * math.ceil(13 * params.sigma)  # the CDT's support
    # The server derived pk from public-key shares only, and a from the public seed.
    assert set(view.public_key_shares) == set(range(1, PARTIES + 1))
    assert key.public.seed == view.seed and key.num_parties == PARTIES


def test_resharing_gives_uniform_shamir_shares_of_the_summed_secret(committee):
    params, holders, key, view, cost, s = committee
    shares = [holder.key_share.share for holder in holders]
    expected = np.stack([np.mod(s, p) for p in params.primes])
    for xs in ([1, 2, 3], [2, 4, 5], [1, 2, 3, 4, 5]):
        assert np.array_equal(interpolate([shares[x - 1] for x in xs], xs, params), expected)
    # Each share is uniform mod p (mean p/2; sd of the mean of L n values of U[0, 1) is
    # sqrt(1 / (12 L n)) = 0.0023): a re-sharing without random coefficients (share = s)
    # would sit near 0 and p.
    for share in shares:
        mean = np.mean(share / np.array(params.primes).reshape(-1, 1))
        assert abs(mean - 0.5) < 5 * math.sqrt(1 / (12 * share.size))


# --- decryption ----------------------------------------------------------------------------

def test_any_t_holders_decrypt_like_the_big_integer_reference(committee, encrypted):
    params, holders, key, view, cost, s = committee
    plain, ct = encrypted
    assert np.array_equal(reference_decrypt(ct, s, params), plain)
    for xs in ([1, 2, 3], [2, 4, 5], [1, 3, 4, 5]):
        got, seen = decrypt_with(holders, ct, xs, T)
        assert np.array_equal(got, plain)
        assert seen.decrypting_set == tuple(xs)
    # The tracked noise bound covers the actual noise E = phase - round(q m / t).
    q, t = params.q, params.t
    phase = reference_phase(ct.c0[:, 0], ct.c1[:, 0], s, params)
    noise = [abs(centred((x - (q * int(m) + t // 2) // t) % q, q)) for x, m in
             zip(phase, np.mod(plain[0], t))]
    assert max(noise) <= ct.noise.bound()


def test_smudging_noise_has_the_chosen_width(committee, encrypted):
    """c0 + sum_j d_j - round(q m / t) = E + sum_j e_j, e_j uniform on 2^b values."""
    params, holders, key, view, cost, s = committee
    plain, ct = encrypted
    q, t = params.q, params.t
    xs = [1, 2, 4]
    bits = threshold.smudging_bits(params, ct.noise, len(xs))
    partials = [holders[x - 1].partial_decrypt(ct, xs, bits, RandomSource(seed=x)) for x in xs]
    residual = []
    for row in range(ct.c0.shape[1]):
        total = to_ints(ct.c0[:, row], params.primes)
        for d in partials:
            total = [(u + v) % q for u, v in zip(total, to_ints(d[:, row], params.primes))]
        scaled = [(q * int(m) + t // 2) // t for m in np.mod(plain[row], t)]
        residual += [centred((u - v) % q, q) for u, v in zip(total, scaled)]
    residual = np.array(residual, dtype=np.float64)
    expected = len(xs) * (4.0**bits - 1) / 12  # E is below 2^-40 of this
    # Sum of 3 uniforms: excess kurtosis -0.4, so the sample variance has relative sd
    # sqrt(1.6 / N) with N = 2 n = 8192 (1.4 %); 5 sd = 7 %. Without smudging the
    # variance would be ~2^-80 of this.
    assert abs(residual.var() / expected - 1) < 5 * math.sqrt(1.6 / residual.size)
    assert np.abs(residual).max() <= len(xs) * 2.0**(bits - 1) + ct.noise.bound()


def test_zeroed_or_wrong_key_share_breaks_decryption(committee, encrypted):
    params, holders, key, view, cost, s = committee
    plain, ct = encrypted
    right, _ = decrypt_with(holders, ct, [1, 2, 3], T)
    assert np.array_equal(right, plain)
    for bad in (np.zeros_like(holders[1].key_share.share), holders[3].key_share.share):
        forged = multiparty.KeyHolder(params, 2, holders[1].secret_share,
                                      threshold.KeyShare(params, 2, bad))
        got, _ = decrypt_with([holders[0], forged, holders[2]], ct, [1, 2, 3], T)
        # Garbage is uniform mod t: P(equal) = 2^-30 per coefficient, |r| ~ N(0, 1/(2n)).
        equal, r = agreement(got, plain)
        assert equal < 0.01 and abs(r) < 5 / math.sqrt(plain.size)


def test_fewer_than_t_holders_cannot_decrypt(committee, encrypted):
    params, holders, key, view, cost, s = committee
    plain, ct = encrypted
    with pytest.raises(ValueError, match='at least 3 needed'):
        decrypt_with(holders, ct, [1, 2], T)
    got, _ = decrypt_with(holders, ct, [1, 2], 2)  # ignoring the threshold: the wrong key
    equal, r = agreement(got, plain)
    assert equal < 0.01 and abs(r) < 5 / math.sqrt(plain.size)


def test_smudging_takes_the_room_q_allows(committee, encrypted):
    """b is the largest width with T 2^(b-1) + |E| < q/(2t), computed in Python ints (75 bits
    here, past the 62 bits one uint64 word would give), so a round where one client holds
    most examples still has 2^40 of smudging margin under the 5-party key."""
    params, holders, key, view, cost, s = committee
    plain, ct = encrypted
    room = params.q // (2 * params.t) - 1 - math.ceil(ct.noise.bound())
    want = max(b for b in range(1, 128) if T * 2**(b - 1) <= room)
    assert threshold.smudging_bits(params, ct.noise, T) == want > 64
    rng = np.random.default_rng(26)
    updates = [[rng.uniform(-1, 1, 50)] for _ in range(10)]
    counts = [6000] + [10] * 9  # integer example counts: used exactly
    average, stats = RlweAggregator(rng=RandomSource(seed=27)).aggregate(updates, counts)
    expected, _ = PlainAggregator().aggregate(updates, counts)
    np.testing.assert_allclose(average[0], expected[0], atol=10 * 2.0**-16)
    assert stats.extra['smudging_bits'] > 64


# --- the server's view in a federated round ------------------------------------------------

def test_server_view_with_t_minus_one_colluders_does_not_decrypt_one_client(monkeypatch):
    """Holders 1 and 2 (T - 1 = 2 of 5, both in the decrypting set) pool their s_i, their
    Shamir shares and everything the server received; client 4's ciphertext stays
    undecryptable, while T holders decrypt the aggregate exactly."""
    captured = {}

    def spy(*args, **kwargs):
        captured['setup'] = setup_keys(*args, **kwargs)
        return captured['setup']

    setup_keys = multiparty.setup_keys
    monkeypatch.setattr(multiparty, 'setup_keys', spy)
    rng = np.random.default_rng(24)
    updates = [[rng.uniform(-1, 1, (64, 63)), rng.uniform(-1, 1, 64)] for _ in range(PARTIES)]
    aggregator = RlweAggregator('n4096', precision=16, bound=1.0, rng=RandomSource(seed=25))
    average, stats = aggregator.aggregate(updates, [1, 2, 3, 4, 5])
    expected, _ = PlainAggregator().aggregate(updates, [1, 2, 3, 4, 5])
    for got, want in zip(average, expected):
        np.testing.assert_allclose(got, want, atol=2.0**-16)
    holders, key, view, _ = captured['setup']
    params = aggregator.params
    assert aggregator.transcript is view and view.decrypting_set == (1, 2, 3)
    assert stats.extra['threshold'] == T
    # The server's view holds only public-key shares, ciphertexts and partial decryptions.
    secret_types = (multiparty.KeyHolder, threshold.KeyShare)
    held = list(vars(aggregator).values()) + list(vars(view).values())
    held += [v for field in (view.public_key_shares, view.partial_decryptions)
             for v in field.values()] + list(view.ciphertexts)
    assert not any(isinstance(value, secret_types) for value in held)

    target = serialize.loads(view.ciphertexts[3], params)
    plain = aggregator.encoder.encode(np.concatenate([u.ravel() for u in updates[3]]))
    s = sum(holder.secret_share for holder in holders)
    assert np.array_equal(reference_decrypt(target, s, params), plain)  # the full key would
    colluders = holders[:T - 1]
    xs = [holder.x for holder in colluders]
    interpolated = interpolate([h.key_share.share for h in colluders], xs, params)
    guesses = {
        'interpolated shares': [centred(v, params.q) for v in to_ints(interpolated,
                                                                      params.primes)],
        'sum of own s_i': sum(holder.secret_share for holder in colluders),
    }
    for name, guess in guesses.items():
        equal, r = agreement(reference_decrypt(target, guess, params), plain)
        assert equal < 0.01 and abs(r) < 5 / math.sqrt(plain.size), name


# --- argument checks -----------------------------------------------------------------------

def test_setup_checks_and_reprs(committee, encrypted):
    params, holders, key, view, cost, s = committee
    plain, ct = encrypted
    with pytest.raises(ValueError, match='threshold must be <= 5'):
        multiparty.setup_keys(params, 5, 6)
    with pytest.raises(TypeError, match='num_parties must be an int'):
        multiparty.setup_keys(params, 5.0, 3)
    fresh = multiparty.KeyHolder.generate(params, 1)
    with pytest.raises(ValueError, match='no share of s yet'):
        fresh.partial_decrypt(ct, [1, 2, 3], 40)
    shares = dict(view.public_key_shares)
    shares[2] = shares[2][:, :, :10]
    with pytest.raises(ValueError, match='public-key share of holder x = 2'):
        multiparty.CollectiveKey.from_shares(params, view.seed, shares)
    shares[2] = view.public_key_shares[2] + params.primes[0]
    with pytest.raises(ValueError, match='public-key share of holder x = 2'):
        multiparty.CollectiveKey.from_shares(params, view.seed, shares)
    assert cost.bytes_per_holder == 4 * params.num_primes * params.n * PARTIES
    text = repr(holders[0])
    assert 'secret_share' not in text and 'key_share' not in text and 'x=1' in text
