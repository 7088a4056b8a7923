"""Per-epoch time of DP-SGD vs non-DP training: MLP and CNN paths, and the model zoo vs Opacus.

    .venv/bin/python benchmarks/dp_overhead.py [--batch-size 256] [--steps 30]
    .venv/bin/python benchmarks/dp_overhead.py --zoo [--models convnet,lstm_text] [--steps 5]
        [--frameworks keras,opacus] [--repeats 3] [--out zoo.json]

Default: times `--steps` training steps (after 3 warm-up steps that trace the graph) on
real MNIST batches for each clipping path, extrapolates to one epoch of 60,000
examples and prints the ratio to the non-DP model in the same run. `auto` is
what tfpriv picks (the fast registry path, with its Conv2D extension for the CNN);
`vectorized` is per-example gradients with `tf.vectorized_map`; `microbatch` the same one
example at a time in a `tf.while_loop` (`tfpriv.dp.sgd`), for comparison.

`--zoo` (or `--models`): the user-style model zoo of `benchmarks/zoo/spec.py`, each model
with tfpriv's `make_private` and its PyTorch twin with Opacus 1.6 (from .venv-bench,
`bash benchmarks/setup_bench.sh`), non-DP and DP, each configuration in a fresh process:
accepted?, clipping path, s/epoch, DP/non-DP time and peak-RSS ratios, test accuracy (MSE
for regression) after the same `--warmup + --steps` batches of 256 (fast models are then
timed on more steps, up to `--min-seconds`). Prints a Markdown
table; `--out` writes every measurement as JSON. `--repeats N` runs each model's
configurations N times (separate runs in alternating order); the table's ratios are then
medians of the N runs' own ratios, and a second table lists each run's.
Unless `--default-allocator`, this process and the zoo's servers (both frameworks) keep
freed memory and TensorFlow pools its own (`tfpriv.allocator`), as `train.py` does.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfpriv import allocator  # pylint: disable=wrong-import-position

CASES = {
    'mlp': ('no-dp', 'auto', 'vectorized', 'microbatch'),
    'cnn': ('no-dp', 'auto', 'vectorized', 'microbatch'),
}


def seconds_per_step(model_name: str, path: str, data, batch_size: int, steps: int) -> float:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tfpriv.dp.keras import make_private  # pylint: disable=import-outside-toplevel
    from tfpriv.model import build_model  # pylint: disable=import-outside-toplevel
    tf.keras.utils.set_random_seed(0)
    dp = path != 'no-dp'
    dropout = 0.0 if path == 'auto' else 0.2
    model = build_model(model_name, (28, 28, 1), 10, dropout=dropout)
    if dp:
        private = make_private(model, num_examples=60000, batch_size=batch_size, l2_norm_clip=1.0,
                               noise_multiplier=1.1, clipping=path)
        model, optimizer, loss = private.model, private.optimizer, private.loss
    else:
        optimizer = tf.keras.optimizers.SGD(0.1)
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    batches = [(data.x_train[i * batch_size:(i + 1) * batch_size],
                data.y_train[i * batch_size:(i + 1) * batch_size]) for i in range(steps + 3)]
    for x, y in batches[:3]:
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for x, y in batches[3:]:
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def clipping_paths(args: argparse.Namespace) -> None:
    """The original MLP/CNN rows: every clipping path against non-DP."""
    from tfpriv.data import load_mnist  # pylint: disable=import-outside-toplevel
    data = load_mnist()
    steps_per_epoch = math.ceil(60000 / args.batch_size)
    print(f'batch {args.batch_size}, {steps_per_epoch} steps per epoch, times extrapolated from '
          f'{args.steps} steps')
    print(f"{'model':5} {'path':11} {'s/epoch':>9} {'x no-dp':>8}")
    for model_name, paths in CASES.items():
        base = None
        for path in paths:
            steps = args.steps if path != 'microbatch' or model_name == 'mlp' else max(3, args.steps // 10)
            per_epoch = seconds_per_step(model_name, path, data, args.batch_size, steps) * steps_per_epoch
            base = base or per_epoch
            print(f'{model_name:5} {path:11} {per_epoch:9.2f} {per_epoch / base:8.1f}')


def zoo(args: argparse.Namespace) -> None:
    """The model zoo, tfpriv and Opacus side by side (see the module docstring)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from zoo import runner, spec  # pylint: disable=import-outside-toplevel
    models = args.models.split(',') if args.models else list(spec.MODELS)
    frameworks = args.frameworks.split(',')
    unknown = sorted(set(models) - set(spec.MODELS)) + sorted(set(frameworks) - set(runner.FRAMEWORKS))
    if unknown:
        sys.exit(f'dp_overhead.py: unknown --models/--frameworks {unknown}; models: '
                 f'{sorted(spec.MODELS)}, frameworks: {list(runner.FRAMEWORKS)}')
    settings = runner.Settings(models, frameworks, args.steps or 5, args.warmup,
                               args.min_seconds, args.max_rss_mb, args.timeout,
                               'default' if args.default_allocator else 'kept', args.repeats)
    start = time.perf_counter()
    results = runner.run_zoo(settings)
    print(f'\nbatch {spec.BATCH_SIZE}; per configuration {settings.warmup} warm-up + '
          f'{settings.steps} steps (the budget the accuracy is measured after), timed steps '
          f'extended to >= {settings.min_seconds:g} s; s/epoch = median step x steps per epoch '
          f'(60,000 examples; credit: its train split); DP/non-DP time ratios (wall and CPU) '
          f'from a further run per model and framework with every mode in one process, steps '
          f'alternated (median per mode; the separate runs when it failed), '
          f'C={spec.L2_NORM_CLIP}, sigma={spec.NOISE_MULTIPLIER}, Adam lr {spec.LEARNING_RATE}; '
          f'TF threads {spec.TF_INTRA_OP_THREADS} intra / {spec.TF_INTER_OP_THREADS} inter, torch '
          f'{spec.TORCH_THREADS} / {spec.TORCH_INTEROP_THREADS}; accuracy on {spec.NUM_TEST} test '
          f'examples; allocator policy {settings.allocator} (tfpriv.allocator: kept = malloc '
          f'keeps freed memory and TensorFlow pools its own); '
          f'{_repeats_note(settings.repeats)}; total {time.perf_counter() - start:.0f} s\n')
    _print_tables(runner, results, settings)
    if args.out:
        runner.write_json(args.out, results, settings)


