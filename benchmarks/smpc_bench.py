"""SMPC costs: encrypted MNIST inference (MLP, CNN) and secure aggregation, in one run.

    .venv/bin/python benchmarks/smpc_bench.py [--parties 3] [--images 10000]
        [--epochs 2] [--model-dir DIR] [--skip-cnn] [--quiet]

1. Trains the tfpriv MLP and CNN on the full MNIST training set (non-DP,
   `--epochs` epochs of Adam; with `--model-dir` the trained models are saved
   there and reused by later runs), then evaluates each on the first `--images`
   test images both with Keras and under SMPC among `--parties` parties
   (`tfpriv.crypto.smpc.inference.evaluate_encrypted`): accuracy of both,
   disagreeing predictions, seconds, images per second, ratio to the plaintext
   Keras time measured in the same run, bytes per image and rounds per batch.
2. Aggregates 10 clients x 1,000,000 weights with `SmpcAggregator` and compares
   with a plain NumPy weighted sum of the same updates.
Progress (training epochs, encrypted batches, aggregated clients) goes to stderr
unless `--quiet`; stdout holds the figures only.
"""

import argparse
import os
import time
from typing import Optional

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

from tfpriv.crypto.smpc.inference import evaluate_encrypted  # pylint: disable=wrong-import-position
from tfpriv.crypto.smpc.secagg import SmpcAggregator  # pylint: disable=wrong-import-position
from tfpriv.data import load_mnist  # pylint: disable=wrong-import-position
from tfpriv.experiments.progress import StderrProgress  # pylint: disable=wrong-import-position
from tfpriv.progress import Progress, prefixed, report  # pylint: disable=wrong-import-position
from tfpriv.model import build_model  # pylint: disable=wrong-import-position

BATCH_SIZES = {'mlp': 1000, 'cnn': 50}  # the fastest here; Keras runs batches of 1024


def trained_model(name: str, data, epochs: int, model_dir: str, progress: Optional[Progress]):
    path = os.path.join(model_dir, f'smpc_bench_{name}_{epochs}ep.keras') if model_dir else None
    if path and os.path.exists(path):
        print(f'{name}: loading {path}')
        return tf.keras.models.load_model(path)
    tf.keras.utils.set_random_seed(0)
    model = build_model(name, (28, 28, 1), 10)
    model.compile(tf.keras.optimizers.Adam(1e-3),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    label = f'{name} plaintext training epochs'
    report(progress, label, 0, epochs)
    epoch_done = tf.keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: report(progress, label, epoch + 1, epochs))
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=128, verbose=0,
              callbacks=[epoch_done])
    print(f'{name}: trained {epochs} epochs on {len(data.x_train)} images in '
          f'{time.perf_counter() - start:.0f} s')
    if path:
        os.makedirs(model_dir, exist_ok=True)
        model.save(path)
    return model


def inference(name: str, data, args, progress: Optional[Progress]) -> None:
    model = trained_model(name, data, args.epochs, args.model_dir, progress)
    images, labels = data.x_test[:args.images], data.y_test[:args.images]
    r = evaluate_encrypted(model, images, labels, num_parties=args.parties,
                           batch_size=BATCH_SIZES[name], progress=prefixed(progress, f'{name} '))
    print(f'{name}: {r.num_images} test images, {r.num_parties} parties, {r.precision} '
          f'fractional bits, batches of {r.batch_size}')
    print(f'  accuracy encrypted {100 * r.accuracy:.2f}%  plaintext '
          f'{100 * r.plaintext_accuracy:.2f}%  difference '
          f'{100 * (r.accuracy - r.plaintext_accuracy):+.2f} pp  disagreeing predictions '
          f'{r.disagreements}')
    print(f'  encrypted {r.seconds:.1f} s ({r.images_per_second:.1f} images/s)  plaintext Keras '
          f'{r.plaintext_seconds:.2f} s  ratio {r.slowdown:.1f}x')
    print(f'  online {r.bytes_per_image / 1e6:.3f} MB/image, dealer (offline) '
          f'{r.offline_bytes_per_image / 1e6:.3f} MB/image, {r.rounds_per_batch:.0f} rounds per '
          f'batch, model sharing {r.model_sharing_bytes / 1e6:.2f} MB once')
    batches = -(-r.num_images // r.batch_size)
    for op, traffic in sorted(r.by_operation.items(), key=lambda kv: -kv[1].bytes):
        print(f'    {op:<11} {traffic.rounds / batches:5.0f} rounds/batch '
              f'{traffic.bytes / r.num_images / 1e6:8.3f} MB/image')


def aggregation(args, progress: Optional[Progress]) -> None:
    rng = np.random.default_rng(0)
    clients, size = 10, 1_000_000
    updates = [[rng.normal(size=size).astype(np.float32)] for _ in range(clients)]
    weights = rng.uniform(100, 1000, size=clients)
    normalized = weights / weights.sum()
    start = time.perf_counter()
    plain = sum(w * u[0].astype(np.float64) for w, u in zip(normalized, updates))
    plain_seconds = time.perf_counter() - start
    aggregator = SmpcAggregator(args.parties, progress=prefixed(progress, 'secure aggregation '))
    average, stats = aggregator.aggregate(updates, weights)
    error = float(np.max(np.abs(average[0] - plain)))
    print(f'secure aggregation: {clients} clients x {size:,} weights, {args.parties} parties')
    print(f'  smpc {stats.seconds:.3f} s  plain weighted sum {plain_seconds:.3f} s  ratio '
          f'{stats.seconds / plain_seconds:.1f}x  max error {error:.2e}  '
          f'{stats.bytes_per_client / 1e6:.0f} MB sent per client, '
          f'{stats.bytes_total / 1e6:.0f} MB in all')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--parties', type=int, default=3)
    parser.add_argument('--images', type=int, default=10000)
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--model-dir', default='', help='save/reuse the trained models here')
    parser.add_argument('--skip-cnn', action='store_true')
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    args = parser.parse_args()
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    progress.status('loading MNIST')
    data = load_mnist()
    aggregation(args, progress)
    inference('mlp', data, args, progress)
    if not args.skip_cnn:
        inference('cnn', data, args, progress)


if __name__ == '__main__':
    main()
