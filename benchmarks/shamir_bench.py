"""Shamir secret sharing and Shamir secure aggregation on 1M-weight models.

    .venv/bin/python benchmarks/shamir_bench.py [--repeats 3] [--quiet]

Measures, in one run and with the secure default randomness (the AES-256-CTR
keystream `tfpriv.rng.Prg` keyed from the OS CSPRNG):
  1. split + reconstruct of a 1,000,000-weight model (list of float32 arrays)
     into n = 10 shares, threshold t = 6;
  2. ShamirAggregator over 10 clients' 1M-weight updates (n = 10, t = 6);
  3. robust reconstruction from all 10 shares with 2 of them corrupted.
Each time is the best CPU time (of the calling thread; BLAS runs on it alone) of
`--repeats` runs and is printed with its ratio to a
plain NumPy sum of the 10 clients' float32 updates measured in the same run
(the aggregation that the protocol replaces; best of at least 30 runs); the
sum of two 1M arrays is printed too. Also prints the bytes each client sends per weight.
Progress (the slow steps' repeats, the aggregator's clients) goes to stderr unless
`--quiet`; stdout holds the figures only.
"""

import os

os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')  # every figure is one thread's CPU time
os.environ.setdefault('OMP_NUM_THREADS', '1')
# pylint: disable=wrong-import-position
import argparse
import dataclasses
import time
from typing import Optional

import numpy as np
from absl import logging

from tfpriv.crypto import shamir
from tfpriv.crypto.fixed_point import FixedPoint
from tfpriv.crypto.secagg import PlainAggregator
from tfpriv.crypto.shamir import field
from tfpriv.crypto.shamir.secagg import ShamirAggregator
from tfpriv.experiments.progress import StderrProgress
from tfpriv.progress import Progress, each, prefixed
from tfpriv.rng import Prg

NUM_WEIGHTS = 1_000_000
NUM_SHARES, THRESHOLD, NUM_CLIENTS = 10, 6, 10


def best_of(repeats, fn, progress: Optional[Progress] = None, label: str = 'repeats'):
    """Best CPU time of this thread (BLAS is pinned to it above): insensitive to waiting for a
    shared CPU, which wall-clock time on a loaded machine is not."""
    times = []
    for _ in each(progress, label, range(repeats)):
        start = time.thread_time()
        result = fn()
        times.append(time.thread_time() - start)
    return min(times), result


def model_like(rng):
    """A 1,000,000-weight 'model': a 999 x 1000 kernel and a 1000 bias, float32."""
    return [rng.normal(scale=0.05, size=(999, 1000)).astype(np.float32),
            rng.normal(scale=0.05, size=1000).astype(np.float32)]


def share_and_reconstruct(model, plain_sum: float, repeats: int, progress) -> list:
    """split and reconstruct (best of `repeats`) against the plain sum; returns the shares."""
    split_time, shares = best_of(repeats, lambda: shamir.split(model, THRESHOLD, NUM_SHARES),
                                 progress, 'split repeats')
    rec_time, restored = best_of(repeats, lambda: shamir.reconstruct(shares[:THRESHOLD]),
                                 progress, 'reconstruct repeats')
    error = max(float(np.max(np.abs(a - b))) for a, b in zip(restored, model))
    both = split_time + rec_time
    print(f'split:                     {split_time * 1e3:8.1f} ms')
    print(f'reconstruct (t shares):    {rec_time * 1e3:8.1f} ms')
    print(f'share + reconstruct:       {both * 1e3:8.1f} ms   = {both / plain_sum:5.1f}x plain sum '
          f'(goal <= 500 ms and <= 10x)   max error {error:.1e}')
    return shares


def breakdown(model, shares, plain_sum: float, repeats: int) -> None:
    """Where split + reconstruct spend their time (best of `repeats` each), and what no NumPy
    implementation of this split can avoid: (t - 1) fresh uniform 31-bit coefficients per
    weight (from the Prg; os.urandom shown for comparison) and one reduction mod p per share
    element (n per weight), here the float64 reduction `field.reduce_exact_floats` that
    `matmul_mod` runs and NumPy's int64 `%` for comparison: a floor for the ratio."""
    modulus = shares[0].modulus
    count = (THRESHOLD - 1) * NUM_WEIGHTS
    encoder = FixedPoint(modulus, shares[0].precision)
    flat_model = np.concatenate([a.ravel() for a in model]).astype(np.float64)
    encode_time, encoded = best_of(repeats, lambda: encoder.encode(flat_model))
    prg_time, coefficients = best_of(repeats, lambda: Prg().uniform_mod(
        modulus, (THRESHOLD - 1, NUM_WEIGHTS)))
    vandermonde = [[pow(x, k, modulus) for k in range(THRESHOLD)]
                   for x in range(1, NUM_SHARES + 1)]
    eval_time, _ = best_of(repeats, lambda: field.matmul_mod(
        vandermonde, [encoded] + list(coefficients), modulus))
    lagrange = field.lagrange_coefficients(range(1, THRESHOLD + 1), modulus)
    combine_time, _ = best_of(repeats, lambda: field.combine(
        lagrange, [s.values for s in shares[:THRESHOLD]], modulus))
    urandom_time, _ = best_of(repeats, lambda: os.urandom(4 * count))
    unreduced = np.random.default_rng(1).integers(0, 2**48, (NUM_SHARES, NUM_WEIGHTS))
    as_floats = unreduced.astype(np.float64)
    scratch = np.empty_like(as_floats)
    reduce_time, _ = best_of(repeats, lambda: np.remainder(unreduced, modulus))
    float_time, _ = best_of(repeats, lambda: field.reduce_exact_floats(
        as_floats.copy(), modulus, scratch))
    copy_time, _ = best_of(repeats, lambda: as_floats.copy())
    print(f'split breakdown: fixed-point encode {encode_time * 1e3:.1f} ms, '
          f'{count / 1e6:.0f}M coefficients from the Prg {prg_time * 1e3:.1f} ms, evaluation '
          f'at {NUM_SHARES} points (matmul_mod) {eval_time * 1e3:.1f} ms; reconstruct: '
          f'Lagrange combination of {THRESHOLD} rows {combine_time * 1e3:.1f} ms')
    print(f'floor: the {count / 1e6:.0f}M coefficients {prg_time * 1e3:.1f} ms '
          f'({prg_time / plain_sum:.1f}x; os.urandom of their {4 * count / 1e6:.0f} MB '
          f'{urandom_time * 1e3:.1f} ms); one reduction mod p per share element '
          f'({NUM_SHARES}M): float64 {max(float_time - copy_time, 0) * 1e3:.1f} ms '
          f'({max(float_time - copy_time, 0) / plain_sum:.1f}x, a copy of 80 MB subtracted), '
          f'int64 % {reduce_time * 1e3:.1f} ms ({reduce_time / plain_sum:.1f}x)')


