"""RLWE/BFV arithmetic and serialization against references written here (issue #20,
mutation round 8): Python-int arithmetic modulo q, CRT by hand, a schoolbook negacyclic
product, the byte layout of `serialize` written out with `struct`, and the noise formulas
of the module docs. Nothing here calls the code under test to get an expected value.

The tiny insecure 'toy' ring (n = 64, two primes) keeps the Python-int references fast.
Every noise quantity is checked exactly (it is a deterministic record) or two-sided.

`keys.ring_of` caches one Ring (and its NTT tables) per parameter set; the cache is cleared
before each test here so that a test builds the ring with the code it is run against.
"""

import dataclasses
import hashlib
import math
import struct

import numpy as np
import pytest

from tfpriv.crypto.rlwe import bfv, keys, modswitch, sampling, serialize
from tfpriv.crypto.rlwe import params as rp
from tfpriv.crypto.rlwe.encoding import Encoder
from tfpriv.crypto.rlwe.ntt import Ntt, _primitive_root_2n, shoup_companion, shoup_mul
from tfpriv.crypto.rlwe.rns import Ring
from tfpriv.errors import NoiseBudgetError, PlaintextOverflowError, SerializationError
from tfpriv.rng import Prg, RandomSource

TOY = rp.preset('toy', insecure=True)
Q, T, N, PRIMES = TOY.q, TOY.t, TOY.n, TOY.primes
HALF_T = (T - 1) // 2
THREE = rp.Params(64, rp.ntt_primes(64, 3), 12289, insecure=True)  # odd t, three primes


@pytest.fixture(autouse=True)
def _fresh_rings():
    keys.ring_of.cache_clear()
    yield
    keys.ring_of.cache_clear()


# --- references ------------------------------------------------------------------------

def crt(residues, primes=PRIMES):
    """Python ints in [0, q) from residues (L, ...) by the CRT formula."""
    q = math.prod(primes)
    total = 0
    for r, p in zip(residues, primes):
        q_hat = q // p
        total = total + np.asarray(r).astype(object) * (q_hat * pow(q_hat, -1, p))
    return total % q


def to_residues(values, primes=PRIMES):
    """int64 residues (L, ...) of Python ints (or small signed ints)."""
    values = np.asarray(values, dtype=object)
    return np.stack([(values % p).astype(np.int64) for p in primes])


def negacyclic(a, b, q):
    """a b in Z_q[x]/(x^n + 1), schoolbook, Python ints."""
    n = len(a)
    out = [0] * n
    for i in range(n):
        ai = int(a[i])
        for j in range(n):
            term = ai * int(b[j])
            if i + j < n:
                out[i + j] += term
            else:
                out[i + j - n] -= term
    return np.array([x % q for x in out], dtype=object)


