"""Encrypted training under SMPC vs plaintext training of the same model, start and batches.

    .venv/bin/python benchmarks/smpc_training.py [--parties 3] [--num-train 10000]
        [--num-test 2000] [--credit-epochs 10] [--mnist-epochs 3] [--skip-mnist] [--quiet]

Rows: Credit Approval logistic regression and MLP (one data owner per
applicant, raw attributes standardized on shares), MNIST MLP on the first
`--num-train` training images (10 data owners, pixels as they are). Each row
trains encrypted (`tfpriv.experiments.encrypted.compare`), then the plaintext
twin (float64 NumPy, exact softmax) from the same Keras initialization and
batch order, and reports: final test accuracy of both and the gap in points,
seconds per epoch of both (each run's fastest epoch: the machine is shared) and
their ratio, the encrypted run end to end
(sharing, normalization, training and per-epoch evaluation), online bytes per
training example per epoch (offline dealer bytes apart) and rounds per epoch.
Each row's figure goes to `--images`. Timings are wall clock on this machine
as it is loaded; the parties run in one process (no network latency).
Progress (rows, and each run's batches per epoch) goes to stderr unless `--quiet`;
stdout holds the command, the rows' figure paths and the table.
"""

import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# pylint: disable=wrong-import-position
from tfpriv.experiments.encrypted import EncryptedExperiment, compare
from tfpriv.experiments.plotting import plot_histories
from tfpriv.experiments.progress import StderrProgress
from tfpriv.progress import each, prefixed

COLUMNS = ('row', 'enc acc', 'plain acc', 'gap (pts)', 'enc s/epoch', 'plain s/epoch', 'ratio',
           'end to end s', 'online kB/example', 'offline kB/example', 'rounds/epoch')


def experiments(args):
    credit = dict(dataset='credit', parties=args.parties, epochs=args.credit_epochs,
                  batch_size=args.credit_batch_size, learning_rate=0.1, seed=args.seed)
    rows = [('credit logreg', EncryptedExperiment(model='logreg', **credit)),
            ('credit mlp', EncryptedExperiment(model='mlp', **credit))]
    if not args.skip_mnist:
        rows.append((f'mnist mlp ({args.num_train})', EncryptedExperiment(
            dataset='mnist', model='mlp', num_train=args.num_train, num_test=args.num_test,
            parties=args.parties, epochs=args.mnist_epochs, batch_size=args.mnist_batch_size,
            learning_rate=args.mnist_learning_rate, owners=10, seed=args.seed)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--parties', type=int, default=3)
    parser.add_argument('--num-train', type=int, default=10000, help='MNIST training images')
    parser.add_argument('--num-test', type=int, default=2000, help='MNIST test images')
    parser.add_argument('--credit-epochs', type=int, default=10)
    parser.add_argument('--credit-batch-size', type=int, default=64)
    parser.add_argument('--mnist-epochs', type=int, default=3)
    parser.add_argument('--mnist-batch-size', type=int, default=64)
    parser.add_argument('--mnist-learning-rate', type=float, default=0.2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--skip-mnist', action='store_true')
    parser.add_argument('--images', default='images')
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    args = parser.parse_args()
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    print('command: python3 benchmarks/smpc_training.py ' + ' '.join(sys.argv[1:]))
    table = []
    for label, experiment in each(progress, 'rows', experiments(args)):
        result = compare(experiment, prefixed(progress, f'{label}: '))
        s = result.summary()
        table.append((label, f"{s['encrypted_test_accuracy']:.4f}",
                      f"{s['plaintext_test_accuracy']:.4f}", f"{s['accuracy_gap_points']:+.2f}",
                      f"{s['seconds_per_epoch']:.2f}", f"{s['plaintext_seconds_per_epoch']:.4f}",
                      f"{s['slowdown']:.0f}x", f"{s['end_to_end_seconds']:.1f}",
                      f"{s['bytes_per_example'] / 1e3:.0f}",
                      f"{s['offline_bytes_per_example'] / 1e3:.0f}",
                      f"{s['rounds_per_epoch']:.0f}"))
        figure = plot_histories({'encrypted': result.encrypted.history,
                                 'plaintext': result.plaintext.history},
                                os.path.join(args.images, f'smpc_training_{experiment.tag}.png'),
                                f'{label}: SMPC ({args.parties} parties) vs plaintext')
        print(f'{label}: done, figure {figure}', flush=True)
    print('| ' + ' | '.join(COLUMNS) + ' |')
    print('|' + '---|' * len(COLUMNS))
    for row in table:
        print('| ' + ' | '.join(row) + ' |')


if __name__ == '__main__':
    main()
