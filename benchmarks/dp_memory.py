"""Peak memory of DP-SGD's clipping paths against non-DP training of the same model (issue #15).

Each configuration runs in its own subprocess (peak RSS is per process):
the model is built, `--steps` training steps of `--batch` examples run, and
the process reports its peak resident set size (`ru_maxrss`) and the RSS
before training (TensorFlow, data and weights loaded). The table gives both
peaks and the ratio of the *training* increments (peak - before), DP over
non-DP, and seconds per step (first step, which traces, excluded).

    PYTHONPATH=$PWD python benchmarks/dp_memory.py --model lstm --batch 256
    PYTHONPATH=$PWD python benchmarks/dp_memory.py --model lstm --batch 256 \\
        --modes microbatch --parallel-iterations 10   # the loop as it was

`--parallel-iterations` patches `tf.while_loop`'s default for the DP loops
(the loops of `tfpriv.dp.sgd` pass 1) to reproduce the old behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODELS = ('lstm', 'bigru', 'conv1d', 'mlp')


def _model(name: str, vocab: int, seq: int):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    L = tf.keras.layers
    if name == 'mlp':
        return tf.keras.Sequential([tf.keras.Input((784,)), L.Dense(512, activation='relu'),
                                    L.Dense(512, activation='relu'), L.Dense(2)])
    body = {'lstm': [L.LSTM(64)], 'bigru': [L.Bidirectional(L.GRU(32))],
            'conv1d': [L.Dropout(0.2), L.Conv1D(64, 5, activation='relu'),
                       L.GlobalMaxPooling1D()]}[name]
    return tf.keras.Sequential([tf.keras.Input((seq,)), L.Embedding(vocab, 128)] + body
                               + [L.Dense(2)])


def _data(name: str, n: int, vocab: int, seq: int):
    import numpy as np  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, 784)).astype(np.float32) if name == 'mlp'
         else rng.integers(1, vocab, size=(n, seq)))
    return x, rng.integers(0, 2, size=n)


def _patch_parallel_iterations(value: int) -> None:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    original = tf.while_loop

    def while_loop(*args, **kwargs):
        kwargs['parallel_iterations'] = value
        return original(*args, **kwargs)

    tf.while_loop = while_loop


def child(args: argparse.Namespace) -> dict:
    """Trains one configuration; its peak RSS and time per step."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tfpriv.dp import make_private  # pylint: disable=import-outside-toplevel
    if args.parallel_iterations:
        _patch_parallel_iterations(args.parallel_iterations)
    n = args.batch * args.steps
    x, y = _data(args.model, n, args.vocab, args.seq)
    model = _model(args.model, args.vocab, args.seq)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    path = 'non-DP'
    if args.mode == 'nondp':
        model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss=loss)
        feed = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch)
        trainer = model
    else:
        private = make_private(model, num_examples=n, batch_size=args.batch, l2_norm_clip=1.0,
                               noise_multiplier=1.0, clipping=args.mode, sampling='shuffle',
                               **({'virtual_batch_size': args.virtual_batch_size}
                                  if args.virtual_batch_size else {}))
        private.model.compile(optimizer=private.optimizer, loss=private.loss)
        feed, trainer, path = private.dataset(x, y, seed=0), private.model, private.clipping
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []

    class Timer(tf.keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            times.append(time.perf_counter())

    trainer.fit(feed, epochs=1, verbose=0, callbacks=[Timer()])
    times.append(time.perf_counter())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step = (times[-1] - times[1]) / max(1, len(times) - 2)
    return {'mode': args.mode, 'path': path, 'before_mb': before, 'peak_mb': peak,
            's_per_step': step}


def _run(args: argparse.Namespace, mode: str) -> dict:
    command = [sys.executable, __file__, '--child', '--mode', mode, '--model', args.model,
               '--batch', str(args.batch), '--steps', str(args.steps), '--seq', str(args.seq),
               '--vocab', str(args.vocab), '--parallel-iterations', str(args.parallel_iterations),
               '--virtual-batch-size', str(args.virtual_batch_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    if done.returncode:
        return {'mode': mode, 'path': 'FAILED', 'error': done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', choices=MODELS, default='lstm')
    parser.add_argument('--batch', type=int, default=256)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--seq', type=int, default=200)
    parser.add_argument('--vocab', type=int, default=20000)
    parser.add_argument('--modes', default='nondp,auto')
    parser.add_argument('--parallel-iterations', type=int, default=0)
    parser.add_argument('--virtual-batch-size', type=int, default=0)
    parser.add_argument('--mode', default='nondp')
    parser.add_argument('--child', action='store_true')
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    rows = [_run(args, mode) for mode in args.modes.split(',')]
    base = next((r for r in rows if r['mode'] == 'nondp' and 'peak_mb' in r), None)
    print(f'model={args.model} batch={args.batch} seq={args.seq} vocab={args.vocab} '
          f'parallel_iterations={args.parallel_iterations or "default"} '
          f'virtual_batch_size={args.virtual_batch_size or "auto"}')
    print(f'{"mode":<11}{"path":<12}{"before MB":>10}{"peak MB":>9}{"train MB":>9}'
          f'{"x non-DP":>9}{"s/step":>8}')
    for row in rows:
        if 'peak_mb' not in row:
            print(f'{row["mode"]:<11}{row["path"]:<12} {row["error"]}')
            continue
        train = row['peak_mb'] - row['before_mb']
        ratio = (f'{train / (base["peak_mb"] - base["before_mb"]):.2f}'
                 if base and base['peak_mb'] > base['before_mb'] else '-')
        print(f'{row["mode"]:<11}{row["path"]:<12}{row["before_mb"]:>10.0f}{row["peak_mb"]:>9.0f}'
              f'{train:>9.0f}{ratio:>9}{row["s_per_step"]:>8.2f}')


if __name__ == '__main__':
    main()
