"""Encrypted training under SMPC vs plaintext training of the same model, start and batches.

    .venv/bin/python benchmarks/smpc_training.py [--parties 3] [--num-train 10000]
        [--num-test 2000] [--credit-epochs 10] [--seeds 5] [--mnist-epochs 3] [--skip-mnist]
        [--precision F] [--quiet]
    .venv/bin/python benchmarks/smpc_training.py --diagnose [--precision F] [--seed S]

Rows: Credit Approval logistic regression and MLP (one data owner per
applicant, raw attributes standardized on shares), MNIST MLP on the first
`--num-train` training images (10 data owners, pixels as they are). Each run
trains encrypted (`tfpriv.experiments.encrypted.compare`), then the plaintext
twin (float64 NumPy, exact softmax) from the same Keras initialization and
batch order. The Credit rows are run for `--seeds` seeds (initialization and
batch order; the same seed for both twins): one test applicant of 131 is 0.76
points, so the accuracy goal (within 0.5 points) is judged on the mean over
the seeds, printed as mean ± sd (sample sd) with the gap of the means; the
largest single-seed gap is printed beside it. MNIST (2,000 test images) runs
the first seed only. Per run, the weights of both twins are compared after
every epoch (the shared ones revealed to an experimenter, outside the epoch's
cost figures): max |dW| per epoch on one line per run, the final one in the
table. Costs are means over a row's runs: seconds per epoch of both (each
run's fastest epoch: the machine is shared) and their ratio, the encrypted run
end to end (sharing, normalization, training and per-epoch evaluation), online
bytes per training example per epoch (offline dealer bytes apart) and rounds
per epoch. Each row's figure (first seed) goes to `--images`. Timings are wall
clock on this machine as it is loaded; the parties run in one process (no
network latency). Progress (rows, and each run's batches per epoch) goes to
stderr unless `--quiet`; stdout holds the command, the per-run lines, the
figure paths and the table.

`--diagnose` explains the differences between the twins instead (see `diagnose`):
the Credit MLP twins stepped in lockstep, with the ReLU decisions on which they
disagree per epoch.
"""

import argparse
import dataclasses
import os
import sys

import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# pylint: disable=wrong-import-position
from tfpriv.crypto.smpc import Encoding, SharedTensor
from tfpriv.crypto.smpc.checked import verified_cluster
from tfpriv.crypto.smpc.owners import column_bounds, standardize
from tfpriv.crypto.smpc.training import (DataSharing, DenseLayer, FitState, PlainOps, SecureOps,
                                         forward, layers_from_keras, sgd_step, share_data)
from tfpriv.experiments.encrypted import EncryptedExperiment, build, compare, load_data
from tfpriv.rng import RandomSource
from tfpriv.experiments.plotting import plot_histories
from tfpriv.experiments.progress import StderrProgress
from tfpriv.progress import each, prefixed

COLUMNS = ('row', 'seeds', 'enc acc', 'plain acc', 'gap (pts)', 'worst seed gap (pts)',
           'final max dW', 'enc s/epoch', 'plain s/epoch', 'ratio', 'end to end s',
           'online kB/example', 'offline kB/example', 'rounds/epoch')


def experiments(args):
    """(label, seeds, experiment of the first seed) per row."""
    precision = {} if args.precision is None else {'precision': args.precision}
    credit = dict(dataset='credit', parties=args.parties, epochs=args.credit_epochs,
                  batch_size=args.credit_batch_size, learning_rate=0.1, seed=args.seed,
                  **precision)
    seeds = list(range(args.seed, args.seed + args.seeds))
    rows = [('credit logreg', seeds, EncryptedExperiment(model='logreg', **credit)),
            ('credit mlp', seeds, EncryptedExperiment(model='mlp', **credit))]
    if not args.skip_mnist:
        rows.append((f'mnist mlp ({args.num_train})', [args.seed], EncryptedExperiment(
            dataset='mnist', model='mlp', num_train=args.num_train, num_test=args.num_test,
            parties=args.parties, epochs=args.mnist_epochs, batch_size=args.mnist_batch_size,
            learning_rate=args.mnist_learning_rate, owners=10, seed=args.seed, **precision)))
    return rows


