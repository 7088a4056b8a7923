"""Empirical privacy audit of no-DP vs DP-SGD training: MIA and a canary ε lower bound.

    PYTHONPATH=. .venv/bin/python benchmarks/dp_audit.py [--full] [--models mlp cnn] [--seeds 0 1 2]
        [--quiet]

For each seed and model, trains once without DP (Adam) and once with DP-SGD (`make_private`,
σ calibrated to `--target-epsilon` by the RDP accountant) through
`tfpriv.dp.audit.audit_training`: members are `--num-train` random MNIST training
images, non-members as many unused training images, and `--num-canaries`
mislabelled canaries are each added with probability 1/2. Prints test accuracy, the
accountant's ε upper bound (RDP and PLD), the threshold and trained MIA AUC /
advantage and the canary ε lower bound (Steinke, Nasr, Jagielski 2023) at 95%
confidence and the run's δ, per run and as mean [min, max] over the seeds; writes
images/dp_audit.png (means, whiskers from min to max).

Default: the 1,000-example set where the non-DP model overfits. `--full`: 49,000
members, 10,000 non-members and 1,000 canaries (all 60,000 training images).
Progress (runs, and each run's training epochs) goes to stderr unless `--quiet`;
stdout holds the rows, the summary and the figure's path.
"""

import argparse
import dataclasses
import math
import os
import time
from typing import Dict, List, Optional, Tuple

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

from tfpriv.data import load_dataset  # pylint: disable=wrong-import-position
from tfpriv.dp import make_private  # pylint: disable=wrong-import-position
from tfpriv.dp.audit import AuditReport, audit_training  # pylint: disable=wrong-import-position
from tfpriv.experiments.progress import StderrProgress  # pylint: disable=wrong-import-position
from tfpriv.progress import Progress, each, report  # pylint: disable=wrong-import-position
from tfpriv.model import build_model  # pylint: disable=wrong-import-position

DELTA = 1e-5  # < 1/n for every n here, and 2·m·δ ≤ 0.02 keeps the audit's δ term small


@dataclasses.dataclass
class Row:
    model: str
    setting: str
    seed: int
    noise_multiplier: float
    eps_rdp: float
    eps_pld: float
    report: AuditReport
    seconds: float


def epoch_reporter(progress: Optional[Progress], label: str,
                   epochs: int) -> tf.keras.callbacks.Callback:
    """A Keras callback telling `progress` (label, epochs done, epochs); reports 0 now."""
    report(progress, label, 0, epochs)
    return tf.keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: report(progress, label, epoch + 1, epochs))


def make_train_fn(model_name: str, dp: bool, seed: int, args, record: dict,
                  progress: Optional[Progress] = None):
    """train_fn(x, y) for audit_training: a fresh model, no-DP Adam or DP-SGD on (x, y)."""

    def train_fn(x: np.ndarray, y: np.ndarray) -> tf.keras.Model:
        tf.keras.utils.set_random_seed(seed)
        model = build_model(model_name, x.shape[1:], 10, dropout=0.0)
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = tf.keras.optimizers.Adam(args.learning_rate)
        epochs = args.dp_epochs if dp else args.epochs
        callbacks = [epoch_reporter(progress, f'{model_name} {"dp" if dp else "no-dp"} seed '
                                              f'{seed} epochs', epochs)]
        if dp:
            private = make_private(model, num_examples=len(x), batch_size=args.batch_size,
                                   l2_norm_clip=args.l2_norm_clip, target_epsilon=args.target_epsilon,
                                   epochs=epochs, delta=DELTA, optimizer='adam',
                                   learning_rate=args.dp_learning_rate)
            record.update(sigma=private.noise_multiplier, rdp=private.epsilon(epochs),
                          pld=private.epsilon(epochs, 'pld'))
            private.model.compile(optimizer=private.optimizer, loss=private.loss)
            private.model.fit(private.dataset(x, y, seed=seed), epochs=epochs, verbose=0,
                              callbacks=callbacks)
            return private.model
        model.compile(optimizer=optimizer, loss=loss)
        model.fit(x, y, batch_size=args.batch_size, epochs=epochs, verbose=0,
                  callbacks=callbacks)
        return model

    return train_fn