def _print_tables(runner, results, settings) -> None:
    """The zoo table (medians over the repeats), then each repeat's wall-time ratios."""
    print(runner.markdown_table(results, settings))
    print('\nDP/non-DP wall time of each repeat, in run order:\n')
    print(runner.repeat_table(results, settings))


def _repeats_note(repeats: int) -> str:
    if repeats == 1:
        return 'one run per configuration'
    return (f'{repeats} runs per configuration, separate runs in alternating order; ratios are '
            f'medians of the runs\' own ratios')


def table(path: str) -> None:
    """The zoo table of the measurements `zoo --out` saved in `path`."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from zoo import runner  # pylint: disable=import-outside-toplevel
    with open(path) as handle:
        saved = json.load(handle)
    settings = runner.Settings(**saved['settings'])
    _print_tables(runner, saved['results'], settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--steps', type=int, default=None,
                        help='timed steps per configuration (default 30; zoo: 5)')
    parser.add_argument('--zoo', action='store_true', help='run the model zoo vs Opacus')
    parser.add_argument('--models', default='', help='comma-separated zoo models (implies --zoo)')
    parser.add_argument('--frameworks', default='keras,opacus')
    parser.add_argument('--warmup', type=int, default=2, help='zoo: untimed first steps')
    parser.add_argument('--min-seconds', type=float, default=3.0,
                        help='zoo: time more steps (after the budget) until they add up to this')
    parser.add_argument('--max-rss-mb', type=float, default=8000.0,
                        help='zoo: end a configuration whose RSS exceeds this')
    parser.add_argument('--timeout', type=float, default=300.0,
                        help='zoo: end a configuration running longer than this (s)')
    parser.add_argument('--repeats', type=int, default=1,
                        help='zoo: run each configuration this many times (separate runs in '
                             'alternating order); ratios are medians of the runs\' own ratios')
    parser.add_argument('--out', default='', help='zoo: write the measurements as JSON here')
    parser.add_argument('--table', default='', metavar='JSON',
                        help='zoo: print the table of a run saved with --out (runs nothing)')
    parser.add_argument('--default-allocator', action='store_true',
                        help="keep glibc malloc's default policy and TensorFlow's malloc-based "
                             "allocator; by default this process and the zoo's servers keep "
                             "freed memory and TensorFlow pools its own (tfpriv.allocator), "
                             "as train.py")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f'--repeats must be at least 1, got {args.repeats}')
    if args.table:
        table(args.table)
    elif args.zoo or args.models:
        zoo(args)
    else:
        if not args.default_allocator:
            allocator.keep_freed_memory()
        args.steps = args.steps or 30
        clipping_paths(args)


if __name__ == '__main__':
    main()
