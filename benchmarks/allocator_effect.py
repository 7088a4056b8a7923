"""What glibc's default malloc policy costs secure aggregation, and `tfpriv.allocator`'s fix.

    PYTHONPATH=. .venv/bin/python benchmarks/allocator_effect.py [--pairs 3] [--repeats 5]
        [--schemes plain,shamir,smpc,secagg,rlwe] [--dim 55050] [--clients 50]

Runs this script's own measurement in fresh interpreters, alternately with the default
policy and with `keep_freed_memory()` (`--pairs` times each, default first then kept, so a
machine that drifts affects both alike), and prints, per mode, the median over the runs (and
each run's figure) of:
  * one Shamir split of 65,536 field elements among 5 holders (threshold 3), best of 50;
  * one distributed-DP aggregation (`distributed_dp.make_aggregator(scheme).aggregate`) of
    `--clients` updates of `--dim` values per scheme, median of `--repeats` (the
    `aggregation per round` of `fedavg_rounds.py --dp-row`, without TensorFlow);
  * the minor page faults (getrusage) per call of each.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

from tfpriv import allocator
from tfpriv.crypto.shamir import field
from tfpriv.federated import distributed_dp
from tfpriv.rng import Prg, RandomSource


def measure(fn, repeats: int) -> dict:
    """Median and best wall ms of `repeats` calls after one warm-up, and faults per call."""
    fn()
    times = []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {'median_ms': 1e3 * statistics.median(times), 'best_ms': 1e3 * min(times),
            'faults': faults / repeats}


def child(args) -> dict:
    """One interpreter's measurements (the mode is set before anything is allocated)."""
    if args.child == 'kept':
        assert allocator.keep_freed_memory().applied, 'mallopt is glibc-only'
    source = RandomSource(seed=0, cause='the benchmark')
    prg = Prg(source)
    secret = prg.uniform_mod(field.DEFAULT_PRIME, (65_536,))
    results = {'shamir split': measure(
        lambda: field.split_field(secret, 3, 5, field.DEFAULT_PRIME, prg), 50)}
    rng = np.random.default_rng(0)
    updates = [[rng.normal(size=args.dim) * 0.01] for _ in range(args.clients)]
    for scheme in args.schemes.split(','):
        aggregator = distributed_dp.make_aggregator(scheme, 0.5, 1.0, args.clients, args.dim,
                                                    rng=source)
        results[f'ddgauss+{scheme}'] = measure(lambda: aggregator.aggregate(updates), args.repeats)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pairs', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--schemes', default='plain,shamir,smpc,secagg,rlwe')
    parser.add_argument('--dim', type=int, default=55_050)
    parser.add_argument('--clients', type=int, default=50)
    parser.add_argument('--child', choices=('default', 'kept'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    runs = {'default': [], 'kept': []}
    for _ in range(args.pairs):
        for mode in runs:
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], '--child', mode], check=True,
                                 capture_output=True, text=True, env=os.environ)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f'{args.pairs} runs per mode, alternating; d = {args.dim:,}, {args.clients} clients')
    print(f'{"step":<18} {"default ms":>11} {"kept ms":>9} {"ratio":>6} '
          f'{"faults/call default":>20} {"kept":>6}')
    for step in runs['default'][0]:
        d, k = ([statistics.median(r[step]['median_ms'] for r in runs[m]) for m in runs])
        fd, fk = ([statistics.median(r[step]['faults'] for r in runs[m]) for m in runs])
        print(f'{step:<18} {d:>11.2f} {k:>9.2f} {d / k:>5.2f}x {fd:>20.0f} {fk:>6.0f}')
    for mode, results in runs.items():
        for step in results[0]:
            print(f'{mode:<8} {step:<18} ms per run: '
                  + ' '.join(f'{r[step]["median_ms"]:.1f}' for r in results))


if __name__ == '__main__':
    main()