def mean_sd(values):
    """'mean ± sd' (sample sd), or the value alone for one run."""
    values = np.asarray(values, np.float64)
    if len(values) == 1:
        return f'{values[0]:.4f}'
    return f'{values.mean():.4f} ± {values.std(ddof=1):.4f}'


def table_row(label, runs):
    """The row of `runs` (one Comparison per seed): accuracies as mean ± sd over the seeds,
    their gap (plaintext minus encrypted mean, points), costs as means over the runs."""
    summaries = [run.summary() for run in runs]
    enc = [s['encrypted_test_accuracy'] for s in summaries]
    plain = [s['plaintext_test_accuracy'] for s in summaries]

    def mean(key):
        return float(np.mean([s[key] for s in summaries]))
    return (label, str(len(runs)), mean_sd(enc), mean_sd(plain),
            f'{100 * (np.mean(plain) - np.mean(enc)):+.2f}',
            f'{max(abs(s["accuracy_gap_points"]) for s in summaries):.2f}',
            f'{max(s["final_weight_drift"] for s in summaries):.1e}',
            f'{mean("seconds_per_epoch"):.2f}', f'{mean("plaintext_seconds_per_epoch"):.4f}',
            f'{mean("seconds_per_epoch") / mean("plaintext_seconds_per_epoch"):.0f}x',
            f'{mean("end_to_end_seconds"):.1f}', f'{mean("bytes_per_example") / 1e3:.0f}',
            f'{mean("offline_bytes_per_example") / 1e3:.0f}', f'{mean("rounds_per_epoch"):.0f}')


def run_row(label, seeds, experiment, args, progress):
    """One Comparison per seed (same seed for both twins); the first seed's figure."""
    runs = []
    for seed in seeds:
        run = compare(dataclasses.replace(experiment, seed=seed),
                      prefixed(progress, f'{label}, seed {seed}: '), track_drift=True)
        s = run.summary()
        print(f'{label}, seed {seed}: encrypted {s["encrypted_test_accuracy"]:.4f}, plaintext '
              f'{s["plaintext_test_accuracy"]:.4f}, max |dW| per epoch '
              + ' '.join(f'{d:.1e}' for d in run.weight_drift), flush=True)
        runs.append(run)
    figure = plot_histories({'encrypted': runs[0].encrypted.history,
                             'plaintext': runs[0].plaintext.history},
                            os.path.join(args.images, f'smpc_training_{experiment.tag}.png'),
                            f'{label}: SMPC ({args.parties} parties) vs plaintext, seed {seeds[0]}')
    print(f'{label}: done, figure {figure}', flush=True)
    return runs


def relu_disagreements(secure, plain, x_shared, x_plain):
    """ReLU decisions [h > 0] of a batch on which the two twins disagree (masks revealed)."""
    masks = [[mask for _, mask in forward(state.layers, state.ops, x)[1] if mask is not None]
             for state, x in ((secure, x_shared), (plain, x_plain))]
    return sum(int(np.sum(a.reveal() != b)) for a, b in zip(*masks))