def run_case(model_name: str, dp: bool, seed: int, data, args,
             progress: Optional[Progress] = None) -> Row:
    record = {'sigma': 0.0, 'rdp': math.inf, 'pld': math.inf}
    start = time.perf_counter()
    audit = audit_training(make_train_fn(model_name, dp, seed, args, record, progress), data,
                            num_train=args.num_train, num_nonmembers=args.num_nonmembers,
                            num_canaries=args.num_canaries, seed=seed, delta=DELTA)
    return Row(model_name, 'dp' if dp else 'no-dp', seed, record['sigma'], record['rdp'],
               record['pld'], audit, time.perf_counter() - start)


HEADER = (f"{'model':5} {'setting':7} {'seed':>4} {'sigma':>6} {'test acc':>8} {'eps RDP':>8} {'eps PLD':>8} "
          f"{'MIA AUC':>8} {'MIA adv':>8} {'LR AUC':>7} {'canary eps_lb':>13} {'guesses':>9} "
          f"{'s':>5}")


def format_row(row: Row) -> str:
    r = row.report
    return (f'{row.model:5} {row.setting:7} {row.seed:4} {row.noise_multiplier:6.3f} {r.test_accuracy:8.4f} '
            f'{row.eps_rdp:8.3f} {row.eps_pld:8.3f} {r.mia_auc:8.3f} {r.mia_advantage:8.3f} '
            f'{r.trained_attack_auc:7.3f} {r.canary_eps_lower:13.3f} '
            f'{r.canary_correct:>4}/{r.canary_guesses:<4} {row.seconds:5.0f}')


def group(rows: List[Row]) -> Dict[Tuple[str, str], List[Row]]:
    """Rows by (model, setting), in order of first appearance."""
    groups: Dict[Tuple[str, str], List[Row]] = {}
    for row in rows:
        groups.setdefault((row.model, row.setting), []).append(row)
    return groups


def print_summary(rows: List[Row]) -> None:
    """Mean [min, max] over seeds of the headline figures."""
    print('\nover seeds: mean [min, max]')
    print(f"{'model':5} {'setting':7} {'test acc':>22} {'eps RDP':>8} {'MIA AUC':>22} "
          f"{'canary eps_lb':>22}")
    for (model, setting), members in group(rows).items():
        def stats(values):
            return f'{np.mean(values):.3f} [{np.min(values):.3f}, {np.max(values):.3f}]'
        print(f'{model:5} {setting:7} {stats([r.report.test_accuracy for r in members]):>22} '
              f'{max(r.eps_rdp for r in members):8.3f} '
              f'{stats([r.report.mia_auc for r in members]):>22} '
              f'{stats([r.report.canary_eps_lower for r in members]):>22}')


def _bars(axis, positions, groups, getter, offset, width, label, cap=None):
    """Mean bar over seeds with a [min, max] whisker; values above `cap` drawn at cap, labelled ∞."""
    values = [np.array([getter(row) for row in rows]) for rows in groups]
    means = np.array([v.mean() for v in values])
    shown = means if cap is None else np.minimum(means, cap)
    lows = [m - v.min() if np.isfinite(m) else 0.0 for m, v in zip(means, values)]
    highs = [v.max() - m if np.isfinite(m) else 0.0 for m, v in zip(means, values)]
    bars = axis.bar(positions + offset, shown, width, yerr=[lows, highs], capsize=2, label=label)
    if cap is not None:
        axis.bar_label(bars, [f'{m:.2f}' if np.isfinite(m) else '∞' for m in means], fontsize=7)


