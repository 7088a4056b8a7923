"""What glibc's default malloc policy costs secure aggregation and DP-SGD, and `tfpriv.allocator`'s fix.

    PYTHONPATH=. .venv/bin/python benchmarks/allocator_effect.py [--pairs 3] [--repeats 5]
        [--schemes plain,shamir,smpc,secagg,rlwe] [--dim 55050] [--clients 50]
    PYTHONPATH=. .venv/bin/python benchmarks/allocator_effect.py --keras convnet,groupnorm_cnn
        [--pairs 3] [--rounds 40]

Runs this script's own measurement in fresh interpreters, alternately with the default
policy and with `keep_freed_memory()` (`--pairs` times each, default first then kept, so a
machine that drifts affects both alike), and prints, per mode, the median over the runs (and
each run's figure) of:
  * one Shamir split of 65,536 field elements among 5 holders (threshold 3), best of 50;
  * one distributed-DP aggregation (`distributed_dp.make_aggregator(scheme).aggregate`) of
    `--clients` updates of `--dim` values per scheme, median of `--repeats` (the
    `aggregation per round` of `fedavg_rounds.py --dp-row`, without TensorFlow);
  * the minor page faults (getrusage) per call of each.

With `--keras MODELS` (names of `benchmarks/zoo`) it compares instead `malloc`, the malloc
policy alone (`keep_freed_memory` with TensorFlow's pool refused: what it did before it asked
for the pool), with `kept` (malloc policy and TensorFlow's pool), alternating: per model, the
non-DP and the DP training step of the zoo (`keras_zoo.build`, batch 256) after 3 warm-up
steps each, then `--rounds` rounds of one step of each, alternating (median wall and CPU
ms, page faults per step), and the median of the runs' own DP/non-DP ratios. `--out F`
saves the runs; `--table F` prints their table again.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the zoo, for --keras

from tfpriv import allocator  # pylint: disable=wrong-import-position
from tfpriv.crypto.shamir import field  # pylint: disable=wrong-import-position
from tfpriv.federated import distributed_dp  # pylint: disable=wrong-import-position
from tfpriv.rng import Prg, RandomSource  # pylint: disable=wrong-import-position

KERAS_MODES = ('malloc', 'kept')


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


def _alternating_steps(steps: dict, batches, rounds: int) -> dict:
    """`rounds` rounds of one step per mode: median wall and CPU ms, faults per step."""
    from zoo import worker  # pylint: disable=import-outside-toplevel
    times = {mode: [] for mode in steps}
    faults = dict.fromkeys(steps, 0)
    for _ in range(rounds):
        for mode, step in steps.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times[mode] += worker.timed_steps(step, batches, 1)
            faults[mode] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {mode: {'median_ms': 1e3 * statistics.median(t for t, _ in times[mode]),
                   'cpu_ms': 1e3 * statistics.median(c for _, c in times[mode]),
                   'faults': faults[mode] / rounds} for mode in steps}


def keras_child(args) -> dict:
    """Non-DP and DP steps of each zoo model, alternating, under this interpreter's policy."""
    if args.child == 'malloc':
        os.environ[allocator.TENSORFLOW_POOL] = 'false'
    assert allocator.keep_freed_memory().tensorflow_pool == (args.child == 'kept')
    from zoo import keras_zoo, spec, worker  # pylint: disable=import-outside-toplevel
    keras_zoo.setup()
    path = os.path.join(os.environ.get('TMPDIR', '/tmp'), f'allocator_effect_{os.getpid()}.npz')
    spec.prepare_data(path, spec.BATCH_SIZE * 8)
    arrays = dict(np.load(path))
    os.remove(path)
    results = {}
    for name in args.keras.split(','):
        model = spec.MODELS[name]
        steps = {mode: keras_zoo.build(model, mode, spec.epoch_size(model, arrays)).step
                 for mode in ('nodp', 'dp')}
        batches = spec.cycle(*spec.split(arrays, model, 'train'))
        for step in steps.values():
            worker.timed_steps(step, batches, 3)
        for mode, figures in _alternating_steps(steps, batches, args.rounds).items():
            results[f'{name} {mode}'] = figures
    return results


def keras_table(runs: dict) -> None:
    """Per model and policy: median non-DP and DP step over the runs, the median of the runs'
    own DP/non-DP ratios (wall, CPU: each run's ratio compares steps of one process), faults."""
    print(f'{"model":<16} {"policy":<7} {"non-DP ms":>9} {"DP ms":>7} {"DP/non-DP":>9} '
          f'{"CPU ratio":>9} {"faults/step non-DP":>18} {"DP":>6}  DP/non-DP per run')
    names = sorted({key.rsplit(' ', 1)[0] for key in runs['kept'][0]}, key=lambda n: n.lower())
    for name in names:
        for mode, results in runs.items():
            def median(figure, results=results):
                return statistics.median(figure(r[f'{name} nodp'], r[f'{name} dp']) for r in results)
            ratios = [r[f'{name} dp']['median_ms'] / r[f'{name} nodp']['median_ms'] for r in results]
            print(f'{name:<16} {mode:<7} {median(lambda n, d: n["median_ms"]):>9.1f} '
                  f'{median(lambda n, d: d["median_ms"]):>7.1f} {statistics.median(ratios):>8.2f}x '
                  f'{median(lambda n, d: d["cpu_ms"] / n["cpu_ms"]):>8.2f}x '
                  f'{median(lambda n, d: n["faults"]):>18.0f} {median(lambda n, d: d["faults"]):>6.0f}  '
                  + ' '.join(f'{ratio:.2f}' for ratio in ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pairs', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--schemes', default='plain,shamir,smpc,secagg,rlwe')
    parser.add_argument('--dim', type=int, default=55_050)
    parser.add_argument('--clients', type=int, default=50)
    parser.add_argument('--keras', default='', help='zoo models: compare the DP-SGD step instead')
    parser.add_argument('--rounds', type=int, default=40, help='--keras: steps of each mode')
    parser.add_argument('--out', default='', help='--keras: write the figures of every run here (JSON)')
    parser.add_argument('--table', default='', metavar='JSON',
                        help='print the --keras table of a run saved with --out (runs nothing)')
    parser.add_argument('--child', choices=('default', 'kept', 'malloc'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table:
        with open(args.table, encoding='utf-8') as f:
            keras_table(json.load(f))
        return
    if args.child:
        print(json.dumps(keras_child(args) if args.keras else child(args)))
        return
    runs = {mode: [] for mode in (KERAS_MODES if args.keras else ('default', 'kept'))}
    env = {key: value for key, value in os.environ.items() if key != allocator.TENSORFLOW_POOL}
    for _ in range(args.pairs):
        for mode in runs:
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], '--child', mode], check=True,
                                 capture_output=True, text=True, env=env)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.keras:
        print(f'{args.pairs} runs per policy, alternating; {args.rounds} steps of each mode')
        keras_table(runs)
        if args.out:
            with open(args.out, 'w', encoding='utf-8') as f:
                json.dump(runs, f, indent=1)
        return
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
