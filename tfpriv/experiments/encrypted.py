"""`train.py --encrypted-train`: training on secret-shared data under SMPC, beside plaintext.

The data owners secret-share their records among `--parties` computing parties
(Credit Approval: one owner per applicant; `--owner-split columns` splits the
columns among `--owners` owners instead), the features are standardized on
shares (`--normalize`, default on for credit, off for MNIST pixels), and the
model (`--model mlp`, or `--logistic-regression`) is trained with SGD on
shares (`tfpriv.crypto.smpc.training`). The same model, initialization,
batches and normalization are then trained in plaintext, and both runs are
drawn in one figure under `--images`.

Common flags used: `--dataset`, `--num-train` (MNIST default 10,000),
`--num-test` (MNIST default 2,000), `--epochs`, `--learning-rate`,
`--batch-size`, `--seed` (initial weights and batch order), `--model`,
`--activation` (relu only), `--out`, `--images`, `--overwrite` (replace an earlier
run's metrics.json). Progress is reported per batch (`tfpriv.progress`); the
per-epoch loss and accuracy are opened as aggregates only. At the end the model
is revealed to the model owner only (saved under `--out`) unless `--keep-shared`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Dict, List, Optional

import numpy as np

from tfpriv.crypto.smpc import Encoding
from tfpriv.crypto.smpc.checked import verified_cluster
from tfpriv.crypto.smpc.party import Party
from tfpriv.crypto.smpc.owners import MAX_TRAINING_PRECISION, PARTITIONS, credit_records
from tfpriv.crypto.smpc.training import (LOSSES, DataSharing, SgdConfig, logistic_regression,
                                         train_encrypted, train_plaintext)
from tfpriv.data import load_credit, load_dataset
from tfpriv.experiments import report
from tfpriv.progress import Progress
from tfpriv.rng import RandomSource

MNIST_DEFAULT_TRAIN = 10000
MNIST_DEFAULT_TEST = 2000
MAX_PARTIES = 16


def add_arguments(parser) -> None:
    """Adds the `--encrypted-train`-only flags to `parser` (a parser or argument group)."""
    add = parser.add_argument
    add('--parties', type=int, default=3,
        help='computing parties n >= 2 (default 3), plus a dealer')
    add('--loss', choices=LOSSES, default='cross_entropy',
        help='cross_entropy (secure softmax) or mse (default cross_entropy)')
    add('--logistic-regression', action='store_true',
        help='train multinomial logistic regression instead of --model')
    add('--owner-split', choices=PARTITIONS, default='rows',
        help='data owners hold records (rows, default) or columns')
    add('--owners', type=int, default=None,
        help='number of data owners (default: one per record for rows, 2 for columns)')
    add('--normalize', action=argparse.BooleanOptionalAction, default=None,
        help='standardize the features on shares (default: on for credit, off for mnist)')
    add('--precision', type=int, default=MAX_TRAINING_PRECISION,
        help=f'fixed-point fractional bits f (default and most: {MAX_TRAINING_PRECISION})')
    add('--check-overflow', action='store_true',
        help='test every product securely for fixed-point overflow (slower; stops with an '
             'error instead of wrapping around, e.g. when the learning rate diverges)')
    add('--keep-shared', action='store_true',
        help='never reveal the trained model (it stays shared among the parties)')
    add('--smpc-seeded', action='store_true',
        help='draw shares and dealer randomness from --seed (reproducible, INSECURE)')


@dataclasses.dataclass(frozen=True)
class EncryptedExperiment:
    """One encrypted-vs-plaintext comparison (see the module docstring for the meaning)."""

    dataset: str = 'credit'
    model: str = 'mlp'  # or 'logreg'
    num_train: Optional[int] = None
    num_test: Optional[int] = None
    parties: int = 3
    loss: str = 'cross_entropy'
    epochs: int = 5
    learning_rate: float = 0.1
    batch_size: int = 32
    seed: int = 0
    owners: Optional[int] = None
    owner_split: str = 'rows'
    normalize: Optional[bool] = None
    precision: int = MAX_TRAINING_PRECISION
    seeded: bool = False
    check_overflow: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> 'EncryptedExperiment':
        return cls(dataset=args.dataset, model='logreg' if args.logistic_regression else args.model,
                   num_train=args.num_train, num_test=args.num_test, parties=args.parties,
                   loss=args.loss, epochs=args.epochs, learning_rate=args.learning_rate,
                   batch_size=args.batch_size, seed=args.seed, owners=args.owners,
                   owner_split=args.owner_split, normalize=args.normalize,
                   precision=args.precision, seeded=args.smpc_seeded,
                   check_overflow=args.check_overflow)

    @property
    def tag(self) -> str:
        return f'encrypted_{self.dataset}_{self.model}_{self.parties}p'


def validate(args: argparse.Namespace) -> List[str]:
    """Problems with the encrypted-training flags, as messages (empty when fine)."""
    checks = [
        (2 <= args.parties <= MAX_PARTIES,
         f'--parties must be in [2, {MAX_PARTIES}], got {args.parties}'),
        (args.logistic_regression or args.model == 'mlp',
         f'--encrypted-train trains --model mlp or --logistic-regression (Dense and ReLU layers '
         f'only), got --model {args.model}'),
        (args.activation == 'relu',
         f'--encrypted-train needs --activation relu (exact on shares), got {args.activation}'),
        (args.owners is None or args.owners >= 1, f'--owners must be >= 1, got {args.owners}'),
        (8 <= args.precision <= MAX_TRAINING_PRECISION,
         f'--precision must be in [8, {MAX_TRAINING_PRECISION}] (the secure 1/sqrt of the '
         f'normalization needs the headroom above), got {args.precision}'),
        (args.epochs >= 1, f'--epochs must be >= 1, got {args.epochs}'),
        (args.batch_size >= 1, f'--batch-size must be >= 1, got {args.batch_size}'),
    ]
    errors = [message for ok, message in checks if not ok]
    errors += report.overwrite_problems(_out(args), getattr(args, 'overwrite', False))
    if args.owners is not None and args.owners >= 1:
        limit = _owner_limit(args)
        if args.owners > limit:
            errors.append(f'--owners must be at most {limit} (the number of '
                          f'{"training records" if args.owner_split == "rows" else "columns"}), '
                          f'got {args.owners}')
    return errors


def _owner_limit(args: argparse.Namespace) -> int:
    if args.owner_split == 'columns':
        if args.dataset == 'credit':
            return int(load_credit().x_train.shape[1])
        return 784
    from tfpriv.experiments.cli import train_size  # pylint: disable=import-outside-toplevel
    if args.dataset == 'mnist' and args.num_train is None:
        return MNIST_DEFAULT_TRAIN
    return train_size(args)


def load_data(experiment: EncryptedExperiment):
    """The owners' records: Credit Approval with raw numeric attributes, or MNIST pixels."""
    if experiment.dataset == 'credit':
        return credit_records(seed=0).subset(experiment.num_train, experiment.num_test)
    return load_dataset(experiment.dataset).subset(experiment.num_train or MNIST_DEFAULT_TRAIN,
                                                   experiment.num_test or MNIST_DEFAULT_TEST)