def delta_m(m, q=Q, t=T):
    """round(q (m mod t) / t), ties up, as Python ints."""
    return np.array([(q * (int(x) % t) + t // 2) // t for x in np.ravel(m)],
                    dtype=object).reshape(np.shape(m))


def noise_fields(noise):
    return noise.variance, noise.rounding, noise.plain, noise.ancestors


def toy_keys(seed):
    return keys.keygen(TOY, RandomSource(seed=seed))


def plaintext(seed, batch=2, bound=HALF_T):
    m = np.random.default_rng(seed).integers(-bound, bound + 1, (batch, N))
    m[0, :2] = [bound, -bound]
    return m


# --- bfv: encryption, decryption, the Noise record --------------------------------------

def test_public_key_encryption_is_b_u_plus_e0_plus_delta_m_and_a_u_plus_e1():
    secret, public = toy_keys(21)
    m = plaintext(21)
    ct = bfv.encrypt(public, m, Prg(RandomSource(seed=22)))
    replay = Prg(RandomSource(seed=22))  # u, e0, e1 drawn in this order
    u = sampling.ternary(replay, m.shape)
    e0 = sampling.gaussian(replay, m.shape, TOY.sigma)
    e1 = sampling.gaussian(replay, m.shape, TOY.sigma)
    b, a = crt(public.b[:, 0]), crt(public.a[:, 0])
    for row in range(m.shape[0]):
        c0 = (negacyclic(b, u[row], Q) + delta_m(m[row]) + e0[row].astype(object)) % Q
        c1 = (negacyclic(a, u[row], Q) + e1[row].astype(object)) % Q
        assert list(crt(ct.c0[:, row])) == list(c0)
        assert list(crt(ct.c1[:, row])) == list(c1)
    assert ct.seed is None and ct.key_id == public.key_id
    variance, rounding, plain, ancestors = noise_fields(ct.noise)
    assert (variance, rounding, plain) == (TOY.sigma**2 * (1 + 2 * N), 0.5, HALF_T)
    assert len(ancestors) == 1
    assert np.array_equal(bfv.decrypt(secret, ct), m)


def test_symmetric_encryption_is_delta_m_minus_a_s_plus_e_with_a_from_its_seed():
    secret, _ = toy_keys(23)
    m = plaintext(23, bound=1000)
    ct = bfv.encrypt_symmetric(secret, m, Prg(RandomSource(seed=24)))
    replay = Prg(RandomSource(seed=24))  # the seed of a, then e
    seed = replay.uint8(Prg.SEED_BYTES).tobytes()
    e = sampling.gaussian(replay, m.shape, TOY.sigma)
    a = keys.uniform_poly(TOY, seed, m.shape[0])
    s = np.array([int(x) % Q for x in secret.s], dtype=object)
    for row in range(m.shape[0]):
        a_row = crt(a[:, row])
        c0 = (delta_m(m[row]) - negacyclic(a_row, s, Q) + e[row].astype(object)) % Q
        assert list(crt(ct.c0[:, row])) == list(c0)
        assert list(crt(ct.c1[:, row])) == list(a_row)
    assert ct.seed == seed and ct.key_id == secret.key_id
    assert noise_fields(ct.noise)[:3] == (TOY.sigma**2, 0.5, 1000)
    assert np.array_equal(bfv.decrypt(secret, ct), m)


def test_fresh_noise_is_the_documented_variance():
    sigma2 = TOY.sigma**2
    assert noise_fields(bfv.fresh_noise(TOY, 7))[:3] == (sigma2 * (1 + 2 * N), 0.5, 7)
    assert bfv.fresh_noise(TOY, 7, symmetric=True).variance == sigma2
    assert bfv.fresh_noise(TOY, 7, key_parties=3).variance == sigma2 * (1 + 9 * N + 3 * N)
    assert bfv.fresh_noise(TOY, 7, ancestor='x').ancestors == frozenset({'x'})
    one, two = bfv.fresh_noise(TOY, 0), bfv.fresh_noise(TOY, 0)
    assert len(one.ancestors) == len(two.ancestors) == 1
    assert not one.ancestors & two.ancestors


def test_measured_fresh_noise_matches_its_variance_two_sided():
    """E = phase - round(q m/t) of public-key encryptions of zero under n1024. Given s and
    the key error e (e = -b - a s), Var(E_i) = sigma_d^2 (1 + ||s||^2) + (2/3)||e||^2
    (u ternary, E[u^2] = 2/3; sigma_d^2 the discrete Gaussian's variance, summed from its
    density). Tolerance: 8 standard errors of a variance estimate over 16 n samples of a
    near-Gaussian, se ~ v sqrt(2 / (16 n)) = 1.1 % (8 se = 9 %); the recorded variance must
    bound it (worst case ||s||^2, ||u||^2 <= n)."""
    params = rp.preset('n1024')
    q, p = params.q, params.primes[0]
    secret, public = keys.keygen(params, RandomSource(seed=25))
    batch = 16
    ct = bfv.encrypt(public, np.zeros((batch, params.n), dtype=np.int64),
                     Prg(RandomSource(seed=26)))
    s = secret.s.astype(object)
    e = (-crt(public.b[:, 0], params.primes) - negacyclic(crt(public.a[:, 0], params.primes),
                                                           s % q, q)) % q
    e = np.array([x - q if x > q // 2 else x for x in e], dtype=np.int64)
    assert np.abs(e).max() <= 13 * params.sigma
    ring = Ring(params)
    phase = ring.add(ct.c0, ring.mul(ct.c1, ring.from_signed(secret.s)[:, None, :]))[0]
    errors = np.where(phase > p // 2, phase - p, phase)
    v = np.arange(-60, 61, dtype=np.float64)
    weights = np.exp(-v**2 / (2 * params.sigma**2))
    sigma_d2 = float((weights * v**2).sum() / weights.sum())
    expected = sigma_d2 * (1 + np.sum(secret.s**2)) + 2 / 3 * float(np.sum(e.astype(float)**2))
    measured = float(np.mean(errors.astype(np.float64)**2))
    assert abs(measured - expected) <= 8 * expected * math.sqrt(2 / errors.size)
    assert ct.noise.variance >= measured


def test_noise_sums_add_variances_only_for_disjoint_known_ancestors():
    a = bfv.Noise(4.0, 1.0, 2, frozenset({'a'}))
    b = bfv.Noise(9.0, 2.0, 3, frozenset({'b'}))
    overlap = bfv.Noise(9.0, 2.0, 3, frozenset({'a', 'c'}))
    unknown = bfv.Noise(9.0, 2.0, 3)
    assert noise_fields(a + b) == (13.0, 3.0, 5, frozenset({'a', 'b'}))
    assert noise_fields(a + overlap) == (25.0, 3.0, 5, frozenset({'a', 'c'}))
    assert noise_fields(a + unknown) == (25.0, 3.0, 5, frozenset({'a'}))
    assert noise_fields(unknown + a) == (25.0, 3.0, 5, frozenset({'a'}))
    assert noise_fields(a.scaled(3, 5)) == (20.0, 3.0, 6, frozenset({'a'}))
    assert noise_fields(a.with_variance(9.0)) == (25.0, 1.0, 2, frozenset({'a'}))
    assert bfv.Noise(4.0, 1.5, 0).bound() == 9 * 2 + 1.5
    top = math.log2(Q / (2 * T))
    assert bfv.Noise(4.0, 1.5, 0).budget_bits(TOY) == pytest.approx(top - math.log2(19.5))
    assert bfv.Noise(0.0, 0.25, 0).budget_bits(TOY) == top


def test_noise_guard_limit_is_q_over_2t_minus_1_and_plain_is_t_minus_1_over_2():
    limit = Q / (2 * T) - 1
    with pytest.raises(NoiseBudgetError, match=r'noise bound 2\^.* reaches the decryption '
                                                r'limit q/\(2t\) = 2\^.*: too many additions.*'
                                                rf't = {T}; use fewer terms'):
        bfv.Noise(0.0, limit, 0).check(TOY)
    bfv.Noise(0.0, math.nextafter(limit, 0.0), HALF_T).check(TOY)
    with pytest.raises(PlaintextOverflowError, match=rf'plaintext bound {HALF_T + 1} reaches '
                                                     rf't/2 = {T // 2}: the result would wrap'):
        bfv.Noise(0.0, 0.5, HALF_T + 1).check(TOY)


def test_decryption_is_round_t_x_over_q_centred():
    secret, _ = toy_keys(27)
    rng = np.random.default_rng(27)
    x = [int(v) for v in rng.integers(0, 2**62, 2 * N - 21)] + [0, 1, Q - 1]
    margin = Q // T // 2**10  # the float part of scale_round is exact to 2^-20 (rns doc)
    for k in (0, 1, HALF_T - 1, HALF_T, HALF_T + 1, T - 1):  # both sides of each boundary
        edge = (2 * k + 1) * Q // (2 * T)
        x += [edge - margin, edge + margin, k * Q // T]
    x = np.array([v % Q for v in x], dtype=object).reshape(2, N)
    ct = bfv.Ciphertext(TOY, to_residues(x), bfv.Noise(0.0, 0.5, 0),
                        np.zeros((len(PRIMES), 2, N), dtype=np.int64), key_id=secret.key_id)
    expected = [(2 * T * int(v) + Q) // (2 * Q) % T for v in x.ravel()]
    expected = np.array([m - T if m > HALF_T else m for m in expected]).reshape(2, N)
    assert np.array_equal(bfv.decrypt(secret, ct), expected)
    c1 = np.array([int(v) for v in rng.integers(0, 2**62, 2 * N)], dtype=object) % Q
    ct.c1_residues = to_residues(c1.reshape(2, N))
    s = np.array([int(v) % Q for v in secret.s], dtype=object)
    phase = bfv.phase(secret, ct)
    for row in range(2):
        assert list(crt(phase[:, row])) == list((x[row] + negacyclic(c1[row * N:(row + 1) * N],
                                                                      s, Q)) % Q)


def test_decryption_checks_the_key_and_the_noise_first():
    secret, public = toy_keys(28)
    other, _ = toy_keys(29)
    zero = np.zeros((1, N), dtype=np.int64)
    ct = bfv.encrypt(public, zero)
    with pytest.raises(TypeError, match='^expected a SecretKey and a Ciphertext$'):
        bfv.decrypt(public, ct)
    with pytest.raises(TypeError, match='^expected a SecretKey and a Ciphertext$'):
        bfv.decrypt(secret, ct.c0)
    with pytest.raises(ValueError, match=rf'wrong key: the ciphertext was encrypted under key '
                                         rf'{ct.key_id.hex()}, this is key {other.key_id.hex()}'):
        bfv.decrypt(other, ct)
    ct.key_id = b''  # an unlabelled ciphertext (or key) is not refused
    assert np.array_equal(bfv.decrypt(secret, ct), zero)
    unlabelled = keys.SecretKey(TOY, secret.s)
    ct.key_id = public.key_id
    assert np.array_equal(bfv.decrypt(unlabelled, ct), zero)
    wide = keys.SecretKey(TOY.with_plain_modulus(T + 1), secret.s)
    with pytest.raises(ValueError, match=rf'the key is for parameters toy \(fingerprint '
                                         rf'{wide.params.fingerprint().hex()}\), the ciphertext '
                                         rf'for toy \({TOY.fingerprint().hex()}\)'):
        bfv.decrypt(wide, ct)
    ct.noise = bfv.Noise(0.0, Q / (2 * T), 0)
    with pytest.raises(NoiseBudgetError):
        bfv.decrypt(secret, ct)


def test_plaintexts_are_checked():
    secret, public = toy_keys(30)
    for bad in (np.full((1, N), HALF_T + 1), np.full((1, N), -HALF_T - 1)):
        with pytest.raises(ValueError, match=rf'plaintext coefficients must lie in '
                                             rf'\[-\(t-1\)/2, \(t-1\)/2\] with t = {T}, got '
                                             rf'magnitude {HALF_T + 1}'):
            bfv.encrypt(public, bad)
    with pytest.raises(ValueError, match=rf'plaintext must have shape \(batch, n={N}\), '
                                         rf'got \({N},\)'):
        bfv.encrypt(public, np.zeros(N, dtype=np.int64))
    with pytest.raises(TypeError, match='plaintext must be integers'):
        bfv.encrypt_symmetric(secret, np.zeros((1, N)))
    small = np.full((1, N), -3, dtype=np.int32)
    ct = bfv.encrypt_symmetric(secret, small)
    assert ct.noise.plain == 3 and np.array_equal(bfv.decrypt(secret, ct), small)
    empty = bfv.encrypt(public, np.zeros((0, N), dtype=np.int64))
    assert empty.noise.plain == 0 and bfv.decrypt(secret, empty).shape == (0, N)
    assert bfv.encrypt_symmetric(secret, np.zeros((0, N), dtype=np.int64)).noise.plain == 0


def _pair(seed):
    secret, public = toy_keys(seed)
    ma, mb = plaintext(seed, bound=100), plaintext(seed + 1, bound=100)
    return secret, public, ma, mb, bfv.encrypt(public, ma), bfv.encrypt(public, mb)


def test_add_sub_negate_are_componentwise_mod_q_with_their_noise():
    secret, public, ma, mb, ca, cb = _pair(31)
    total = bfv.add(ca, cb)
    for k in ('c0', 'c1'):
        x, y = crt(getattr(ca, k)), crt(getattr(cb, k))
        assert np.array_equal(crt(getattr(total, k)), (x + y) % Q)
        assert np.array_equal(crt(getattr(bfv.negate(ca), k)), (-x) % Q)
        assert np.array_equal(crt(getattr(bfv.sub(ca, cb), k)), (x - y) % Q)
    assert noise_fields(total.noise) == noise_fields(ca.noise + cb.noise)
    assert noise_fields(bfv.negate(ca).noise) == noise_fields(ca.noise)
    assert total.key_id == bfv.negate(ca).key_id == public.key_id
    assert np.array_equal(bfv.decrypt(secret, bfv.sub(ca, cb)), ma - mb)
    zero = bfv.Ciphertext(TOY, np.zeros_like(ca.c0), ca.noise, np.zeros_like(ca.c1))
    assert not bfv.negate(zero).c0.any()  # -0 = 0, not p
    _, other = toy_keys(32)
    with pytest.raises(ValueError, match=rf'ciphertexts under different keys '
                                         rf'\({public.key_id.hex()} vs {other.key_id.hex()}\) '
                                         'cannot be added'):
        bfv.add(ca, bfv.encrypt(other, mb))
    with pytest.raises(ValueError, match=r'ciphertexts differ in parameters or batch size '
                                         rf'\(toy, \(2, 1, {N}\) vs toy, \(2, 2, {N}\)\)'):
        bfv.add(bfv.encrypt(public, ma[:1]), cb)
    with pytest.raises(TypeError, match='^both operands must be Ciphertexts$'):
        bfv.add(ca, ca.c0)
    with pytest.raises(TypeError, match='^both operands must be Ciphertexts$'):
        bfv.add(ca.c0, ca)


@pytest.mark.parametrize('scalar', [-5, 2**70 + 3])
def test_mul_scalar_is_a_product_mod_q_and_scales_the_noise(scalar):
    secret, _, ma, _, ca, _ = _pair(33)
    out = bfv.mul_scalar(ca, scalar)
    for k in ('c0', 'c1'):
        assert np.array_equal(crt(getattr(out, k)), crt(getattr(ca, k)) * scalar % Q)
    v, r, plain, ancestors = noise_fields(ca.noise)
    assert noise_fields(out.noise) == (v * scalar**2, r * abs(scalar), plain * abs(scalar),
                                       ancestors)
    assert out.key_id == ca.key_id
    if scalar == -5:
        assert np.array_equal(bfv.decrypt(secret, out), -5 * ma)
        with pytest.raises(TypeError, match='^scalar must be an int, got float 0.5$'):
            bfv.mul_scalar(ca, 0.5)


def test_mul_plain_is_a_negacyclic_product_and_scales_by_the_largest_row_norms():
    secret, _, ma, _, ca, _ = _pair(34)
    poly = np.zeros((2, N), dtype=np.int64)
    poly[0, [0, 3, 9, 20, 40, 63]] = [1, -1, 1, 1, -1, 1]  # ||p||_1 = 6, ||p||_2^2 = 6
    poly[1, 3] = -4  # ||p||_1 = 4, ||p||_2^2 = 16 (summed over rows: 17 at x^3)
    out = bfv.mul_plain(ca, poly)
    for k in ('c0', 'c1'):
        comp = crt(getattr(ca, k))
        for row in range(2):
            assert list(crt(getattr(out, k)[:, row])) == list(negacyclic(poly[row], comp[row], Q))
    v, r, plain, ancestors = noise_fields(ca.noise)
    assert noise_fields(out.noise) == (v * 16, r * 6, plain * 6, ancestors)
    assert out.key_id == ca.key_id
    expected = [negacyclic(poly[row], ma[row] % T, T) for row in range(2)]
    expected = np.array([[x - T if x > HALF_T else x for x in row] for row in expected])
    assert np.array_equal(bfv.decrypt(secret, out), expected)
    shared = bfv.mul_plain(ca, poly[1])  # one (n,) polynomial for every row
    for row in range(2):
        assert list(crt(shared.c0[:, row])) == list(negacyclic(poly[1], crt(ca.c0)[row], Q))
    exact = np.zeros(N, dtype=np.int64)
    exact[[0, 7]] = [2**53 + 1, -(2**60 + 3)]  # not float64 numbers: products stay exact
    big = bfv.mul_plain(ca, exact)
    for row in range(2):
        assert list(crt(big.c1[:, row])) == list(negacyclic(exact, crt(ca.c1)[row], Q))
    for bad in (poly.astype(float), poly[:, :-1], poly[None]):
        with pytest.raises(ValueError, match=rf'plaintext polynomial must be integers of shape '
                                             rf'\(n,\) or \(B, n\) with n = {N}, got'):
            bfv.mul_plain(ca, bad)


def test_add_plain_adds_delta_m_to_c0_only():
    secret, _, ma, mb, ca, _ = _pair(35)
    out = bfv.add_plain(ca, mb)
    assert np.array_equal(crt(out.c0), (crt(ca.c0) + delta_m(mb)) % Q)
    assert np.array_equal(out.c1, ca.c1) and out.key_id == ca.key_id
    v, r, plain, ancestors = noise_fields(ca.noise)
    assert noise_fields(out.noise) == (v, r + 0.5, plain + int(np.abs(mb).max()), ancestors)
    assert np.array_equal(bfv.decrypt(secret, out), ma + mb)
    seeded = bfv.encrypt_symmetric(secret, ma)
    assert bfv.add_plain(seeded, mb).seed == seeded.seed
    with pytest.raises(ValueError, match=rf'plaintext shape \(1, {N}\) differs from the '
                                         rf'ciphertext batch \(2, {N}\)'):
        bfv.add_plain(ca, mb[:1])


# --- serialize: the byte layout, every refusal, the receiver's own noise record ----------

def layout(kind, key_id, batch, bits, seed, parts, version=2, seeded=None):
    """The documented layout, written out: header, seed, parts, SHA-256 prefix."""
    seeded = seed is not None if seeded is None else seeded
    body = (b'TFRLWE' + bytes([version, kind]) + TOY.fingerprint() + key_id
            + struct.pack('<I', batch) + bytes([bits[0], bits[1], seeded])
            + (seed or b'') + b''.join(parts))
    return body + hashlib.sha256(body).digest()[:16]


def little(values, width):
    return b''.join(int(v).to_bytes(width, 'little') for v in np.ravel(values))


def _toy_forms(seed):
    secret, public = toy_keys(seed)
    m = plaintext(seed, bound=500)
    full, seeded = bfv.encrypt(public, m), bfv.encrypt_symmetric(secret, m)
    return secret, m, full, seeded


def test_dumps_writes_the_documented_layout_and_loads_reads_it_back():
    secret, m, full, seeded = _toy_forms(41)
    blob = layout(1, full.key_id, 2, (0, 0), None, [little(full.c0, 4), little(full.c1, 4)])
    assert serialize.dumps(full) == blob
    back = serialize.loads(blob, TOY)
    assert np.array_equal(back.c0, full.c0) and np.array_equal(back.c1, full.c1)
    assert back.seed is None and back.key_id == full.key_id
    blob = layout(1, seeded.key_id, 2, (0, 0), seeded.seed, [little(seeded.c0, 4)])
    assert serialize.dumps(seeded) == blob
    back = serialize.loads(blob, TOY)
    assert back.seed == seeded.seed and np.array_equal(back.c1, seeded.c1)
    assert np.array_equal(bfv.decrypt(secret, back), m)
    for bits0, bits1, width0, width1 in ((9, 17, 2, 3), (8, 16, 1, 2), (62, 62, 8, 8)):
        packed = modswitch.compress(full, bits0, bits1)
        blob = layout(2, full.key_id, 2, (bits0, bits1), None,
                      [little(packed.z0, width0), little(packed.z1, width1)])
        assert serialize.dumps(packed) == blob
        back = serialize.loads(blob, TOY)
        assert np.array_equal(back.z0, packed.z0) and np.array_equal(back.z1, packed.z1)
        assert (back.bits0, back.bits1, back.seed, back.key_id) == (bits0, bits1, None,
                                                                    full.key_id)
    packed = modswitch.compress(seeded, 12, 20)
    blob = layout(2, seeded.key_id, 2, (12, 0), seeded.seed, [little(packed.z0, 2)])
    assert serialize.dumps(packed) == blob
    back = serialize.loads(blob, TOY)
    assert back.z1 is None and back.bits1 is None and back.seed == seeded.seed
    assert np.array_equal(back.z0, packed.z0)
    with pytest.raises(TypeError, match='cannot serialize SecretKey'):
        serialize.dumps(secret)
    for other in (b'not a ciphertext', None, 3):  # no .params: TypeError, not AttributeError
        with pytest.raises(TypeError, match=f'cannot serialize {type(other).__name__}'):
            serialize.dumps(other)


def test_loads_refuses_each_corrupt_field_even_with_a_valid_digest():
    _, _, full, _ = _toy_forms(42)
    c0, c1 = little(full.c0, 4), little(full.c1, 4)
    key = full.key_id
    cases = [
        (layout(3, key, 2, (0, 0), None, [c0, c1]),
         r'corrupt header \(kind 3, seeded 0, batch 2\)'),
        (layout(1, key, 2, (0, 0), None, [c0], seeded=2), r'corrupt header \(kind 1, seeded 2'),
        (layout(1, key, 0, (0, 0), None, []), r'corrupt header \(kind 1, seeded 0, batch 0\)'),
        (layout(1, key, 2, (0, 0), None, [c0, c1], version=1),
         'unsupported format version 1 \\(this is 2\\)'),
        (layout(2, key, 2, (0, 8), None, [b'', b'\0' * 2 * N]),
         'corrupt compressed widths 0, 8'),
        (layout(2, key, 2, (63, 8), None, [b'\0' * 16 * N, b'\0' * 2 * N]),
         'corrupt compressed widths 63, 8'),
        (layout(2, key, 2, (8, 0), None, [b'\0' * 2 * N, b'']), 'corrupt compressed widths 8, 0'),
        (layout(2, key, 2, (8, 63), None, [b'\0' * 2 * N, b'\0' * 16 * N]),
         'corrupt compressed widths 8, 63'),
        (layout(1, key, 2, (0, 0), None, [c0, c1, b'\0']),
         rf'expected {39 + 16 * 2 * N + 16} bytes for this ciphertext, got '
         rf'{39 + 16 * 2 * N + 17} \(truncated or padded\)'),
        (layout(1, key, 2, (0, 0), None, [c0, c1])[:-1] + b'\0',
         '^digest mismatch: the ciphertext was corrupted or tampered with$'),
        (b'TFRLWF' + layout(1, key, 2, (0, 0), None, [c0, c1])[6:],
         r'^not a tfpriv RLWE ciphertext \(bad magic\)$'),
    ]
    for blob, message in cases:
        with pytest.raises(SerializationError, match=message):
            serialize.loads(blob, TOY)
    minimal = layout(1, key, 1, (0, 0), None, [])[:39 + 16]  # header + digest: not "too short"
    with pytest.raises(SerializationError, match=r'expected \d+ bytes'):
        serialize.loads(minimal, TOY)
    with pytest.raises(SerializationError, match=r'54 bytes is too short for a ciphertext'):
        serialize.loads(minimal[:-1], TOY)
    with pytest.raises(SerializationError, match=r'made for different parameters \(fingerprint '
                                                 rf'{TOY.fingerprint().hex()}, expected '):
        serialize.loads(layout(1, key, 2, (0, 0), None, [c0, c1]), TOY.with_plain_modulus(T + 1))
    seeded_no_c1_width = layout(2, key, 2, (8, 0), b'\7' * 32, [b'\0' * 2 * N])
    assert serialize.loads(seeded_no_c1_width, TOY).bits1 is None
    seeded_c1_width = layout(2, key, 2, (8, 16), b'\7' * 32, [b'\0' * 2 * N])  # width ignored
    assert serialize.loads(seeded_c1_width, TOY).z1 is None
    narrowest = layout(2, key, 2, (1, 1), None, [b'\1' * 2 * N, b'\0' * 2 * N])
    back = serialize.loads(narrowest, TOY)
    assert (back.bits0, back.bits1) == (1, 1) and back.z0.min() == 1


def test_loads_refuses_residues_and_coefficients_out_of_range():
    _, _, full, _ = _toy_forms(43)
    key, p0, p1 = full.key_id, PRIMES[0], PRIMES[1]
    assert p0 > p1
    top = full.c0.copy()
    top[0, 0, 0], top[1, 0, 0] = p0 - 1, p1 - 1  # the largest residues: accepted
    top[0, 1, 5] = p1  # p1 < p0: a valid residue of the first prime
    back = serialize.loads(layout(1, key, 2, (0, 0), None, [little(top, 4), little(full.c1, 4)]),
                           TOY)
    assert np.array_equal(back.c0, top)
    for row, value in ((0, p0), (1, p1)):
        bad = full.c1.copy()
        bad[row, 1, 3] = value
        with pytest.raises(SerializationError,
                           match='^a residue is not reduced modulo its prime$'):
            serialize.loads(layout(1, key, 2, (0, 0), None, [little(full.c0, 4), little(bad, 4)]),
                            TOY)
    z = np.zeros((2, N), dtype=np.int64)
    z[1, 7] = 2**9 - 1
    back = serialize.loads(layout(2, key, 2, (9, 9), None, [little(z, 2), little(z, 2)]), TOY)
    assert back.z0[1, 7] == 2**9 - 1
    z[1, 7] = 2**9
    with pytest.raises(SerializationError, match=r'a compressed coefficient exceeds 2\^9'):
        serialize.loads(layout(2, key, 2, (9, 9), None, [little(z, 2), little(z * 0, 2)]), TOY)


def test_loads_recomputes_the_noise_of_a_fresh_public_key_encryption():
    _, _, full, seeded = _toy_forms(44)
    sigma2 = TOY.sigma**2
    for ct in (full, seeded):
        blob = serialize.dumps(ct)
        back = serialize.loads(blob, TOY)
        assert noise_fields(back.noise) == (sigma2 * (1 + 2 * N), 0.5, HALF_T,
                                            frozenset({blob[-16:]}))
        assert noise_fields(serialize.loads(blob, TOY, plain=0).noise)[2] == 0
        parties = serialize.loads(blob, TOY, plain=9, key_parties=3).noise
        assert noise_fields(parties)[:3] == (sigma2 * (1 + 9 * N + 3 * N), 0.5, 9)
    for bad, message in (({'plain': -1}, '^plain must be >= 0, got -1$'),
                         ({'key_parties': 0}, '^key_parties must be >= 1, got 0$')):
        with pytest.raises(ValueError, match=message):
            serialize.loads(blob, TOY, **bad)
    fresh = sigma2 * (1 + 9 * N + 3 * N)
    for ct, c1_term in ((full, 9 * N * (Q / 2.0**20)**2 / 12), (seeded, 0.0)):
        blob = serialize.dumps(modswitch.compress(ct, 12, 20))
        noise = serialize.loads(blob, TOY, plain=5, key_parties=3).noise
        extra = (Q / 2.0**12)**2 / 12 + c1_term
        assert noise.variance == pytest.approx((math.sqrt(fresh) + math.sqrt(extra))**2,
                                               rel=1e-12)
        assert (noise.rounding, noise.plain, noise.ancestors) == (0.5, 5,
                                                                  frozenset({blob[-16:]}))


# --- modswitch: rounding to 2^d and back, sums modulo 2^d, the widths rule ---------------

def switch_down(c, bits):
    """round(2^d c / q) mod 2^d (q odd: no ties), Python ints."""
    return np.array([(2**(bits + 1) * int(x) + Q) // (2 * Q) % 2**bits for x in np.ravel(c)],
                    dtype=object).reshape(np.shape(c))


def switch_up(z, bits):
    """round(q z / 2^d) mod q, ties up."""
    return np.array([(Q * int(x) + 2**(bits - 1)) // 2**bits % Q for x in np.ravel(z)],
                    dtype=object).reshape(np.shape(z))


def test_rounding_variance_is_q_over_2_to_the_d_squared_over_12_per_component():
    assert modswitch.rounding_variance(TOY, 12, None) == (Q / 2**12)**2 / 12
    assert modswitch.rounding_variance(TOY, 12, 20) == pytest.approx(
        (Q / 2**12)**2 / 12 + N * (Q / 2**20)**2 / 12, rel=1e-14)
    assert modswitch.rounding_variance(TOY, 12, 20, secret_norm2=5) == pytest.approx(
        (Q / 2**12)**2 / 12 + 5 * (Q / 2**20)**2 / 12, rel=1e-14)


def test_compress_and_decompress_round_each_component_and_record_it():
    secret, m, full, seeded = _toy_forms(51)
    for bits0, bits1 in ((24, 31), (40, 62)):
        packed = modswitch.compress(full, bits0, bits1, secret_norm2=7)
        assert np.array_equal(packed.z0.astype(object), switch_down(crt(full.c0), bits0))
        assert np.array_equal(packed.z1.astype(object), switch_down(crt(full.c1), bits1))
        assert packed.z0.dtype == np.uint64 and packed.key_id == full.key_id
        extra = (Q / 2**bits0)**2 / 12 + 7 * (Q / 2**bits1)**2 / 12
        expected = (math.sqrt(full.noise.variance) + math.sqrt(extra))**2
        assert packed.noise.variance == pytest.approx(expected, rel=1e-12)
        assert noise_fields(packed.noise)[1:] == noise_fields(full.noise)[1:]
        back = modswitch.decompress(packed, secret_norm2=7)
        assert np.array_equal(crt(back.c0), switch_up(packed.z0, bits0))
        assert np.array_equal(crt(back.c1), switch_up(packed.z1, bits1))
        assert back.noise.variance == pytest.approx(
            (math.sqrt(expected) + math.sqrt(extra))**2, rel=1e-12)
        assert back.key_id == full.key_id and back.seed is None
        assert np.array_equal(bfv.decrypt(secret, back), m)
    packed = modswitch.compress(seeded, 25, 8)
    assert packed.z1 is None and packed.bits1 is None and packed.seed == seeded.seed
    assert packed.key_id == seeded.key_id
    assert np.array_equal(packed.z0.astype(object), switch_down(crt(seeded.c0), 25))
    extra = (Q / 2**25)**2 / 12
    expected = (math.sqrt(seeded.noise.variance) + math.sqrt(extra))**2
    assert packed.noise.variance == pytest.approx(expected, rel=1e-12)
    back = modswitch.decompress(packed)
    assert back.seed == seeded.seed and back.key_id == seeded.key_id
    assert np.array_equal(back.c1, seeded.c1)
    assert back.noise.variance == pytest.approx((math.sqrt(expected) + math.sqrt(extra))**2,
                                                rel=1e-12)
    assert np.array_equal(bfv.decrypt(secret, back), m)
    for bits, message in (((0, 8), '>= 1, got 0'), ((8, 0), '>= 1, got 0'),
                          ((63, 8), '<= 62, got 63'), ((8, 63), '<= 62, got 63')):
        with pytest.raises(ValueError, match=f'^compressed width must be {message}$'):
            modswitch.compress(full, *bits)
    assert modswitch.compress(full, 1, 62).bits0 == 1


def test_compressed_sums_and_scales_are_modulo_2_to_the_d():
    secret, public = toy_keys(52)
    ma, mb = plaintext(52, bound=100), plaintext(53, bound=100)
    ca = modswitch.compress(bfv.encrypt(public, ma), 24, 32)
    cb = modswitch.compress(bfv.encrypt(public, mb), 24, 32)
    total = ca + cb
    assert np.array_equal(total.z0.astype(object), (ca.z0.astype(object) + cb.z0) % 2**24)
    assert np.array_equal(total.z1.astype(object), (ca.z1.astype(object) + cb.z1) % 2**32)
    assert (total.bits0, total.bits1, total.key_id) == (24, 32, ca.key_id)
    assert noise_fields(total.noise) == noise_fields(ca.noise + cb.noise)
    assert np.array_equal(bfv.decrypt(secret, modswitch.decompress(total)), ma + mb)
    scaled = ca.scale(-3)
    assert np.array_equal(scaled.z0.astype(object), ca.z0.astype(object) * -3 % 2**24)
    assert np.array_equal(scaled.z1.astype(object), ca.z1.astype(object) * -3 % 2**32)
    v, r, plain, ancestors = noise_fields(ca.noise)
    assert noise_fields(scaled.noise) == (9 * v, 3 * r, 3 * plain, ancestors)
    assert (scaled.bits0, scaled.bits1, scaled.key_id) == (24, 32, ca.key_id)
    assert np.array_equal(bfv.decrypt(secret, modswitch.decompress(scaled)), -3 * ma)
    _, other = toy_keys(54)
    seeded = modswitch.compress(bfv.encrypt_symmetric(secret, ma), 24, 32)
    refused = [modswitch.compress(bfv.encrypt(public, ma), 25, 32),
               modswitch.compress(bfv.encrypt(public, ma), 24, 33),
               modswitch.compress(bfv.encrypt(public, ma[:1]), 24, 32),
               modswitch.compress(bfv.encrypt(other, ma), 24, 32), ca.z0]
    for bad in refused:
        with pytest.raises(ValueError, match='^compressed ciphertexts differ in parameters, key, '
                                             'widths or shape$'):
            ca + bad  # pylint: disable=pointless-statement
    wide = modswitch.CompressedCiphertext(TOY.with_plain_modulus(T + 1), ca.z0, 24, ca.noise,
                                          ca.z1, 32, key_id=ca.key_id)
    with pytest.raises(ValueError, match='differ in parameters'):
        ca + wide  # pylint: disable=pointless-statement
    no_c1 = dataclasses.replace(ca, z1=None, seed=seeded.seed)  # same widths, c1 as a seed
    for left, right in ((ca, no_c1), (no_c1, ca)):
        with pytest.raises(ValueError, match='seeded ciphertexts have different c1 and cannot be '
                                             'added compressed: decompress them first'):
            left + right  # pylint: disable=pointless-statement
    with pytest.raises(ValueError, match='^cannot scale a seeded ciphertext compressed: '
                                         'decompress it first$'):
        seeded.scale(2)
    with pytest.raises(TypeError, match='^scalar must be an int, got float 0.5$'):
        ca.scale(0.5)


def _budget(fresh, bits0, terms, scalar, norm2=N):
    """budget_bits of a weighted sum of `terms` compressed fresh ciphertexts, by hand."""
    extra = (Q / 2.0**bits0)**2 / 12 + norm2 * (Q / 2.0**(bits0 + 8))**2 / 12
    one = (math.sqrt(fresh.variance) + math.sqrt(extra))**2
    total = (math.sqrt(one * scalar**2 * terms) + math.sqrt(extra))**2
    bound = 9 * math.sqrt(total) + fresh.rounding * scalar * terms
    return math.log2(Q / (2 * T)) - math.log2(max(bound, 1.0))


@pytest.mark.parametrize('fresh, terms, scalar, reserve, norm2', [
    ('fresh', 1, 1, 0.0, None), ('fresh', 1000, 7, 2.0, None), ('fresh', 3, 1, 19.0, None),
    ('fresh', 3, 1, 27.5, None), ('fresh', 3, 1, 28.0, None), ('zero', 1, 1, 28.0, None),
    ('zero', 1, 1, 30.0, None), ('zero', 1, 1, 35.0, None), ('zero', 1, 1, 20.0, 2**16 * N),
    ('zero', 1, 7, 3.0, None), ('rounding', 1024, 1, 10.0, None), ('rounding', 1024, 1, 5.0, None)])
def test_choose_widths_is_the_smallest_byte_aligned_width_with_the_budget(fresh, terms, scalar,
                                                                          reserve, norm2):
    """Candidates 8, 16, ..., 48 and 54 (= 62 - 8); 'zero' (no fresh noise) reaches 54;
    'rounding' has a large deterministic part, which grows with the number of terms."""
    fresh = {'fresh': bfv.fresh_noise(TOY, 10), 'zero': bfv.Noise(0.0, 0.0, 0),
             'rounding': bfv.Noise(0.0, 2.0**20, 0)}[fresh]
    candidates = [8, 16, 24, 32, 40, 48, 54]
    good = [b for b in candidates
            if _budget(fresh, b, terms, scalar, N if norm2 is None else norm2) >= reserve]
    if not good:
        with pytest.raises(ValueError, match=rf'no compressed width up to 62 bits leaves '
                                             rf'{reserve} bits of noise budget for {terms} '
                                             rf'terms with scalars up to {scalar}'):
            modswitch.choose_widths(TOY, fresh, terms, scalar, reserve, norm2)
        return
    assert modswitch.choose_widths(TOY, fresh, terms, scalar, reserve, norm2) == (good[0],
                                                                                  good[0] + 8)


# --- ntt: evaluation at the roots of x^n + 1; rns: the ring and exact scaling -----------

NTT_CASES = [(4, rp.ntt_primes(4, 2)), (16, rp.ntt_primes(16, 3)), (64, PRIMES)]


def test_ntt_root_search_over_small_primes():
    """psi^n = -1 mod p (so psi has order exactly 2n) for small primes p = 1 mod 2n: the
    search ends in a few steps, so a broken search fails here at once (mutmut runs a mutant's
    fastest test first) instead of scanning 2^27 candidates in the other tests."""
    for n, p in ((4, 17), (4, 41), (16, 97), (2, 5)):
        assert pow(_primitive_root_2n(p, n), n, p) == p - 1
    with pytest.raises(ValueError, match='^no primitive 8-th root of unity mod 7$'):
        _primitive_root_2n(7, 4)


@pytest.mark.parametrize('n, primes', NTT_CASES)
def test_ntt_evaluates_at_the_n_roots_of_x_to_the_n_plus_1(n, primes):
    """forward(X) holds n distinct v with v^n = -1 mod p: all the roots of x^n + 1 (a
    degree-n polynomial has no more); forward(a)[k] = a(v_k) for any a."""
    ntt, num = Ntt(n, primes), len(primes)
    x = np.zeros((num, 1, n), dtype=np.int64)
    x[:, 0, 1] = 1
    roots = ntt.forward(x)[:, 0]
    rng = np.random.default_rng(n)
    a = np.stack([rng.integers(0, p, (3, n)) for p in primes])
    a[0, 0] = primes[0] - 1
    out = ntt.forward(a)
    assert out.dtype == np.uint64
    for row, p in enumerate(primes):
        vs = [int(v) for v in roots[row]]
        assert len(set(vs)) == n and all(pow(v, n, p) == p - 1 for v in vs)
        for k in range(3):
            expected = [sum(int(c) * pow(v, j, p) for j, c in enumerate(a[row, k])) % p
                        for v in vs]
            assert [int(v) for v in out[row, k]] == expected
    lazy = ntt.forward(a, reduce=False)
    assert lazy.max() < (2 * (n.bit_length() - 1) + 1) * max(primes)
    assert np.array_equal(lazy % ntt.p, out)
    assert np.array_equal(ntt.inverse(out), a) and np.array_equal(ntt.inverse(lazy % ntt.p), a)
    shifted = out + ntt.p  # inverse accepts [0, 2p)
    assert np.array_equal(ntt.inverse(shifted), a)
    assert ntt.inverse(shifted).dtype == np.uint64


def test_ntt_blocks_and_shape_checks():
    n, primes = 1024, rp.ntt_primes(1024, 1)
    ntt, p = Ntt(n, primes), primes[0]
    rng = np.random.default_rng(61)
    a = rng.integers(0, p, (1, 130, n))  # more than one block of 2^17 coefficients
    out = ntt.forward(a)
    for k in (0, 127, 128, 129):
        assert np.array_equal(out[:, k:k + 1], ntt.forward(a[:, k:k + 1]))
    assert np.array_equal(ntt.inverse(out), a)
    toy = Ntt(N, PRIMES)  # batch 2100 > n = 64, and more than one block of 2048 polynomials
    many = np.stack([rng.integers(0, p, (2100, N)) for p in PRIMES])
    forward = toy.forward(many)
    assert np.array_equal(forward[:, 2047:2050], toy.forward(many[:, 2047:2050]))
    assert np.array_equal(toy.inverse(forward), many)
    for bad in (np.zeros((1, n)), np.zeros((2, 1, n)), np.zeros((1, 1, n // 2))):
        with pytest.raises(ValueError, match=rf'expected residues of shape \(1, batch, {n}\), '
                                             rf'got {re_shape(bad.shape)}'):
            ntt.forward(bad)
        with pytest.raises(ValueError, match='expected residues of shape'):
            ntt.inverse(bad)
    with pytest.raises(ValueError, match='no primitive 8-th root of unity mod 7'):
        Ntt(4, (7,))


def re_shape(shape):
    return str(shape).replace('(', r'\(').replace(')', r'\)')


def test_shoup_product_is_a_w_mod_p_below_2p():
    p = np.array([PRIMES[0]], dtype=np.uint64)
    rng = np.random.default_rng(62)
    w = rng.integers(0, PRIMES[0], 500).astype(np.uint64)
    w[:2] = [0, PRIMES[0] - 1]
    a = rng.integers(0, 2**32, 500).astype(np.uint64)
    a[:4] = [0, 2**32 - 1, 2**32 - 1, 1]
    companion = shoup_companion(w, p)
    assert [int(c) for c in companion] == [(int(v) << 32) // PRIMES[0] for v in w]
    out = shoup_mul(a, w, companion, p, np.empty_like(a), np.empty_like(a))
    assert all(int(r) < 2 * PRIMES[0] and int(r) % PRIMES[0] == int(x) * int(v) % PRIMES[0]
               for r, x, v in zip(out, a, w))



@pytest.mark.parametrize('params', [TOY, THREE], ids=['toy', 'three_primes'])
def test_ring_arithmetic_is_python_int_arithmetic_mod_q(params):
    ring, primes, q, n = Ring(params), params.primes, params.q, params.n
    rng = np.random.default_rng(63)
    x = np.array([int(v) for v in rng.integers(0, 2**62, 2 * n)], dtype=object) * 2**40 % q
    y = np.array([int(v) for v in rng.integers(0, 2**62, 2 * n)], dtype=object) * 2**40 % q
    x[:3], y[:3] = [0, q - 1, 0], [0, q - 1, q - 1]
    x, y = x.reshape(2, n), y.reshape(2, n)
    rx, ry = to_residues(x, primes), to_residues(y, primes)
    small = rng.integers(-40, 41, (2, n))
    small[0, :2] = [-40, 40]
    assert np.array_equal(crt(ring.from_signed(small), primes), small.astype(object) % q)
    assert np.array_equal(crt(ring.add(rx, ry), primes), (x + y) % q)
    assert np.array_equal(crt(ring.sub(rx, ry), primes), (x - y) % q)
    assert np.array_equal(crt(ring.add_small(rx, small), primes), (x + small) % q)
    assert np.array_equal(crt(ring.neg(rx), primes), (-x) % q)
    assert ring.neg(rx)[:, 0, 0].tolist() == [0] * len(primes)
    for scalar in (-7, 2**80 + 5, 0):
        assert np.array_equal(crt(ring.mul_scalar(rx, scalar), primes), x * scalar % q)
    product = crt(ring.mul(rx, ry), primes)
    fixed = ring.fixed(ry)
    for row in range(2):
        expected = list(negacyclic(x[row], y[row], q))
        assert list(product[row]) == expected
        assert list(crt(fixed.times(rx), primes)[row]) == expected
    broadcast = crt(fixed.times(rx[:, :1]), primes)  # one polynomial times the fixed batch
    for row in range(2):
        assert list(broadcast[row]) == list(negacyclic(x[0], y[row], q))
    assert np.array_equal(ring.from_ntt(ring.to_ntt(rx)), rx)
    assert ring.to_ntt(rx).dtype == np.int64 and ring.add(rx, ry).dtype == np.int64


SCALE_TARGETS = [2, 3, 2**16, 12289, 2**31 - 1, 2**31, 2**40, 2**62]


@pytest.mark.parametrize('params', [TOY, THREE], ids=['toy', 'three_primes'])
def test_scale_round_and_lift_are_exact_roundings(params):
    """scale_round(x, T) = round(T x / q) mod T (q odd: no ties; random x stay away from
    the 2^-20 float margin of the rns doc) and lift(z, T) = round(q z / T) mod p_i, ties up."""
    ring, primes, q, n = Ring(params), params.primes, params.q, params.n
    rng = np.random.default_rng(64)
    x = np.array([int(v) for v in rng.integers(0, 2**62, 3 * n)], dtype=object) * 2**40 % q
    x[:2] = [0, 1]
    x = x.reshape(3, n)
    rx = to_residues(x, primes)
    for target in SCALE_TARGETS:
        expected = np.array([(2 * target * int(v) + q) // (2 * q) % target for v in x.ravel()],
                            dtype=object).reshape(3, n)
        assert np.array_equal(ring.scale_round(rx, target).astype(object), expected)
        assert np.array_equal(ring.scale_round(rx[:, 0], target).astype(object), expected[0])
        z = np.array([int(v) % target for v in rng.integers(0, 2**62, 2 * n)], dtype=object)
        z[:2] = [0, target - 1]
        if target % 2 == 0:
            z[2] = target // 2
        lifted = ring.lift(z.astype(np.uint64).reshape(2, n), target)
        expected = np.array([(q * int(v) + target // 2) // target % q for v in z],
                            dtype=object).reshape(2, n)
        assert lifted.shape == (len(primes), 2, n)
        assert np.array_equal(crt(lifted, primes), expected)
    for bad in (0, 1, 2**63, 2**31 + 1, 3 * 2**31):
        with pytest.raises(ValueError, match=rf'target modulus must be a power of two <= 2\^62 '
                                             rf'or below 2\^31, got {bad}'):
            ring.scale_round(rx, bad)
        with pytest.raises(ValueError, match=rf'^target modulus must be a power of two <= 2\^62 '
                                             rf'or below 2\^31, got {bad}$'):
            ring.lift(np.zeros((1, n), dtype=np.uint64), bad)


def test_add_plain_to_an_empty_batch_adds_no_plaintext_bound():
    _, public = toy_keys(36)
    empty = bfv.encrypt(public, np.zeros((0, N), dtype=np.int64))
    out = bfv.add_plain(empty, np.zeros((0, N), dtype=np.int64))
    assert noise_fields(out.noise)[1:3] == (1.0, 0)


def test_an_odd_plaintext_modulus_allows_t_minus_1_over_2_exactly():
    """t = 12289 (odd): (t - 1)/2 = 6144 is a valid plaintext, decrypts positive, and passes
    the guard; 6145 is refused."""
    secret, public = keys.keygen(THREE, RandomSource(seed=37))
    top = (THREE.t - 1) // 2
    m = np.full((1, THREE.n), top, dtype=np.int64)
    m[0, 1::2] = -top
    ct = bfv.encrypt(public, m)
    assert ct.noise.plain == top
    assert np.array_equal(bfv.decrypt(secret, ct), m)
    with pytest.raises(ValueError, match=f'got magnitude {top + 1}'):
        bfv.encrypt(public, m + 1)
    bfv.Noise(0.0, 0.5, top).check(THREE)
    with pytest.raises(PlaintextOverflowError):
        bfv.Noise(0.0, 0.5, top + 1).check(THREE)


def test_loads_bounds_the_plaintext_by_t_minus_1_over_2_for_an_odd_t():
    secret, public = keys.keygen(THREE, RandomSource(seed=45))
    m = np.full((1, THREE.n), -6144, dtype=np.int64)
    back = serialize.loads(serialize.dumps(bfv.encrypt(public, m)), THREE)
    assert back.noise.plain == 6144
    assert np.array_equal(bfv.decrypt(secret, back), m)


def test_choose_widths_defaults_and_an_exact_tie():
    """Defaults: scalar 1, reserve 0 bits; a budget exactly equal to the reserve is enough."""
    for terms in (1, 1000, 1500):  # 1000, 1500: a budget in [0, 1) bits at width 24
        fresh = bfv.Noise(float(terms), 0.5, 0)
        good = [b for b in (8, 16, 24, 32, 40, 48, 54) if _budget(fresh, b, terms, 1) >= 0.0]
        assert modswitch.choose_widths(TOY, fresh, terms) == (good[0], good[0] + 8)
    zero = bfv.Noise(0.0, 0.0, 0)
    tie = _budget(zero, 32, 1, 1)
    assert modswitch.choose_widths(TOY, zero, 1, 1, tie) == (32, 40)
    assert modswitch.choose_widths(TOY, zero, 1, 1, math.nextafter(tie, 99.0)) == (40, 48)


# --- params: RNS primes, the checks of Params, the fingerprint, the presets --------------

def trial_prime(x):
    return x > 1 and all(x % d for d in range(2, math.isqrt(x) + 1))


# n = 4: the lazy NTT needs 5 p < 2^32; the primes = 1 mod 8 on either side of that bound
LAZY_LARGEST = next(p for p in range((2**32 - 1) // 5, 0, -1) if p % 8 == 1 and trial_prime(p))
LAZY_TOO_LARGE = next(p for p in range((2**32 - 1) // 5 + 1, 2**32) if p % 8 == 1
                      and trial_prime(p))


@pytest.mark.parametrize('n, count, bits', [(1024, 3, 27), (64, 2, 27), (4, 5, 12), (16, 1, 20)])
def test_ntt_primes_are_the_largest_primes_1_mod_2n_below_2_to_the_bits(n, count, bits):
    expected, candidate = [], 2**bits - 1
    while len(expected) < count:
        if candidate % (2 * n) == 1 and trial_prime(candidate):
            expected.append(candidate)
        candidate -= 1
    assert rp.ntt_primes(n, count, bits) == tuple(expected)
    assert rp.ntt_primes(n, count) == rp.ntt_primes(n, count, 27)


def test_ntt_primes_says_how_many_exist():
    found = [p for p in range(2, 2**8) if p % 8 == 1 and trial_prime(p)]  # 17, 41, ..., 241
    with pytest.raises(ValueError, match=rf'^only {len(found)} primes below 2\^8 are 1 mod 8, '
                                         r'100 requested$'):
        rp.ntt_primes(4, 100, 8)
    assert rp.ntt_primes(4, len(found), 8) == tuple(reversed(found))
    assert rp.ntt_primes(8, 1, 5) == (17,)  # 17 = 1 mod 16 is the only one below 32
    with pytest.raises(ValueError, match='^only 0 primes below'):
        rp.ntt_primes(16, 1, 5)


def test_params_checks_name_the_bad_value():
    primes = rp.ntt_primes(64, 2)
    cases = [
        (dict(n=48, primes=primes), r'^n must be a power of two >= 4, got 48$'),
        (dict(n=2, primes=(5,)), r'^n must be a power of two >= 4, got 2$'),
        (dict(n=64, primes=()), r'^primes must be a non-empty tuple of distinct primes, got \(\)$'),
        (dict(n=64, primes=(primes[0], primes[0])), 'non-empty tuple of distinct primes'),
        (dict(n=64, primes=(primes[0] + 128,)), r'^every RNS prime must be a prime = 1 mod '
                                                 rf'2n = 128, got {primes[0] + 128}$'),
        (dict(n=64, primes=(131,)), 'got 131$'),  # a prime, but 131 = 3 mod 128
        (dict(n=64, primes=(float(primes[0]),)), 'every RNS prime'),
        (dict(n=4, primes=(LAZY_TOO_LARGE,)), rf'^RNS prime {LAZY_TOO_LARGE} too large for the '
                                              r'lazy NTT: need \(2 log2 n \+ 1\) p < 2\^32, '
                                              r'i.e. p < 2\^27 for n <= 16384$'),
        (dict(n=64, primes=primes, t=1), 'plaintext modulus t must be >= 2, got 1'),
        (dict(n=64, primes=primes, t=2**31), r'plaintext modulus t must be <= 2147483647'),
        (dict(n=64, primes=primes, t=primes[1] * 3),
         rf'^plaintext modulus t = {primes[1] * 3} must be coprime to q$'),
        (dict(n=64, primes=primes, t=16, sigma=0.0), r'^sigma must be positive, got 0.0$'),
        (dict(n=64, primes=primes, t=16, sigma=float('nan')), r'^sigma must be positive, got nan$'),
        (dict(n=64, primes=primes, t=16, sigma=float('inf')), r'^sigma must be positive, got inf$'),
    ]
    for kwargs, message in cases:
        kwargs.setdefault('t', 16)
        with pytest.raises((ValueError, TypeError), match=message):
            rp.Params(insecure=True, **kwargs)
    with pytest.raises(TypeError, match='^n must be an int'):
        rp.Params(64.0, primes, 16, insecure=True)
    assert rp.Params(4, (17,), 2, insecure=True).t == 2
    assert rp.Params(64, primes, 2**31 - 1, insecure=True).t == 2**31 - 1
    assert rp.Params(64, primes, 16, sigma=1e-3, insecure=True).sigma == 1e-3
    assert rp.Params(4, (LAZY_LARGEST,), 2, insecure=True).primes == (LAZY_LARGEST,)


def test_security_bounds_are_the_he_standard_rows():
    bounds = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
    for n, bits in bounds.items():
        rp.check_security(n, 2**bits, 3.2)
        with pytest.raises(rp.InsecureParametersError,
                           match=rf'^log2 q = {bits + 0.0:.1f} exceeds {bits}, the 128-bit HE '
                                 rf'Standard bound for n = {n}: use fewer primes or a larger n$'):
            rp.check_security(n, 2**bits + 2**(bits - 8), 3.2)
    rp.check_security(1024, 2**27, 3.2 - 0.01)  # the tolerance is 0.01, its edge included
    with pytest.raises(rp.InsecureParametersError, match=r'^sigma = 3.189 is below the standard '
                                                         r'3.2$'):
        rp.check_security(1024, 2**27, 3.189)
    with pytest.raises(rp.InsecureParametersError,
                       match=r'^n = 512 is not in the HE Standard 128-bit table \(n in \[1024, '
                             r'2048, 4096, 8192, 16384, 32768\]\); pass insecure=True only for '
                             r'teaching$'):
        rp.check_security(512, 2**10, 3.2)
    with pytest.raises(rp.InsecureParametersError, match='exceeds 27'):
        rp.Params(1024, rp.ntt_primes(1024, 2), 16)
    assert rp.Params(1024, rp.ntt_primes(1024, 1), 16).name == 'custom'


def test_fingerprint_is_sha256_of_the_canonical_encoding():
    blob = struct.pack('<IdI?', N, TOY.sigma, T, True) + struct.pack('<2Q', *PRIMES)
    assert TOY.fingerprint() == hashlib.sha256(b'tfpriv-rlwe-params' + blob).digest()[:16]
    assert TOY.with_plain_modulus(T + 1) == rp.Params(N, PRIMES, T + 1, insecure=True,
                                                      name='toy')


def test_presets_are_the_table_and_toy_needs_insecure():
    table = {'n1024': (1024, 1, 2**10), 'n2048': (2048, 2, 2**24), 'n4096': (4096, 4, 2**30),
             'n8192': (8192, 8, 2**30), 'n16384': (16384, 16, 2**30)}
    for name, (n, count, t) in table.items():
        params = rp.preset(name)
        assert (params.n, len(params.primes), params.t, params.name) == (n, count, t, name)
        assert params.primes == rp.ntt_primes(n, count) and not params.insecure
        assert params.sigma == 3.2
        assert rp.preset(name, t=2**12 + 1).t == 2**12 + 1
    toy = rp.preset('toy', insecure=True)
    assert (toy.n, toy.primes, toy.t, toy.insecure, toy.name) == (64, rp.ntt_primes(64, 2),
                                                                  2**16, True, 'toy')
    assert rp.preset('toy', t=257, insecure=True).t == 257
    with pytest.raises(rp.InsecureParametersError,
                       match=r"^the 'toy' preset \(n = 64\) is insecure: pass insecure=True to "
                             r"use it for teaching$"):
        rp.preset('toy')
    with pytest.raises(ValueError, match=r"^unknown preset 'n999'; choose one of \['n1024', "
                                         r"'n16384', 'n2048', 'n4096', 'n8192', 'toy'\]$"):
        rp.preset('n999')


# --- encoding: fixed point, centred, one value per coefficient ------------------------------

def test_encoder_packs_round_x_2_to_the_f_centred_one_value_per_coefficient():
    encoder, top = Encoder(TOY, 8), HALF_T / 256  # 32767 / 2^8, the largest value
    values = np.random.default_rng(71).uniform(-100, 100, 2 * N - 5)
    values[:4] = [top, -top, 1 / 256, -1 / 256]
    plain = encoder.encode(values)
    expected = np.zeros(2 * N, dtype=np.int64)
    expected[:values.size] = [round(v * 256) for v in values]
    assert plain.dtype == np.int64 and np.array_equal(plain, expected.reshape(2, N))
    assert plain[0, 0] == HALF_T and plain[0, 1] == -HALF_T
    assert np.array_equal(encoder.decode(plain, values.size), expected[:values.size] / 256)
    assert np.array_equal(encoder.decode(plain, 3, scale=4.0), expected[:3] / 1024)
    assert np.array_equal(encoder.decode(plain % T, 3), expected[:3] / 256)  # residues too
    assert encoder.encode(np.zeros(0)).shape == (0, N)
    assert [encoder.batch_size(k) for k in (0, 1, N, N + 1)] == [0, 1, 1, 2]
    with pytest.raises(ValueError, match=rf'^plaintext holds {2 * N} values, {2 * N + 1} '
                                         'requested$'):
        encoder.decode(plain, 2 * N + 1)
    with pytest.raises(ValueError, match=r'^expected a flat vector, got shape \(2, 2\) '
                                         r'\(flatten first\)$'):
        encoder.encode(np.zeros((2, 2)))
    for bad, dtype in ((np.array(['a']), '<U1'), (np.array([1j]), 'complex128')):
        with pytest.raises(TypeError, match=rf'^expected real numbers, got dtype {dtype}$'):
            encoder.encode(bad)
    assert np.array_equal(encoder.encode(np.array([3], dtype=np.int32))[0, :2], [768, 0])
