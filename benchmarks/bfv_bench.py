"""BFV encrypted aggregation: tfpriv (NumPy) side by side with TenSEAL BFV (SEAL).

    .venv/bin/python benchmarks/bfv_bench.py [--clients 10] [--weights 1000000] [--repeats 3]

Workload (issue 5): 10 clients x 1,000,000 float32 weights (N(0, 0.1) clipped
to [-1, 1]) at 128-bit security. Each client pre-scales its update by 1/N,
encodes it in fixed point, encrypts it and serializes the ciphertexts; the
server parses and adds them; the sum is decrypted and decoded. Printed per
library: key generation, encryption per client (encode + encrypt),
serialization per client, server parsing and addition of all clients,
decryption (+ decode), bytes sent per weight, the largest error against the
float64 average, and the ratios of tfpriv's totals to TenSEAL's: with the wire
(keygen + N (encryption + serialization) + parsing + addition + decryption)
and without it (no serialization or parsing). Also prints tfpriv's threshold
decryption of the same sum by N // 2 + 1 Shamir key-share holders.

tfpriv: preset 'bfv-4096' (n = 4096, q = 2^48, t = 2^27), public-key
encryption, c0 compressed to 37 bits. TenSEAL 0.3.18 (optional, benchmark
only): BFV n = 4096, default 109-bit modulus chain, plain modulus 1032193,
batched vectors of 4096 integers; skipped with a message when not installed.
The two libraries run alternately `--repeats` times and every time figure is
the best of its runs, so both see the same machine load: compare the ratios.
"""

import argparse
import functools
import operator
import time

import numpy as np
from absl import logging

from tfpriv.crypto.bfv import scheme, serialize, threshold
from tfpriv.crypto.bfv.encoding import Encoder
from tfpriv.crypto.bfv.params import preset
from tfpriv.crypto.fixed_point import FixedPoint

BOUND = 1.0
TENSEAL_PLAIN_MODULUS = 1032193


