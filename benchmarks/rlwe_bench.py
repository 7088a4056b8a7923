"""tfpriv BFV vs TenSEAL BFV: 10 clients x 1,000,000 float32 weights, in one run.

Each client encrypts its weights (fixed point, 2^-15 resolution, |w| <= 1),
the server adds the 10 ciphertexts, the key holder decrypts the sum. Both
libraries run at 128-bit security (HE Standard): tfpriv with its `n2048`
preset (q = 2 x 27-bit primes, t = 2^24; each client's ciphertext is
modulus-switched to 32 + 40 bits per coefficient), TenSEAL 0.3.18 with
n = 4096, q = 109 bits (its default coefficient moduli), plain modulus
1032193, batching 4096 values per ciphertext. TenSEAL is optional:
`pip install tenseal==0.3.18`; without it only tfpriv runs.

`--multiparty` adds the dealer-free threshold protocol (`rlwe.multiparty`, what
`RlweAggregator` runs): n4096, every client a key holder, T = k // 2 + 1. It
reports the key setup (each holder's secret share, public-key share and Shamir
re-sharing; all holders do the same work, so the simulated total over k is the
time per client) and one round: encryption per client, the server's sum, the
threshold decryption (T smudged partial decryptions and their combination).

Run: .venv/bin/python benchmarks/rlwe_bench.py [--clients 10] [--weights 1000000]
     [--multiparty] [--quiet]
Progress (each library's clients) goes to stderr unless `--quiet`; stdout holds the
figures only.
"""

from __future__ import annotations

import argparse
import time
from typing import Optional

import numpy as np

from tfpriv.crypto.rlwe import bfv, keys, modswitch, multiparty, serialize
from tfpriv.crypto.rlwe.encoding import Encoder
from tfpriv.crypto.rlwe.params import preset
from tfpriv.experiments.progress import StderrProgress
from tfpriv.progress import Progress, each

PRECISION = 15


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def run_tfpriv(updates, progress: Optional[Progress] = None):
    params = preset('n2048')
    (secret, public), keygen_s = timed(keys.keygen, params)
    encoder, clients = Encoder(params, PRECISION), len(updates)
    widths = modswitch.choose_widths(params, bfv.fresh_noise(params, 2**PRECISION), clients)

    def client(update):
        ct = bfv.encrypt(public, encoder.encode(update))
        return serialize.dumps(modswitch.compress(ct, *widths))

    messages, encrypt_s = [], 0.0
    for update in each(progress, 'tfpriv clients', updates):
        blob, seconds = timed(client, update)
        messages.append(blob)
        encrypt_s += seconds

    def server(blobs):
        total = None
        for blob in blobs:
            ct = serialize.loads(blob, params, plain=2**PRECISION)  # the public bound |x| <= 1
            total = ct if total is None else total + ct
        return total

    total, add_s = timed(server, messages)

    def decrypt(ct):
        return encoder.decode(bfv.decrypt(secret, modswitch.decompress(ct)), updates[0].size)

    result, decrypt_s = timed(decrypt, total)
    return dict(keygen=keygen_s, encrypt=encrypt_s / clients, add=add_s, decrypt=decrypt_s,
                bytes=len(messages[0]) / updates[0].size, result=result,
                config=f'n=2048, log2 q={params.log2_q:.0f}, t=2^24, {widths[0]}+{widths[1]}-bit '
                       f'compressed ciphertexts')


def run_multiparty(updates, progress: Optional[Progress] = None):
    params, clients = preset('n4096'), len(updates)
    needed, encoder = clients // 2 + 1, Encoder(params, PRECISION)
    (holders, key, view, cost), setup_s = timed(multiparty.setup_keys, params, clients, needed)
    encrypt_s = 0.0
    for update in each(progress, 'multiparty clients', updates):
        blob, seconds = timed(lambda u: serialize.dumps(key.encrypt(encoder.encode(u))), update)
        view.ciphertexts.append(blob)
        encrypt_s += seconds

    def server(blobs):
        cts = [serialize.loads(blob, params, plain=2**PRECISION, key_parties=clients) for blob in blobs]
        total = cts[0]
        for ct in cts[1:]:
            total = bfv.add(total, ct)
        return total

    total, add_s = timed(server, view.ciphertexts)
    plain, decrypt_s = timed(multiparty.decrypt, total, holders[:needed], needed, view)
    partial = next(iter(view.partial_decryptions.values())).size * multiparty.RESIDUE_BYTES
    return dict(setup=setup_s, setup_bytes=cost.bytes_per_holder, encrypt=encrypt_s / clients,
                add=add_s, decrypt=decrypt_s, bytes=len(view.ciphertexts[0]),
                partial_bytes=partial, threshold=needed, smudging=view.smudging_bits,
                result=encoder.decode(plain, updates[0].size))


