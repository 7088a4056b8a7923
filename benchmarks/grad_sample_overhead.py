"""DP-SGD / non-DP time per step for CNNs on whatever `tfpriv` is importable (issue #15).

    PYTHONPATH=. python benchmarks/grad_sample_overhead.py [--batch-size 256] [--steps 10] [--rounds 3]

For each model, in one process: non-DP training and `make_private(..., clipping=PATH)`
on the same real MNIST batches, timed in alternating rounds of `--steps` steps
(after warm-up steps that trace the graphs); the ratio is of the medians over
rounds, so load changes on a shared machine hit both sides. PATH is `auto`
(what tfpriv picks; printed) unless `--clipping` says otherwise. Point
PYTHONPATH at a checkout of an older commit to time its path with this script.

Models: `cnn` (`tfpriv.model.cnn`, no Dropout), `cnn_dropout` (the same, Dropout
0.2), `sepcnn` (Conv2D(16, 3) → DepthwiseConv2D(3) → SeparableConv2D(32, 3, /2)
→ SeparableConv2D(32, 3, /2) → GlobalAveragePooling → Dense(10)).
"""

import argparse
import os
import statistics
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import tensorflow as tf  # pylint: disable=wrong-import-position

from tfpriv.data import load_mnist  # pylint: disable=wrong-import-position
from tfpriv.dp.keras import make_private  # pylint: disable=wrong-import-position
from tfpriv.model import build_model  # pylint: disable=wrong-import-position

L = tf.keras.layers


def sepcnn() -> tf.keras.Model:
    inputs = tf.keras.Input((28, 28, 1))
    x = L.Conv2D(16, 3, activation='relu')(inputs)
    x = L.DepthwiseConv2D(3, activation='relu')(x)
    x = L.SeparableConv2D(32, 3, strides=2, activation='relu')(x)
    x = L.SeparableConv2D(32, 3, strides=2, activation='relu')(x)
    return tf.keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))


MODELS = {'cnn': lambda: build_model('cnn', (28, 28, 1), 10, dropout=0.0),
          'cnn_dropout': lambda: build_model('cnn', (28, 28, 1), 10, dropout=0.2),
          'sepcnn': sepcnn}


def trainer(name: str, clipping, batch_size: int):
    """(compiled model, path) for non-DP (`clipping=None`) or DP-SGD."""
    tf.keras.utils.set_random_seed(0)
    model = MODELS[name]()
    path = 'no-dp'
    if clipping is None:
        optimizer = tf.keras.optimizers.SGD(0.1)
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        private = make_private(model, num_examples=60000, batch_size=batch_size,
                               l2_norm_clip=1.0, noise_multiplier=1.1, clipping=clipping)
        model, optimizer, loss, path = private.model, private.optimizer, private.loss, private.clipping
    model.compile(optimizer=optimizer, loss=loss)
    return model, path


def timed(model, batches) -> float:
    start = time.perf_counter()
    for x, y in batches:
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--clipping', default='auto')
    parser.add_argument('--models', default=','.join(MODELS))
    args = parser.parse_args()
    data = load_mnist()
    b = args.batch_size
    batches = [(data.x_train[i * b:(i + 1) * b], data.y_train[i * b:(i + 1) * b])
               for i in range(args.steps)]
    print(f'batch {b}, median of {args.rounds} rounds of {args.steps} steps')
    print(f"{'model':12} {'path':11} {'no-dp s/step':>12} {'dp s/step':>10} {'ratio':>6}")
    for name in args.models.split(','):
        (base, _), (dp, path) = trainer(name, None, b), trainer(name, args.clipping, b)
        for model in (base, dp):
            timed(model, batches[:3])  # trace
        rounds = [(timed(base, batches), timed(dp, batches)) for _ in range(args.rounds)]
        base_s, dp_s = (statistics.median(r[i] for r in rounds) for i in (0, 1))
        print(f'{name:12} {path:11} {base_s:12.4f} {dp_s:10.4f} {dp_s / base_s:6.2f}', flush=True)


if __name__ == '__main__':
    main()
