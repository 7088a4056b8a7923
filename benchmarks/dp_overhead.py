"""Per-epoch time of DP-SGD vs non-DP training, MLP and CNN, in one run.

    .venv/bin/python benchmarks/dp_overhead.py [--batch-size 256] [--steps 30]

Times `--steps` training steps (after 3 warm-up steps that trace the graph) on
real MNIST batches for each clipping path, extrapolates to one epoch of 60,000
examples and prints the ratio to the non-DP model in the same run. `auto` is
what tfpriv picks (the fast registry path, with its Conv2D extension for the CNN);
`vectorized` is per-example gradients with `tf.vectorized_map`; `microbatch` the same one
example at a time in a `tf.while_loop` (`tfpriv.dp.sgd`), for comparison.
"""

import argparse
import math
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import tensorflow as tf  # pylint: disable=wrong-import-position

from tfpriv.data import load_mnist  # pylint: disable=wrong-import-position
from tfpriv.dp.keras import make_private  # pylint: disable=wrong-import-position
from tfpriv.model import build_model  # pylint: disable=wrong-import-position

CASES = {
    'mlp': ('no-dp', 'auto', 'vectorized', 'microbatch'),
    'cnn': ('no-dp', 'auto', 'vectorized', 'microbatch'),
}


def seconds_per_step(model_name: str, path: str, data, batch_size: int, steps: int) -> float:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--steps', type=int, default=30)
    args = parser.parse_args()
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


if __name__ == '__main__':
    main()
