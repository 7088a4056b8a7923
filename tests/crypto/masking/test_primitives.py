"""Key agreement, mask expansion, share encryption and Shamir sharing of 32-byte secrets."""

import itertools

import numpy as np
import pytest

from tfpriv.crypto.masking import primitives
from tfpriv.errors import DecodingError
from tfpriv.rng import RandomSource


def test_secrets_rebuild_from_any_t_shares_and_not_from_fewer():
    rng = RandomSource(seed=0)
    secrets = [rng.bytes(32), rng.bytes(32)]
    holders = [2, 5, 7, 9, 11]
    blobs = primitives.split_secrets(secrets, holders, 3, rng)
    assert all(len(b) == 2 * primitives.SHARE_BYTES for b in blobs)
    for chosen in itertools.combinations(range(5), 3):
        for index, secret in enumerate(secrets):
            shares = [blobs[i][index * 64:(index + 1) * 64] for i in chosen]
            assert primitives.reconstruct_secret([holders[i] for i in chosen], shares) == secret
    two = [blobs[i][:64] for i in (0, 1)]
    with pytest.raises(DecodingError):  # a degree-2 polynomial through 2 points: limbs >= 2^16
        primitives.reconstruct_secret(holders[:2], two)


def test_t_minus_1_shares_are_uniform_whatever_the_secret():
    """Shamir's privacy: one share of a 2-of-n sharing is uniform in GF(p) for any secret.

    8,192 limb shares of an all-zero secret: their top byte (bits 23..30) is
    uniform over 256 values; chi-square with 255 degrees of freedom, two-sided
    at its 1e-6 and 1 - 1e-6 quantiles (161.7 and 377.1, scipy.stats.chi2).
    """
    from scipy import stats
    rng = RandomSource(seed=1)
    limbs = np.concatenate([np.frombuffer(primitives.split_secrets([bytes(32)], [0, 1], 2, rng)[0],
                                          dtype='<u4') for _ in range(512)])
    counts = np.bincount((limbs >> 23).astype(np.int64), minlength=256)
    statistic = (((counts - limbs.size / 256)**2) / (limbs.size / 256)).sum()
    assert stats.chi2.ppf(1e-6, 255) < statistic < stats.chi2.ppf(1 - 1e-6, 255)


def test_tampered_or_rerouted_share_fails_authentication():
    rng = RandomSource(seed=2)
    key = primitives.agree(primitives.private_key(rng),
                           primitives.public_bytes(primitives.private_key(rng)),
                           primitives.SHARE_LABEL)
    ciphertext = primitives.seal(key, 1, 2, b'share')
    assert primitives.unseal(key, 1, 2, ciphertext) == b'share'
    flipped = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    for sender, recipient, data in ((1, 2, flipped), (1, 3, ciphertext), (2, 1, ciphertext)):
        with pytest.raises(DecodingError, match='authentication'):
            primitives.unseal(key, sender, recipient, data)


def test_labels_separate_mask_seeds_from_share_keys():
    rng = RandomSource(seed=3)
    a, b = primitives.private_key(rng), primitives.private_key(rng)
    mask = primitives.agree(a, primitives.public_bytes(b), primitives.MASK_LABEL)
    assert mask == primitives.agree(b, primitives.public_bytes(a), primitives.MASK_LABEL)
    assert mask != primitives.agree(a, primitives.public_bytes(b), primitives.SHARE_LABEL)


def aes_ctr(key, nbytes):
    """AES-CTR (AES-128 or -256 by the key's length) with a zero IV straight from `cryptography`."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    return Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(nbytes))


def keystream(seed, nbytes):
    """The reference mask PRG(seed): AES-128-CTR keyed by the seed's first 16 bytes, zero IV."""
    return aes_ctr(seed[:16], nbytes)


def test_mask_stream_is_aes_128_keyed_by_the_first_16_seed_bytes():
    """Two seeds that differ only after byte 16 give the same mask; a change in the first 16
    bytes changes it; and the mask is not the AES-256 stream of the whole seed."""
    size = 1000
    seed = bytes(range(32))
    tail_changed = seed[:16] + bytes(16)
    one = primitives.add_masks(np.zeros(size, np.uint32), [seed], [1])
    assert one.tobytes() == keystream(seed, 4 * size)
    assert np.array_equal(one, primitives.add_masks(np.zeros(size, np.uint32), [tail_changed], [1]))
    assert one.tobytes() != aes_ctr(seed, 4 * size)