def diagnose(args):
    """Credit MLP, both twins stepped in lockstep from the same start and batches, with
    seeded SMPC randomness (reproducible, insecure): the standardized features' largest
    difference, then per epoch the ReLU decisions on which the twins disagreed, the
    largest weight difference, and on the test applicants (both weight sets applied to
    the plaintext features) the largest logit difference, the twin's smallest margin
    |z_1 - z_0| and the predictions that differ. Uses only APIs that commit 7a57b51
    also has, so the same command can be pointed (PYTHONPATH) at that commit's library."""
    experiment = EncryptedExperiment(model='mlp', seed=args.seed)
    precision = args.precision or experiment.precision
    data = load_data(experiment)
    model = build(experiment, data)
    cluster = verified_cluster(args.parties, Encoding(precision),
                               RandomSource(args.seed, 'benchmark --diagnose (insecure)'))
    split, _ = share_data(cluster, data, DataSharing())
    x, x_test = (np.asarray(v, np.float64) for v in (data.x_train, data.x_test))
    x, x_test = standardize(PlainOps, x, x_test, column_bounds(x))
    y = np.eye(data.num_classes)[np.asarray(data.y_train)]
    print(f'f = {precision}: standardized features, max |difference| '
          f'{np.max(np.abs(split.x_train.reveal() - x)):.1e}')
    owner = cluster.client('model owner')
    secure = FitState([DenseLayer(SharedTensor.share(cluster, layer.kernel, owner=owner),
                                  SharedTensor.share(cluster, layer.bias, owner=owner), layer.relu)
                       for layer in layers_from_keras(model)], SecureOps, cluster)
    plain = FitState(layers_from_keras(model), PlainOps)
    decisions = len(x) * sum(layer.kernel.shape[1] for layer in plain.layers if layer.relu)
    rng = np.random.default_rng(args.seed)
    for epoch in range(1, args.credit_epochs + 1):
        order, disagreements = rng.permutation(len(x)), 0
        for start in range(0, len(order), args.credit_batch_size):
            rows = order[start:start + args.credit_batch_size]
            disagreements += relu_disagreements(secure, plain, split.x_train[rows], x[rows])
            sgd_step(secure, split.x_train[rows], split.y_train[rows], 'cross_entropy', 0.1)
            sgd_step(plain, x[rows], y[rows], 'cross_entropy', 0.1)
        revealed = [DenseLayer(a.kernel.reveal(), a.bias.reveal(), a.relu) for a in secure.layers]
        drift = max(float(np.max(np.abs(getattr(a, name) - getattr(b, name))))
                    for a, b in zip(revealed, plain.layers) for name in ('kernel', 'bias'))
        z_secure, z_plain = (forward(layers, PlainOps, x_test)[0]
                             for layers in (revealed, plain.layers))
        margins = np.abs(z_plain[:, 1] - z_plain[:, 0])  # two classes
        print(f'f = {precision}, epoch {epoch}: ReLU decisions that differ '
              f'{disagreements} of {decisions}, max |dW| {drift:.1e}; test logits: max '
              f'|difference| {np.max(np.abs(z_secure - z_plain)):.1e}, smallest margin '
              f'{margins.min():.1e}, predictions that differ '
              f'{int(np.sum(z_secure.argmax(1) != z_plain.argmax(1)))} of {len(x_test)}',
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--parties', type=int, default=3)
    parser.add_argument('--num-train', type=int, default=10000, help='MNIST training images')
    parser.add_argument('--num-test', type=int, default=2000, help='MNIST test images')
    parser.add_argument('--credit-epochs', type=int, default=10)
    parser.add_argument('--credit-batch-size', type=int, default=64)
    parser.add_argument('--seeds', type=int, default=5,
                        help='Credit rows: seeds --seed, --seed + 1, ... (MNIST: --seed only)')
    parser.add_argument('--mnist-epochs', type=int, default=3)
    parser.add_argument('--mnist-batch-size', type=int, default=64)
    parser.add_argument('--mnist-learning-rate', type=float, default=0.2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--skip-mnist', action='store_true')
    parser.add_argument('--images', default='images')
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    parser.add_argument('--precision', type=int, default=None,
                        help='fixed-point fractional bits (default: the experiments\' default)')
    parser.add_argument('--diagnose', action='store_true',
                        help='only the Credit MLP twins in lockstep: ReLU disagreements and '
                             'weight drift per epoch (seeded, insecure SMPC randomness)')
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f'--seeds must be >= 1, got {args.seeds}')
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    print('command: python3 benchmarks/smpc_training.py ' + ' '.join(sys.argv[1:]))
    if args.diagnose:
        diagnose(args)
        return
    table = [table_row(label, run_row(label, seeds, experiment, args, progress))
             for label, seeds, experiment in each(progress, 'rows', experiments(args))]
    print('| ' + ' | '.join(COLUMNS) + ' |')
    print('|' + '---|' * len(COLUMNS))
    for row in table:
        print('| ' + ' | '.join(row) + ' |')


if __name__ == '__main__':
    main()