def robust_reconstruct(model, shares, plain_sum: float, repeats: int, progress) -> None:
    """Robust reconstruction from all 10 shares, 2 of them corrupted: time and bad parties."""
    corrupted = list(shares)
    for i in (2, 7):
        noise = np.random.default_rng(i).integers(1, shares[i].modulus, shares[i].values.size)
        corrupted[i] = dataclasses.replace(
            shares[i], values=(shares[i].values + noise) % shares[i].modulus)
    robust_time, (robust, bad) = best_of(repeats,
                                         lambda: shamir.reconstruct_with_report(corrupted),
                                         progress, 'robust reconstruct repeats')
    robust_error = max(float(np.max(np.abs(a - b))) for a, b in zip(robust, model))
    print(f'robust reconstruct, 10 shares, 2 corrupted: {robust_time * 1e3:8.1f} ms   '
          f'= {robust_time / plain_sum:5.1f}x plain sum   bad parties x = {list(bad)}   '
          f'max error {robust_error:.1e}')


def aggregator_row(clients, reference, plain_sum: float, repeats: int, progress) -> None:
    """`ShamirAggregator` over the clients: time, error against plain averaging, bytes."""
    aggregator = ShamirAggregator(NUM_SHARES, THRESHOLD,
                                  progress=prefixed(progress, 'ShamirAggregator '))
    agg_time, (average, stats) = best_of(repeats, lambda: aggregator.aggregate(clients))
    agg_error = max(float(np.max(np.abs(a - b))) for a, b in zip(average, reference))
    print(f'ShamirAggregator, {NUM_CLIENTS} clients:     {agg_time * 1e3:8.1f} ms   '
          f'= {agg_time / plain_sum:5.1f}x plain sum   max error vs plain {agg_error:.1e}')
    print(f'  per client: {stats.bytes_per_client / 1e6:.1f} MB sent = '
          f'{stats.extra["bytes_per_weight_per_client"]:.2f} bytes per weight '
          f'(plain float32 upload: 4 bytes per weight)   messages in total: {stats.messages}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    args = parser.parse_args()
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    logging.set_verbosity(logging.ERROR)
    rng = np.random.default_rng(0)
    clients = [model_like(rng) for _ in range(NUM_CLIENTS)]
    flat = [np.concatenate([a.ravel() for a in c]) for c in clients]
    assert flat[0].size == NUM_WEIGHTS

    # The baselines take milliseconds: many repeats make their minimum robust to a busy machine.
    baseline_repeats = max(30, args.repeats)
    plain_sum, _ = best_of(baseline_repeats, lambda: sum(flat[1:], flat[0].copy()))
    one_sum, _ = best_of(baseline_repeats, lambda: flat[0] + flat[1])
    plain_agg, (reference, _) = best_of(args.repeats,
                                        lambda: PlainAggregator().aggregate(clients))
    print(f'weights per model: {NUM_WEIGHTS:,}   n = {NUM_SHARES}, t = {THRESHOLD}, '
          f'{NUM_CLIENTS} clients, Prg keyed from the OS CSPRNG')
    print(f'plain NumPy sum of {NUM_CLIENTS} updates (baseline): {plain_sum * 1e3:8.1f} ms')
    print(f'plain NumPy add of 2 arrays:                 {one_sum * 1e3:8.1f} ms')
    print(f'PlainAggregator (insecure reference):        {plain_agg * 1e3:8.1f} ms')
    shares = share_and_reconstruct(clients[0], plain_sum, args.repeats, progress)
    breakdown(clients[0], shares, plain_sum, args.repeats)
    robust_reconstruct(clients[0], shares, plain_sum, args.repeats, progress)
    aggregator_row(clients, reference, plain_sum, args.repeats, progress)

if __name__ == '__main__':
    main()