@pytest.mark.parametrize('dtype', [np.uint32, np.uint64])
def test_add_masks_adds_the_keystreams_across_blocks(dtype):
    """300,000 words span several blocks; the sum must equal the contiguous streams' sum."""
    size, seeds = 300_001, [b'\x01' * 32, b'\x02' * 32, b'\x03' * 32]
    start = np.arange(size, dtype=dtype)
    out = primitives.add_masks(start.copy(), seeds, [1, -1, 1])
    words = [np.frombuffer(keystream(s, size * np.dtype(dtype).itemsize), dtype=dtype)
             for s in seeds]
    np.testing.assert_array_equal(out, start + words[0] - words[1] + words[2])
    back = primitives.add_masks(out, seeds, [-1, 1, -1])
    np.testing.assert_array_equal(back, start)


@pytest.mark.parametrize('top_limb, ok', [(2**16 - 1, True), (2**16, False), (2**17, False)])
def test_reconstruct_secret_refuses_exactly_the_limbs_from_2_to_the_16(top_limb, ok):
    """Shares of 16 limbs (the top one chosen here) made with shamir.field directly, at
    x = holder + 1: a limb in [0, 2^16) decodes, 2^16 and above is a DecodingError."""
    from tfpriv.crypto.shamir import field
    limbs = np.array([top_limb] + [7] * 15, dtype=np.int64)
    rows = field.split_field(limbs, 2, 3, primitives.PRIME, RandomSource(seed=50))
    shares = [row.astype('<u4').tobytes() for row in rows]
    if ok:
        secret = primitives.reconstruct_secret([0, 2], [shares[0], shares[2]])
        assert np.array_equal(np.frombuffer(secret, dtype='<u2'), limbs)
    else:
        with pytest.raises(DecodingError, match='do not reconstruct'):
            primitives.reconstruct_secret([0, 2], [shares[0], shares[2]])


@pytest.mark.parametrize('rounding', ['deterministic', 'stochastic'])
def test_add_masks_with_fill_is_the_encoding_plus_the_keystreams(rounding):
    """The client's fused path (encode each block, then add its masks) equals encoding the
    whole vector and adding the reference keystreams; 200,001 values span several blocks of
    both the mask loop and the encoder, so a block written at the wrong offset, a keystream
    or rounding draw out of order, or a skipped tail block changes the result."""
    from tfpriv.crypto.masking import Quantizer
    from tfpriv.rng import Prg
    size, seeds = 200_001, [b'\x04' * 32, b'\x05' * 32]
    update = np.random.default_rng(3).uniform(-1.0, 1.0, size)
    quantizer = Quantizer(32, 16, 1.0, rounding)
    fused = primitives.add_masks(np.empty(size, np.uint32), seeds, [1, -1],
                                 fill=quantizer.encoder(update, 0.5, Prg(RandomSource(seed=4))))
    encoded = quantizer.encode(update, 0.5, Prg(RandomSource(seed=4)))
    words = [np.frombuffer(keystream(s, 4 * size), dtype=np.uint32) for s in seeds]
    np.testing.assert_array_equal(fused, encoded + words[0] - words[1])
    # The encoding itself against NumPy: R(0.5 x 2^16) within the rounding error, mod 2^32.
    lifted = encoded.view(np.int32).astype(np.float64)
    assert np.max(np.abs(lifted - 0.5 * update * 2**16)) <= quantizer.max_error_units


def test_prg_fill_writes_the_keystream_into_a_reused_buffer():
    """Prg.fill continues the AES-256-CTR stream (reference: `cryptography` directly) across
    calls on one buffer, and refuses a buffer without the 16 spare bytes OpenSSL needs."""
    from tfpriv.rng import Prg
    seed = b'\x06' * 32
    prg, buffer = Prg.from_seed(seed), np.empty(1000 + 16, dtype=np.uint8)
    first = prg.fill(buffer, 1000).tobytes()
    second = prg.fill(buffer, 600).tobytes()
    assert first + second == aes_ctr(seed, 1600)
    with pytest.raises(ValueError, match='at least 1016 bytes'):
        prg.fill(np.empty(1015, dtype=np.uint8), 1000)