def clock(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run_tfpriv(updates):
    params = preset('bfv-4096')
    num = len(updates)
    t_keygen, (sk, pk) = clock(lambda: scheme.keygen(params))
    precision = FixedPoint(params.t, 0).largest_precision([BOUND / num] * num)
    encoder = Encoder(params, precision, BOUND / num)

    def client(update):
        plain = encoder.encode(update.astype(np.float64) / num)
        return scheme.compress(scheme.encrypt(pk, plain, None, encoder.units))

    t_enc, sent = clock(lambda: [client(u) for u in updates])
    t_ser, messages = clock(lambda: [serialize.to_bytes(ct) for ct in sent])
    t_parse, cts = clock(lambda: [serialize.from_bytes(m, params) for m in messages])

    def add_all():
        total = cts[0]
        for ct in cts[1:]:
            total = scheme.add(total, ct)
        return total

    t_add, total = clock(add_all)
    t_dec, average = clock(lambda: encoder.decode(scheme.decrypt(sk, total), updates[0].size))
    shares = threshold.share_key(sk, num // 2 + 1, num)
    xs = [share.x for share in shares[:num // 2 + 1]]
    t_partial, partials = clock(lambda: [threshold.partial_decrypt(share, total, xs)
                                         for share in shares[:len(xs)]])
    t_combine, plain = clock(lambda: threshold.combine(total, partials, len(xs)))
    assert np.array_equal(encoder.decode(plain, updates[0].size), average)
    return dict(keygen=t_keygen, enc=t_enc / num, ser=t_ser / num, parse=t_parse, add=t_add,
                dec=t_dec, bytes=np.mean([len(m) for m in messages]), average=average,
                partial=t_partial / len(xs), combine=t_combine, threshold=len(xs),
                smudging=threshold.smudging_bits(total, len(xs)))


def run_tenseal(updates):
    try:
        import tenseal as ts
    except ImportError:
        return None
    num, size, n = len(updates), updates[0].size, 4096
    scale = 2.0 ** int(np.floor(np.log2((TENSEAL_PLAIN_MODULUS // 2) / BOUND)))
    t_keygen, ctx = clock(lambda: ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=n,
                                             plain_modulus=TENSEAL_PLAIN_MODULUS))

    def client(update):
        ints = np.rint(update.astype(np.float64) / num * scale).astype(np.int64)
        return [ts.bfv_vector(ctx, ints[i:i + n].tolist()) for i in range(0, size, n)]

    t_enc, sent = clock(lambda: [client(u) for u in updates])
    t_ser, messages = clock(lambda: [[c.serialize() for c in cts] for cts in sent])
    t_parse, cts = clock(lambda: [[ts.bfv_vector_from(ctx, c) for c in m] for m in messages])

    t_add, total = clock(lambda: [functools.reduce(operator.add, column) for column in zip(*cts)])
    t_dec, ints = clock(lambda: np.concatenate([np.array(c.decrypt(), dtype=np.int64)
                                                for c in total]))
    average = ints[:size] / scale
    return dict(keygen=t_keygen, enc=t_enc / num, ser=t_ser / num, parse=t_parse, add=t_add,
                dec=t_dec, bytes=np.mean([sum(len(c) for c in m) for m in messages]),
                average=average)


def best(results):
    """Per-figure minimum over repeated runs (None when the library is absent)."""
    if results[0] is None:
        return None
    out = dict(results[-1])
    for key in ('keygen', 'enc', 'ser', 'parse', 'add', 'dec', 'partial', 'combine'):
        if key in out:
            out[key] = min(r[key] for r in results)
    return out


def total_seconds(r, num, wire=True):
    """keygen + N encryptions + addition + decryption (+ serialization and parsing)."""
    core = r['keygen'] + num * r['enc'] + r['add'] + r['dec']
    return core + (num * r['ser'] + r['parse'] if wire else 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clients', type=int, default=10)
    parser.add_argument('--weights', type=int, default=1_000_000)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    logging.set_verbosity(logging.ERROR)
    rng = np.random.default_rng(0)
    updates = [np.clip(rng.normal(0, 0.1, args.weights), -BOUND, BOUND).astype(np.float32)
               for _ in range(args.clients)]
    exact = np.mean([u.astype(np.float64) for u in updates], axis=0)
    runs = {'tfpriv': [], 'tenseal': []}
    for _ in range(args.repeats):  # alternate the libraries so both see the same load
        runs['tfpriv'].append(run_tfpriv(updates))
        runs['tenseal'].append(run_tenseal(updates))
    results = {name: best(r) for name, r in runs.items()}
    print(f'best of {args.repeats} alternating runs per figure')
    print(f'{args.clients} clients x {args.weights:,} float32 weights, 128-bit security')
    print(f'{"":8s} {"keygen s":>9s} {"enc s/client":>13s} {"ser s/client":>13s} '
          f'{"parse s":>8s} {"add s":>7s} {"dec s":>7s} {"total s":>8s} {"no-wire s":>10s} '
          f'{"bytes/weight":>13s} {"max error":>10s}')
    for name, r in results.items():
        if r is None:
            print(f'{name:8s} skipped: `import tenseal` failed (pip install tenseal==0.3.18)')
            continue
        error = np.max(np.abs(r['average'] - exact))
        print(f'{name:8s} {r["keygen"]:9.3f} {r["enc"]:13.3f} {r["ser"]:13.3f} '
              f'{r["parse"]:8.3f} {r["add"]:7.3f} {r["dec"]:7.3f} '
              f'{total_seconds(r, args.clients):8.2f} '
              f'{total_seconds(r, args.clients, wire=False):10.2f} '
              f'{r["bytes"] / args.weights:13.2f} {error:10.2e}')
    ours = results['tfpriv']
    print(f'tfpriv threshold decryption, {ours["threshold"]} of {args.clients} clients: '
          f'{ours["partial"]:.3f} s per partial decryption, combine {ours["combine"]:.3f} s, '
          f'smudging {ours["smudging"]:.1f} bits (same result as the single-key decryption)')
    if results['tenseal'] is not None:
        ours, theirs = results['tfpriv'], results['tenseal']
        num = args.clients
        wire = total_seconds(ours, num) / total_seconds(theirs, num)
        core = total_seconds(ours, num, False) / total_seconds(theirs, num, False)
        print(f'ratio tfpriv / TenSEAL: total {wire:.2f}x, without serialization {core:.2f}x, '
              f'encryption {ours["enc"] / theirs["enc"]:.2f}x, '
              f'addition {ours["add"] / theirs["add"]:.2f}x, '
              f'decryption {ours["dec"] / theirs["dec"]:.2f}x, '
              f'bytes {ours["bytes"] / theirs["bytes"]:.2f}x')


if __name__ == '__main__':
    main()