def report_multiparty(row, clients, size, exact):
    print(f'\nmultiparty (no dealer): n=4096, log2 q=108, t=2^30, T={row["threshold"]} of '
          f'{clients} key holders, smudging 2^{row["smudging"]}')
    print(f'  key setup: {row["setup"] / clients:.3f} s per client (simulated total '
          f'{row["setup"]:.2f} s), {row["setup_bytes"]:,} B sent per client '
          f'(public-key share + {clients - 1} Shamir re-shares)')
    total = clients * row['encrypt'] + row['add'] + row['decrypt']
    error = float(np.max(np.abs(row['result'] - exact)))
    print(f'  round: enc {row["encrypt"]:.3f} s/client, add {row["add"]:.3f} s, threshold '
          f'decrypt {row["decrypt"]:.3f} s ({row["threshold"]} partials + combine), total '
          f'{total:.2f} s; {row["bytes"]:,} B per client ({row["bytes"] / size:.2f} B/weight), '
          f'{row["partial_bytes"]:,} B per partial decryption; max error {error:.2e}')


def run_tenseal(updates, progress: Optional[Progress] = None):
    import tenseal as ts
    n, scale = 4096, 2**PRECISION

    def keygen():
        context = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=n, plain_modulus=1032193)
        return context

    context, keygen_s = timed(keygen)
    clients, size = len(updates), updates[0].size

    def client(update):
        ints = np.rint(update.astype(np.float64) * scale).astype(np.int64)
        return [ts.bfv_vector(context, ints[i:i + n].tolist()).serialize()
                for i in range(0, size, n)]

    messages, encrypt_s = [], 0.0
    for update in each(progress, 'TenSEAL clients', updates):
        blobs, seconds = timed(client, update)
        messages.append(blobs)
        encrypt_s += seconds
    vectors = [[ts.bfv_vector_from(context, blob) for blob in blobs] for blobs in messages]

    def server():  # one ciphertext column per block of n weights, summed over clients
        return [sum(column[1:], column[0]) for column in zip(*vectors)]

    total, add_s = timed(server)

    def decrypt():
        return np.concatenate([np.array(v.decrypt(), dtype=np.float64) for v in total]) / scale

    result, decrypt_s = timed(decrypt)
    return dict(keygen=keygen_s, encrypt=encrypt_s / clients, add=add_s, decrypt=decrypt_s,
                bytes=sum(len(b) for b in messages[0]) / size, result=result[:size],
                config='n=4096, log2 q=109, t=1032193 (SEAL serialization, zstd)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clients', type=int, default=10)
    parser.add_argument('--weights', type=int, default=1_000_000)
    parser.add_argument('--multiparty', action='store_true',
                        help='also run the dealer-free threshold protocol (multiparty)')
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    args = parser.parse_args()
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    rng = np.random.default_rng(0)
    updates = [np.clip(rng.normal(0, 0.3, args.weights), -1, 1).astype(np.float32)
               for _ in range(args.clients)]
    exact = np.sum([u.astype(np.float64) for u in updates], axis=0)
    rows = {'tfpriv': run_tfpriv(updates, progress)}
    try:
        rows['TenSEAL'] = run_tenseal(updates, progress)
    except ImportError:
        print('TenSEAL not installed (pip install tenseal==0.3.18): skipping the comparison')
    print(f'{args.clients} clients x {args.weights:,} float32 weights, 128-bit security')
    header = (f'{"library":8s} {"keygen s":>9s} {"enc s/client":>13s} {"add s":>7s} '
              f'{"dec s":>7s} {"total s":>8s} {"B/weight":>9s} {"max error":>10s}')
    print(header)
    totals = {}
    for name, row in rows.items():
        total = row['keygen'] + args.clients * row['encrypt'] + row['add'] + row['decrypt']
        totals[name] = total
        error = float(np.max(np.abs(row['result'] - exact)))
        print(f'{name:8s} {row["keygen"]:9.3f} {row["encrypt"]:13.3f} {row["add"]:7.3f} '
              f'{row["decrypt"]:7.3f} {total:8.2f} {row["bytes"]:9.2f} {error:10.2e}')
    for name, row in rows.items():
        print(f'  {name}: {row["config"]}')
    if 'TenSEAL' in totals:
        print(f'total time tfpriv / TenSEAL = {totals["tfpriv"] / totals["TenSEAL"]:.2f}x '
              f'(goal <= 1.0x); bytes per weight {rows["tfpriv"]["bytes"]:.2f} (goal <= 11)')
    if args.multiparty:
        report_multiparty(run_multiparty(updates, progress), args.clients, args.weights, exact)


if __name__ == '__main__':
    main()