def build(experiment: EncryptedExperiment, data):
    """The Keras model, initialized from `experiment.seed`."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tfpriv.model import build_model  # pylint: disable=import-outside-toplevel
    tf.keras.utils.set_random_seed(experiment.seed)
    if experiment.model == 'logreg':
        return logistic_regression(data.input_shape, data.num_classes)
    return build_model(experiment.model, data.input_shape, data.num_classes, dropout=0.0)


def _out(args: argparse.Namespace) -> str:
    return os.path.join(args.out or 'runs', EncryptedExperiment.from_args(args).tag)


def epoch_progress(progress: Optional[Progress], label: str, epochs: int):
    """The (epoch, batch, batches) hook of `training.fit` as `progress('<label> epoch e/E', b, B)`."""
    if progress is None:
        return None

    def hook(epoch: int, batch: int, batches: int) -> None:
        progress(f'{label} epoch {epoch}/{epochs}', batch, batches)
    return hook


@dataclasses.dataclass
class WeightLog:
    """The weights after each epoch (an `on_epoch` hook of `training.fit`), as float64
    arrays: a shared model's are revealed to the party `to` (a measurement, not training)."""

    to: Optional[Party] = None
    epochs: List[List[np.ndarray]] = dataclasses.field(default_factory=list)

    def __call__(self, epoch: int, state) -> None:
        del epoch
        arrays = [w for layer in state.layers for w in (layer.kernel, layer.bias)]
        self.epochs.append([np.asarray(w.reveal(to=self.to) if self.to is not None else w,
                                       np.float64) for w in arrays])

    def drift(self, other: 'WeightLog') -> List[float]:
        """max |w - w'| over all weights, per epoch, against `other`'s weights."""
        return [max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs))
                for ours, theirs in zip(self.epochs, other.epochs)]


@dataclasses.dataclass
class Comparison:
    """Both runs of an experiment and the figures of the benchmark table.

    Seconds per epoch are each run's fastest epoch (training only, without the
    per-epoch test evaluation); bytes and rounds are per training epoch.
    """

    experiment: EncryptedExperiment
    encrypted: object  # training.TrainingRun
    plaintext: object
    num_train: int
    end_to_end_seconds: float
    weight_drift: Optional[List[float]] = None  # per epoch, with `compare(track_drift=True)`

    def summary(self) -> Dict[str, float]:
        enc, plain = self.encrypted.history, self.plaintext.history
        # the fastest epoch of each run: the least disturbed by other jobs on the machine
        seconds, plain_seconds = min(enc['seconds']), min(plain['seconds'])
        return {
            'encrypted_test_accuracy': enc['val_accuracy'][-1],
            'plaintext_test_accuracy': plain['val_accuracy'][-1],
            'accuracy_gap_points': 100 * (plain['val_accuracy'][-1] - enc['val_accuracy'][-1]),
            'seconds_per_epoch': float(seconds),
            'plaintext_seconds_per_epoch': float(plain_seconds),
            'slowdown': float(seconds / max(plain_seconds, 1e-9)),
            'end_to_end_seconds': self.end_to_end_seconds,
            'bytes_per_example': float(np.mean(enc['bytes']) / self.num_train),
            'offline_bytes_per_example': float(np.mean(enc['offline_bytes']) / self.num_train),
            'rounds_per_epoch': float(np.mean(enc['rounds'])),
            'input_bytes': float(self.encrypted.input_traffic.bytes),
            'final_weight_drift': self.weight_drift[-1] if self.weight_drift else None,
        }


