"""Where the zoo's step times scatter: wall against CPU time of every step (issue #15).

    PYTHONPATH=. .venv/bin/python benchmarks/step_stalls.py [--models convnet_nodrop,mlp]
        [--steps 60] [--processes 2]

For each zoo model and mode (`keras_zoo.build`, batch 256, TensorFlow's threads as in the
zoo, memory kept as `train.py` keeps it), in fresh processes: after 3 warm-up steps, the
wall and process CPU time of each of `--steps` steps. It prints, per process, the wall
time's fastest / median / slowest step, the median CPU time, the parallelism (CPU / wall)
of the fastest and the slowest half of the steps, and the share of steps more than 1.3x
slower than the fastest. Steps that are slow because TensorFlow's threads waited for a
CPU keep their CPU time and lose parallelism; steps that are slow because of more work
take more CPU time.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(model_name: str, mode: str, steps: int) -> None:
    """In a fresh interpreter: the (wall, CPU) seconds of each step, as one JSON line."""
    sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
    from tfpriv import allocator  # pylint: disable=import-outside-toplevel
    allocator.keep_freed_memory()
    import numpy as np  # pylint: disable=import-outside-toplevel
    from zoo import keras_zoo, spec, worker  # pylint: disable=import-outside-toplevel
    keras_zoo.setup()
    path = os.path.join(os.environ.get('TMPDIR', '/tmp'), f'step_stalls_{os.getpid()}.npz')
    spec.prepare_data(path, spec.BATCH_SIZE * 8)
    arrays = dict(np.load(path))
    os.remove(path)
    model = spec.MODELS[model_name]
    step = keras_zoo.build(model, mode, spec.epoch_size(model, arrays)).step
    batches = spec.cycle(*spec.split(arrays, model, 'train'))
    worker.timed_steps(step, batches, 3)
    print(json.dumps(worker.timed_steps(step, batches, steps)))


def summary(label: str, seconds) -> str:
    """One line: wall fastest / median / slowest, CPU median, parallelism, stalled share."""
    walls = sorted(wall for wall, _ in seconds)
    by_wall = sorted(seconds)
    half = len(by_wall) // 2
    parallel = [statistics.median(cpu / wall for wall, cpu in part)
                for part in (by_wall[:half], by_wall[half:])]
    slow = sum(wall > 1.3 * walls[0] for wall in walls) / len(walls)
    return (f'{label:28} wall {1e3 * walls[0]:6.1f} / {1e3 * statistics.median(walls):6.1f} / '
            f'{1e3 * walls[-1]:6.1f} ms  CPU {1e3 * statistics.median(c for _, c in seconds):6.1f} ms'
            f'  CPU/wall fast half {parallel[0]:.2f}, slow half {parallel[1]:.2f}'
            f'  steps > 1.3x fastest {100 * slow:3.0f} %')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', default='convnet_nodrop,mlp')
    parser.add_argument('--steps', type=int, default=60)
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--child', nargs=2, metavar=('MODEL', 'MODE'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 2 or args.processes < 1:
        parser.error('--steps must be at least 2 and --processes at least 1')
    if args.child:
        child(*args.child, args.steps)
        return
    sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
    from zoo import spec  # pylint: disable=import-outside-toplevel
    unknown = sorted(set(args.models.split(',')) - set(spec.MODELS))
    if unknown:
        parser.error(f'unknown --models {unknown}; models: {sorted(spec.MODELS)}')
    env = {**os.environ, 'PYTHONPATH': ROOT, 'TF_CPP_MIN_LOG_LEVEL': '3'}
    for model in args.models.split(','):
        for run in range(args.processes):
            for mode in ('nodp', 'dp') if run % 2 == 0 else ('dp', 'nodp'):
                out = subprocess.run([sys.executable, __file__, '--steps', str(args.steps),
                                      '--child', model, mode], env=env, check=True,
                                     capture_output=True, text=True).stdout
                print(summary(f'{model} {mode} (process {run + 1})',
                              json.loads(out.strip().splitlines()[-1])), flush=True)


if __name__ == '__main__':
    main()