def plot(rows: List[Row], path: str, title: str) -> None:
    """Left: MIA AUC; right: ε upper bounds (RDP, PLD) vs the canary lower bound (mean over seeds)."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    groups = group(rows)
    labels = [f'{model}\n{setting}' for model, setting in groups]
    groups = list(groups.values())
    positions = np.arange(len(groups))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _bars(left, positions, groups, lambda r: r.report.mia_auc, -0.2, 0.4, 'threshold')
    _bars(left, positions, groups, lambda r: r.report.trained_attack_auc, 0.2, 0.4,
          'trained (logistic)')
    left.axhline(0.5, color='gray', linestyle='--', linewidth=1, label='blind guess')
    left.set(xticks=positions, xticklabels=labels, ylim=(0.4, 1.0), ylabel='MIA ROC AUC',
             title='membership inference (members vs unused training images)')
    left.legend(fontsize=8)
    cap = max([row.eps_rdp for row in rows if math.isfinite(row.eps_rdp)] +
              [row.report.canary_eps_lower for row in rows]) * 1.6 + 0.5
    for getter, offset, label in ((lambda r: r.eps_rdp, -0.27, 'upper: RDP'),
                                  (lambda r: r.eps_pld, 0.0, 'upper: PLD'),
                                  (lambda r: r.report.canary_eps_lower, 0.27,
                                   'lower: canary audit (95%)')):
        _bars(right, positions, groups, getter, offset, 0.27, label, cap)
    right.set(xticks=positions, xticklabels=labels, ylim=(0, cap * 1.3), ylabel=f'ε (δ = {DELTA:g})',
              title='proven upper bound vs measured lower bound')
    right.legend(fontsize=8, loc='upper center', ncol=3)
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--full', action='store_true', help='all 60,000 MNIST training images')
    parser.add_argument('--models', nargs='+', default=['mlp', 'cnn'], choices=['mlp', 'cnn'])
    parser.add_argument('--settings', nargs='+', default=['no-dp', 'dp'], choices=['no-dp', 'dp'])
    parser.add_argument('--num-train', type=int, default=None, help='members (1,000; --full 49,000)')
    parser.add_argument('--num-nonmembers', type=int, default=None)
    parser.add_argument('--num-canaries', type=int, default=None, help='m (200; --full 1,000)')
    parser.add_argument('--epochs', type=int, default=None, help='no-DP epochs (200; --full 15)')
    parser.add_argument('--dp-epochs', type=int, default=None, help='DP epochs (100; --full 15)')
    parser.add_argument('--batch-size', type=int, default=None, help='50; --full 250')
    parser.add_argument('--learning-rate', type=float, default=1e-3, help='no-DP Adam')
    parser.add_argument('--dp-learning-rate', type=float, default=3e-3, help='DP Adam')
    parser.add_argument('--l2-norm-clip', type=float, default=1.0)
    parser.add_argument('--target-epsilon', type=float, default=3.0, help='RDP ε of the DP run')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='one audited run per seed (split, canaries, initialisation)')
    parser.add_argument('--out', default=None, help='figure (images/dp_audit[_full].png)')
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    args = parser.parse_args(argv)
    small = {'num_train': 1000, 'num_nonmembers': 1000, 'num_canaries': 200, 'epochs': 200,
             'dp_epochs': 100, 'batch_size': 50, 'out': 'images/dp_audit.png'}
    full = {'num_train': 49000, 'num_nonmembers': 10000, 'num_canaries': 1000, 'epochs': 15,
            'dp_epochs': 15, 'batch_size': 250, 'out': 'images/dp_audit_full.png'}
    for key, value in (full if args.full else small).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main() -> None:
    args = parse_args()
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    progress.status('loading MNIST')
    data = load_dataset('mnist')
    size = 'full MNIST' if args.full else f'{args.num_train:,}-example set'
    print(f'{size}: {args.num_train} members, {args.num_nonmembers} non-members, '
          f'{args.num_canaries} canaries (each in w.p. 1/2), {args.epochs} epochs (DP: '
          f'{args.dp_epochs}), batch '
          f'{args.batch_size}, C={args.l2_norm_clip}, DP target eps={args.target_epsilon} '
          f'(RDP), delta={DELTA:g}, seeds {args.seeds}')
    print(HEADER, flush=True)
    rows = []
    cases = [(seed, name, setting) for seed in args.seeds for name in args.models
             for setting in args.settings]
    for seed, name, setting in each(progress, 'runs', cases):
        rows.append(run_case(name, setting == 'dp', seed, data, args, progress))
        print(format_row(rows[-1]), flush=True)
    print_summary(rows)
    plot(rows, args.out, f'MNIST, {size}: no-DP vs DP-SGD (target ε = {args.target_epsilon})')
    print(f'figure: {args.out}')


if __name__ == '__main__':
    main()