def compare(experiment: EncryptedExperiment, progress: Optional[Progress] = None,
            track_drift: bool = False) -> Comparison:
    """Trains the experiment's model encrypted, then in plaintext from the same start.

    With `track_drift`, the shared weights are also revealed to an 'experimenter'
    after each epoch (outside the epoch's cost figures) and compared with the
    plaintext twin's: `Comparison.weight_drift`.
    """
    data = load_data(experiment)
    model = build(experiment, data)
    config = SgdConfig(experiment.learning_rate, experiment.epochs, experiment.batch_size,
                       experiment.loss, experiment.seed)
    normalize = experiment.normalize if experiment.normalize is not None \
        else experiment.dataset == 'credit'
    sharing = DataSharing(experiment.owner_split, experiment.owners, normalize)
    rng = RandomSource(experiment.seed, 'SMPC shares and dealer randomness (--smpc-seeded)') \
        if experiment.seeded else RandomSource()
    cluster = verified_cluster(experiment.parties, Encoding(experiment.precision), rng,
                               check_overflow=experiment.check_overflow)
    logs = (WeightLog(cluster.client('experimenter')), WeightLog()) if track_drift \
        else (None, None)
    start = time.perf_counter()
    encrypted = train_encrypted(model, data, cluster, config, sharing,
                                epoch_progress(progress, 'encrypted', config.epochs),
                                on_epoch=logs[0])
    end_to_end = time.perf_counter() - start
    plaintext = train_plaintext(model, data, config, sharing,
                                epoch_progress(progress, 'plaintext', config.epochs), logs[1])
    drift = logs[0].drift(logs[1]) if track_drift else None
    return Comparison(experiment, encrypted, plaintext, data.num_train, end_to_end, drift)


def _save_model(comparison: Comparison, out: str) -> str:
    """Reveals the model to the model owner only and saves its weights under `out`."""
    model = comparison.encrypted.model
    layers = model.reveal(to=model.cluster.client('model owner'))
    path = os.path.join(out, 'weights.npz')
    np.savez(path, **{f'{name}{i}': getattr(layer, name) for i, layer in enumerate(layers)
                      for name in ('kernel', 'bias')})
    return path


def run(args: argparse.Namespace, progress: Optional[Progress] = None) -> report.RunReport:
    """Runs `--encrypted-train`: both trainings, metrics.json, figure, revealed model."""
    from tfpriv.experiments import plotting  # pylint: disable=import-outside-toplevel
    experiment = EncryptedExperiment.from_args(args)
    comparison = compare(experiment, progress)
    out = _out(args)
    os.makedirs(out, exist_ok=True)
    summary = comparison.summary()
    summary['weights'] = None if args.keep_shared else _save_model(comparison, out)
    summary['figure'] = plotting.plot_histories(
        {'encrypted': comparison.encrypted.history, 'plaintext': comparison.plaintext.history},
        os.path.join(args.images, f'{experiment.tag}.png'),
        f'{experiment.model.upper()} on {experiment.dataset}: SMPC ({experiment.parties} parties) '
        f'vs plaintext, same start and batches')
    metrics = {'experiment': dataclasses.asdict(experiment), 'summary': summary,
               'encrypted': comparison.encrypted.history, 'plaintext': comparison.plaintext.history}
    path = report.write_metrics(out, metrics)
    return report.RunReport(
        title=f'Encrypted training (SMPC, {experiment.parties} parties): {experiment.model} on '
              f'{experiment.dataset}, {comparison.num_train} examples, {experiment.epochs} epochs',
        accuracy=[('encrypted', summary['encrypted_test_accuracy']),
                  ('plaintext, same start and batches', summary['plaintext_test_accuracy'])],
        epsilons=[], no_privacy='none (SMPC hides the data during training, not from the model)',
        notes=[('cost', f"{summary['seconds_per_epoch']:.1f} s per epoch ({summary['slowdown']:.0f}x "
                        f"plaintext), {summary['bytes_per_example'] / 1e3:.1f} kB per example and "
                        f"{summary['rounds_per_epoch']:.0f} rounds per epoch")],
        files=[('figure', summary['figure']), ('metrics', path)]
        + ([('weights', summary['weights'])] if summary['weights'] else []),
        metrics=metrics)


def interrupted(args: argparse.Namespace, since: float) -> str:
    """What a Ctrl-C leaves: nothing (encrypted training keeps no checkpoint)."""
    del args, since
    return f'nothing was saved (no checkpoints under SMPC): rerun `{report.rerun_command(False)}`'
