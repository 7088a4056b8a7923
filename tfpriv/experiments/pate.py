"""`train.py --pate` flags: teachers, aggregator, noise, threshold, queries, second stage.

Shared flags read from train.py: `--model` (teachers' and student's
architecture), `--activation`, `--seed` (teachers, query choice, student),
`--delta` (default below 1/n for the teachers' n: 1e-5 for MNIST), `--num-train` (teachers use the first N training
images), `--out` (metrics.json goes to `<out>/pate`, default runs/pate, like the other
modes' run directories; an earlier run's is replaced only with `--overwrite`) and
`--images` (figures).
Teachers and student use Adam with learning rate 1e-3 and their own schedule
flags below, not `--learning-rate/--epochs/--batch-size` (whose defaults suit DP-SGD).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from typing import List, Optional

from tfpriv.dp.accounting import default_delta
from tfpriv.experiments import report
from tfpriv.experiments.flags import add_numbers, failed
from tfpriv.progress import Progress

AGGREGATORS = ('lnmax', 'gnmax', 'confident-gnmax')
DEFAULT_NOISE = {'lnmax': 0.05, 'gnmax': 40.0, 'confident-gnmax': 40.0}


_TEACHERS = (('--teachers', int, 250, 'number of teachers / disjoint shards'),
             ('--teacher-epochs', int, 40, 'epochs per teacher'))
# (flag, type, default, help) for `flags.add_numbers`.
_AGGREGATION = (('--pate-noise', float, None,
                 'γ of LNMax (default 0.05) or σ of GNMax / Confident-GNMax (default 40)'),
                ('--threshold', float, 200.0, 'Confident-GNMax threshold T'),
                ('--pate-sigma-threshold', float, 150.0, 'σ1 of the Confident-GNMax threshold check'),
                ('--queries', int, 400, 'pool images the student asks about'))
_STUDENT = (('--student-steps', int, 4000, 'student steps per round'),
            ('--student-rounds', int, 3, 'student self-training rounds'),
            ('--student-ensemble', int, 3, 'student networks averaged per round'))
_SECOND_STAGE = (
    ('--transfer-queries', int, 0, 'a second stage asking this many more queries of teachers retrained '
     "as heads on the first student's features; 0: one stage"),
    ('--transfer-threshold', float, 100.0, 'stage-2 threshold T'),
    ('--transfer-sigma-threshold', float, 40.0, 'stage-2 σ1'),
    ('--transfer-noise', float, 30.0, 'stage-2 σ2'),
    ('--transfer-min-confidence', float, 0.9,
     'stage 2 asks only about pool images the stage-1 student is this sure of'),
)


def add_arguments(parser) -> None:
    """Adds the PATE-specific flags to `parser` (an ArgumentParser or argument group)."""
    add_numbers(parser, _TEACHERS + _AGGREGATION + _STUDENT + _SECOND_STAGE, prefix='PATE: ')
    add = parser.add_argument
    add('--aggregator', choices=AGGREGATORS, default='confident-gnmax',
        help='PATE: noisy aggregation (default confident-gnmax)')
    add('--teacher-augment', action='store_true',
        help='PATE: train teachers on randomly rotated/scaled/shifted images (more agreement)')
    add('--pate-cache', default=None, help='PATE: teacher-vote cache directory (default ~/.cache/tfpriv/pate)')
    add('--pate-seeded-noise', action='store_true',
        help='PATE: draw the aggregator noise from --seed (reproducible, INSECURE) instead of os.urandom')


def _noise(args) -> float:
    return args.pate_noise if args.pate_noise is not None else DEFAULT_NOISE[args.aggregator]


def validate(args) -> List[str]:
    """Problems with the PATE flags, as messages (empty when fine)."""
    from tfpriv.dp.pate.student import POOL_SIZE  # pylint: disable=g-import-not-at-top
    num_train = args.num_train or 60000
    checks = [
        (args.dataset == 'mnist', f'--pate runs on mnist, got --dataset {args.dataset}'),
        (1 <= args.teachers <= num_train, f'--teachers must be in [1, {num_train}], got {args.teachers}'),
        (1 <= args.queries <= POOL_SIZE, f'--queries must be in [1, {POOL_SIZE}], got {args.queries}'),
        (math.isfinite(_noise(args)) and _noise(args) > 0, f'--pate-noise must be > 0, got {_noise(args)}'),
        (math.isfinite(args.pate_sigma_threshold) and args.pate_sigma_threshold > 0,
         f'--pate-sigma-threshold must be > 0, got {args.pate_sigma_threshold}'),
        (args.aggregator != 'confident-gnmax' or 0 < args.threshold <= args.teachers,
         f'--threshold must be in (0, --teachers={args.teachers}], got {args.threshold}'),
        (args.teacher_epochs >= 1, f'--teacher-epochs must be >= 1, got {args.teacher_epochs}'),
        (args.student_steps >= 1, f'--student-steps must be >= 1, got {args.student_steps}'),
        (args.student_rounds >= 0, f'--student-rounds must be >= 0, got {args.student_rounds}'),
        (args.student_ensemble >= 1, f'--student-ensemble must be >= 1, got {args.student_ensemble}'),
        (args.delta is None or 0 < args.delta < 1, f'--delta must be in (0, 1), got {args.delta}'),
        (0 <= args.transfer_queries <= POOL_SIZE,
         f'--transfer-queries must be in [0, {POOL_SIZE}], got {args.transfer_queries}'),
    ]
    if args.transfer_queries:
        checks += [
            (0 < args.transfer_threshold <= args.teachers,
             f'--transfer-threshold must be in (0, --teachers={args.teachers}], got {args.transfer_threshold}'),
            (math.isfinite(args.transfer_sigma_threshold) and args.transfer_sigma_threshold > 0,
             f'--transfer-sigma-threshold must be > 0, got {args.transfer_sigma_threshold}'),
            (math.isfinite(args.transfer_noise) and args.transfer_noise > 0,
             f'--transfer-noise must be > 0, got {args.transfer_noise}'),
            (0 <= args.transfer_min_confidence < 1,
             f'--transfer-min-confidence must be in [0, 1), got {args.transfer_min_confidence}'),
        ]
    return failed(checks) + report.overwrite_problems(_out(args), getattr(args, 'overwrite', False))


def _out(args) -> str:
    return os.path.join(args.out or 'runs', 'pate')


def _votes_path(args) -> str:
    from tfpriv.dp.pate.teachers import DEFAULT_CACHE_DIR  # pylint: disable=g-import-not-at-top
    key = config_from_args(args).teachers.key()
    return os.path.join(args.pate_cache or DEFAULT_CACHE_DIR, f'votes_{key}.npz')


def config_from_args(args):
    """The `PateConfig` that `run` executes."""
    from tfpriv.dp.pate.pipeline import PateConfig  # pylint: disable=g-import-not-at-top
    from tfpriv.dp.pate.student import StudentConfig  # pylint: disable=g-import-not-at-top
    from tfpriv.dp.pate.teachers import TeacherConfig  # pylint: disable=g-import-not-at-top
    from tfpriv.dp.pate.trainer import Augmentation  # pylint: disable=g-import-not-at-top
    from tfpriv.dp.pate.transfer import TransferConfig  # pylint: disable=g-import-not-at-top
    teachers = TeacherConfig(num_teachers=args.teachers, model=args.model, epochs=args.teacher_epochs,
                             activation=args.activation, seed=args.seed, num_train=args.num_train or 60000,
                             augmentation=Augmentation() if args.teacher_augment else None)
    student = StudentConfig(model=args.model, activation=args.activation, steps=args.student_steps,
                            rounds=args.student_rounds, ensemble=args.student_ensemble)
    return PateConfig(teachers=teachers, student=student, aggregator=args.aggregator, noise=_noise(args),
                      threshold=args.threshold, sigma_threshold=args.pate_sigma_threshold,
                      queries=args.queries, delta=args.delta or default_delta(args.num_train or 60000),
                      seed=args.seed,
                      seeded_noise=args.pate_seeded_noise,
                      transfer=TransferConfig(queries=args.transfer_queries, threshold=args.transfer_threshold,
                                              sigma_threshold=args.transfer_sigma_threshold,
                                              noise=args.transfer_noise,
                                              min_confidence=args.transfer_min_confidence)
                      if args.transfer_queries else None)


def run(args, progress: Optional[Progress] = None) -> report.RunReport:
    """Runs PATE; writes images/pate_*.png and <out>/metrics.json; the summary and metrics."""
    from tfpriv.experiments import plotting  # pylint: disable=g-import-not-at-top
    from tfpriv.dp.pate.pipeline import run_pate  # pylint: disable=g-import-not-at-top
    from tfpriv.dp.pate.student import POOL_SIZE  # pylint: disable=g-import-not-at-top
    from tfpriv.dp.pate.teachers import DEFAULT_CACHE_DIR  # pylint: disable=g-import-not-at-top
    config = config_from_args(args)
    result = run_pate(config, args.pate_cache or DEFAULT_CACHE_DIR, progress)
    metrics = result.metrics()
    images = getattr(args, 'images', 'images')
    metrics['figures'] = [
        plotting.plot_agreement({name: c[:POOL_SIZE] for name, c in result.counts.items()},
                                os.path.join(images, 'pate_agreement.png')),
        plotting.plot_epsilon_curve(metrics, os.path.join(images, 'pate_epsilon.png')),
        plotting.plot_accuracy_vs_epsilon([metrics], os.path.join(images, 'pate_accuracy_vs_eps.png')),
    ]
    metrics['config'] = dataclasses.asdict(config)
    path = report.write_metrics(_out(args), metrics)
    return _report(metrics, path, _votes_path(args) if config.seed is not None else None)


def _report(metrics: dict, path: str, votes: Optional[str]) -> report.RunReport:
    """The summary of a PATE run: student and answer accuracy, the three ε, the files."""
    epsilons = [report.Epsilon(metrics['epsilon_data_dependent'], 'data-dependent', metrics['delta']),
                report.Epsilon(metrics['epsilon_data_independent'], 'data-independent', metrics['delta'])]
    release = metrics.get('smooth_sensitivity')
    if release:
        epsilons.insert(0, report.Epsilon(release['epsilon'], 'published, smooth sensitivity',
                                          metrics['delta']))
    stages = f", {len(metrics['stages'])} stages" if metrics.get('stages') else ''
    return report.RunReport(
        title=f"PATE: {metrics['aggregator']}, {metrics['teachers']} teachers, "
              f"{metrics['answered']} of {metrics['queries']} queries answered{stages}",
        accuracy=[('student (1,000 held-out images)', metrics['student_accuracy']),
                  ('answers', metrics['answer_accuracy'])],
        epsilons=epsilons,
        files=[('figure', p) for p in metrics['figures']] + [('metrics', path)]
        + ([('teacher votes', votes)] if votes else []),
        metrics=metrics)


def interrupted(args, since: float) -> str:
    """What a Ctrl-C leaves: the teacher votes once all teachers are trained, else nothing
    (the votes are a cache keyed by their configuration: valid whenever they were written)."""
    del since
    votes = _votes_path(args)
    if args.seed is not None and os.path.exists(votes):
        return (f'the teacher votes are cached in {votes}: rerun `{report.rerun_command(False)}` '
                'to start from them')
    return ('nothing was saved (the teacher votes are cached only once every teacher is trained): '
            f'rerun `{report.rerun_command(False)}` to start over')


def standalone_parser() -> argparse.ArgumentParser:
    """The shared train.py flags PATE reads plus `add_arguments` (for library use and tests)."""
    parser = argparse.ArgumentParser(prog='pate')
    parser.add_argument('--model', choices=('mlp', 'cnn', 'cnn_large'), default='cnn')
    parser.add_argument('--activation', choices=('relu', 'tanh'), default='relu')
    parser.add_argument('--dataset', default='mnist')
    parser.add_argument('--num-train', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--delta', type=float, default=None)
    parser.add_argument('--out', default=None)
    parser.add_argument('--images', default='images')
    add_arguments(parser)
    return parser
