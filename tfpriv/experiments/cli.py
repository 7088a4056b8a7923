"""Command line of `train.py`: flags, validation before TensorFlow starts, dispatch.

Every flag is checked first; a bad value exits with status 2 and an
argparse-style message, never a TensorFlow traceback. Modes:

- default: train `--model` on `--dataset` with DP-SGD (`--dp`) or without (`--no-dp`);
- `--compare`: the same configuration with and without DP, one figure;
- `--encrypted-eval`: after training, classify the test set under SMPC;
- `--federated`: federated averaging on TensorFlow Federated (`--dp` = DP-FedAvg);
- `--pate`: PATE teachers, noisy aggregation and student;
- `--encrypted-train`: training on secret-shared data under SMPC, beside plaintext.

Every mode draws its progress on stderr (`--verbose`), writes its full figures to
`<run dir>/metrics.json` and ends with the same short summary on stdout
(`tfpriv.experiments.report`), or with the JSON alone under `--json`. Ctrl-C stops
a mode with one line saying what was saved and how to resume, and exit status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import sys
import time
import warnings
from typing import List, Optional, Sequence

from tfpriv import allocator
from tfpriv.experiments import audit, report
from tfpriv.experiments import encrypted as encrypted_mode
from tfpriv.experiments import federated as federated_mode
from tfpriv.experiments import pate as pate_mode
from tfpriv.experiments.progress import StderrProgress

TRAIN_SIZES = {'mnist': 60000}
# tfpriv.model.MODELS (not imported: flags are checked before TensorFlow loads).
MODEL_CHOICES = ('mlp', 'cnn', 'cnn_gn', 'cnn_large', 'scatternet_linear', 'scatternet_cnn')
SCATTERNET_MODELS = ('scatternet_linear', 'scatternet_cnn')
LR_SCHEDULES = ('constant', 'cosine')  # tfpriv.experiments.dpsgd.LR_SCHEDULES
# The DP-SGD (and --no-dp, --compare) defaults, chosen on a validation split held out of the
# 60,000 training images (benchmarks/dp_frontier.py, README "Differential privacy"), and the
# seed's settings, which the other modes (--federated, --pate, --encrypted-train) keep.
# σ = 2.6 with q = 2048 / 60,000 for 10 epochs (300 steps): ε = 0.9997 (RDP), 0.908 (PLD), δ = 1e-5.
DPSGD_DEFAULTS = dict(model='scatternet_linear', learning_rate=4.0, epochs=10, batch_size=2048,
                      l2_norm_clip=0.1, noise_multiplier=2.6, lr_schedule='cosine', momentum=0.9,
                      ema_decay=0.0)
SEED_DEFAULTS = dict(model='mlp', learning_rate=0.1, epochs=15, batch_size=32, l2_norm_clip=0.9,
                     noise_multiplier=0.9, lr_schedule='constant', momentum=0.0, ema_decay=0.0)
# The optional modes, imported explicitly: each has add_arguments/validate/run.
MODES = (('federated', federated_mode, 'federated averaging on TensorFlow Federated',
          ('tensorflow_federated',)),
         ('pate', pate_mode, 'PATE: teachers, noisy aggregation, student', ()),
         ('encrypted-train', encrypted_mode,
          'train an MLP / logistic regression end to end under SMPC (data, model, gradients '
          'secret-shared)', ()))


def _mode_on(args: argparse.Namespace, flag: str) -> bool:
    """Whether the mode `--flag` was chosen."""
    return bool(getattr(args, flag.replace('-', '_'), False))


def _missing_dependency(requirements: Sequence[str]) -> Optional[str]:
    """The first of `requirements` that cannot be imported, or None."""
    for name in requirements:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def _add_common(add) -> None:
    """Flags every mode shares (or that the default and --compare modes use).

    Flags with two defaults (`DPSGD_DEFAULTS` for the DP-SGD / plain runs, `SEED_DEFAULTS`
    for the other modes) are parsed as None and filled in by `resolve_defaults`.
    """
    add('--model', choices=MODEL_CHOICES, default=None,
        help=f"architecture (default {_both('model')}); scatternet_* train on scattering "
        'features of the images (tfpriv.data.scatter)')
    add('--optimizer', '--opt', dest='optimizer', choices=('sgd', 'adam'), default='sgd',
        help='optimizer (default sgd)')
    add('--learning-rate', '--lr', dest='learning_rate', type=float, default=None,
        help=f"learning rate (default {_both('learning_rate')})")
    add('--epochs', type=int, default=None, help=f"training epochs (default {_both('epochs')})")
    add('--batch-size', type=int, default=None,
        help=f"batch size; under DP-SGD the expected batch size q n (default {_both('batch_size')})")
    add('--activation', choices=('relu', 'tanh'), default='relu', help='hidden activation')
    add('--dataset', choices=('mnist', 'credit'), default='mnist', help='data set (default mnist)')
    add('--num-train', type=int, default=None, help='use only the first N training examples')
    add('--num-test', type=int, default=None, help='use only the first N test examples')
    add('--seed', type=int, default=0, help='random seed (default 0)')
    add('--compare', action='store_true', help='train with and without DP, one figure')
    add('--encrypted-eval', action='store_true',
        help='after training, evaluate the test set under SMPC (3 parties)')
    add('--out', default=None, help='run directory for metrics/checkpoints (default runs/<model>_<dp>)')
    add('--images', default='images', help='directory of the figures (default images)')
    add('--resume', action='store_true',
        help='continue the run in --out with the same flags (--epochs included): DP-SGD from its '
             'last epoch; --federated from its last round (refused without a checkpoint, with a '
             'corrupt one or with other settings)')
    add('--verbose', type=int, choices=(0, 1, 2), default=1,
        help='progress on stderr: 0 none, 1 progress bars (default), 2 a line per epoch/step')
    add('--default-allocator', action='store_true',
        help="keep glibc malloc's default policy and TensorFlow's malloc-based allocator; by "
             'default freed memory stays in the process and TensorFlow pools its memory '
             '(tfpriv.allocator), which spares DP-SGD and secure aggregation their page faults')
    report.add_arguments(add)


def _add_dpsgd(add) -> None:
    """The DP-SGD flags (`tfpriv.dp.make_private`)."""
    add('--dp', action=argparse.BooleanOptionalAction, default=True,
        help='train with DP-SGD (default) or not (--no-dp)')
    add('--l2-norm-clip', '--l2_norm_clip', dest='l2_norm_clip', type=float, default=None,
        help=f"per-example clip norm C (default {_both('l2_norm_clip')})")
    add('--noise-multiplier', '--noise_mult', dest='noise_multiplier', type=float, default=None,
        help=f"noise multiplier σ (default {_both('noise_multiplier')})")
    add('--lr-schedule', choices=LR_SCHEDULES, default=None,
        help=f"learning-rate schedule over the run's steps (default {_both('lr_schedule')})")
    add('--momentum', type=float, default=None,
        help=f"SGD momentum in [0, 1) (default {_both('momentum')})")
    add('--ema-decay', type=float, default=None,
        help='evaluate an exponential moving average of the weights with this decay in (0, 1) '
        f"(post-processing, no privacy cost; 0 = off; default {_both('ema_decay')})")
    add('--augmult', type=int, default=1,
        help='augmentation multiplicity K: each per-example gradient is the mean over K random '
        'shifts (up to 2 pixels) of the image, then clipped; ε unchanged (default 1: off)')
    add('--delta', type=float, default=None,
        help='δ of the reported ε, below 1/n (default 10^-d for an n of d digits; DP-SGD: n = '
             'training examples, 1e-5 for MNIST; --federated: n = clients K, user-level DP; '
             '--pate: 1e-5)')
    add('--target-epsilon', type=float, default=None,
        help='calibrate σ so that ε after --epochs epochs is at most this (overrides --noise-multiplier)')
    add('--clipping', choices=('auto', 'fast', 'vectorized', 'microbatch'), default='auto',
        help='DP clipping path (default auto: the fastest correct one for the model)')
    add('--sampling', choices=('poisson', 'shuffle'), default='poisson',
        help='poisson (default): each example in each step with probability q = batch/n, ε by '
        'the Poisson-subsampled Gaussian; shuffle: fixed-size batches, ε by the replace-one '
        'analysis of sampling without replacement (larger)')


def _both(name: str) -> str:
    """Help text of a flag with two defaults."""
    return f'{DPSGD_DEFAULTS[name]}; {SEED_DEFAULTS[name]} with --federated/--pate/--encrypted-train'


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fills the flags left unset with the DP-SGD defaults, or the seed's in the other modes."""
    other_mode = any(_mode_on(args, flag) for flag, _, _, _ in MODES)
    for name, value in (SEED_DEFAULTS if other_mode else DPSGD_DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='train.py', description='Train Keras models on MNIST or Credit Approval with or '
        'without differential privacy (DP-SGD, ε via dp_accounting).')
    _add_common(parser.add_argument_group('common').add_argument)
    dpsgd_group = parser.add_argument_group('DP-SGD')
    _add_dpsgd(dpsgd_group.add_argument)
    audit.add_arguments(dpsgd_group)
    for flag, module, help_text, _ in MODES:
        group = parser.add_argument_group(flag)
        group.add_argument(f'--{flag}', action='store_true', help=help_text)
        module.add_arguments(group)
    return parser


def train_size(args: argparse.Namespace) -> int:
    """Training-set size for the chosen data set (no TensorFlow needed)."""
    if args.dataset == 'credit':
        from tfpriv.data.credit import load_credit  # pylint: disable=g-import-not-at-top
        n = load_credit().num_train
    else:
        n = TRAIN_SIZES[args.dataset]
    return min(n, args.num_train) if args.num_train else n


def _validate_training(args: argparse.Namespace) -> List[str]:
    """Problems with the optimizer, schedule, EMA and model/data flags."""
    checks = [
        (0 <= args.momentum < 1, f'--momentum must be in [0, 1), got {args.momentum}'),
        (args.momentum == 0 or args.optimizer == 'sgd',
         f'--momentum needs --optimizer sgd, got --optimizer {args.optimizer}'),
        (0 <= args.ema_decay < 1, f'--ema-decay must be in [0, 1) (0 = off), got {args.ema_decay}'),
        (args.augmult >= 1, f'--augmult must be >= 1, got {args.augmult}'),
        (args.augmult == 1 or args.clipping in ('auto', 'vectorized'),
         f'--augmult averages K views before clipping, which only --clipping vectorized (or auto) '
         f'does, got --clipping {args.clipping}'),
        (args.augmult == 1 or (args.dataset == 'mnist' and args.model not in SCATTERNET_MODELS),
         '--augmult shifts MNIST images: it needs --dataset mnist and a pixel model, got '
         f'--dataset {args.dataset} --model {args.model}'),
        (args.model not in SCATTERNET_MODELS or args.dataset == 'mnist',
         f'--model {args.model} needs --dataset mnist (scattering of images), got {args.dataset}'),
        (args.model not in SCATTERNET_MODELS or not (
            args.encrypted_eval or args.audit or any(_mode_on(args, flag) for flag, *_ in MODES)),
         f'--model {args.model} trains only in the DP-SGD / plain mode (--federated, --pate, '
         '--encrypted-train, --encrypted-eval and --audit take images)'),
    ]
    return [message for ok, message in checks if not ok]


def validate(args: argparse.Namespace) -> List[str]:
    """All problems with the flags, as messages (empty when fine)."""
    errors = []
    checks = [
        (args.learning_rate > 0 and math.isfinite(args.learning_rate), f'--learning-rate must be > 0, got {args.learning_rate}'),
        (args.epochs >= 1, f'--epochs must be >= 1, got {args.epochs}'),
        (args.l2_norm_clip > 0, f'--l2-norm-clip must be > 0, got {args.l2_norm_clip}'),
        (not args.dp or args.noise_multiplier >= 0, f'--noise-multiplier must be >= 0, got {args.noise_multiplier}'),
        (args.delta is None or 0 < args.delta < 1, f'--delta must be in (0, 1), got {args.delta}'),
        (args.target_epsilon is None or args.target_epsilon > 0,
         f'--target-epsilon must be > 0, got {args.target_epsilon}'),
        (args.num_train is None or args.num_train >= 1,
         f'--num-train must be >= 1, got {args.num_train}'),
        (args.num_test is None or args.num_test >= 1, f'--num-test must be >= 1, got {args.num_test}'),
    ]
    errors += [message for ok, message in checks if not ok]
    errors += _validate_training(args)
    n = train_size(args)
    if not 1 <= args.batch_size <= n:
        errors.append(f'--batch-size must be in [1, {n}] (the training-set size), got {args.batch_size}')
    modes = [flag for flag, _, _, _ in MODES if _mode_on(args, flag)]
    if not modes and args.delta is not None and 0 < args.delta < 1 and args.delta >= 1 / n:
        errors.append(f'--delta must be < 1/n = {1 / n:g} (n = {n} training examples), got {args.delta}')
    if args.target_epsilon is not None and not args.dp:
        errors.append('--target-epsilon needs --dp')
    if len(modes) > 1 or (modes and args.compare):
        errors.append(f'choose one mode, got --{" --".join(modes + (["compare"] if args.compare else []))}')
    if args.encrypted_eval and (modes or args.dataset != 'mnist'):
        errors.append('--encrypted-eval evaluates a model trained on mnist in the default mode')
    if args.audit and modes:
        errors.append('--audit audits the DP-SGD / plain run (the default mode or --compare)')
    errors += audit.validate(args, n)
    for flag, module, _, requirements in MODES:
        if _mode_on(args, flag):
            missing = _missing_dependency(requirements)
            if missing:
                errors.append(f'--{flag} needs the Python package {missing!r}, which is not '
                              'installed: run `bash setup.sh`')
            else:
                errors += module.validate(args)
    return errors


def _config(args: argparse.Namespace, dp: bool):
    """The `TrainConfig` of one run of the flags (with or without DP)."""
    from tfpriv.experiments.dpsgd import TrainConfig  # pylint: disable=g-import-not-at-top
    return TrainConfig(
        model=args.model, optimizer=args.optimizer, learning_rate=args.learning_rate,
        epochs=args.epochs, batch_size=args.batch_size, dp=dp, l2_norm_clip=args.l2_norm_clip,
        noise_multiplier=args.noise_multiplier, delta=args.delta,
        target_epsilon=args.target_epsilon if dp else None, seed=args.seed, dataset=args.dataset,
        activation=args.activation, clipping=args.clipping, sampling=args.sampling,
        lr_schedule=args.lr_schedule, momentum=args.momentum, ema_decay=args.ema_decay or None,
        augmult=args.augmult,
        num_train=args.num_train, num_test=args.num_test, resume=args.resume,
        verbose=args.verbose, out=os.path.join(args.out or 'runs', f"{args.model}_{'dp' if dp else 'no-dp'}"))


def _run_training(args: argparse.Namespace, dp: bool):
    """One DP-SGD (or plain) training run, its figure drawn; the `TrainResult` and the figure."""
    from tfpriv.experiments.dpsgd import load_data, train  # pylint: disable=g-import-not-at-top
    from tfpriv.experiments.plotting import plot_histories  # pylint: disable=g-import-not-at-top
    data = load_data(args.model, args.dataset, args.num_train, args.num_test)
    config = _config(args, dp)
    result = train(config, data)
    title = f"{args.model.upper()} on {args.dataset}, {'DP-SGD' if dp else 'no DP'}"
    privacy = result.privacy
    if privacy:
        title += f" (σ = {privacy.noise_multiplier:.3g}, C = {args.l2_norm_clip})"
    figure = plot_histories({config.tag: result.history}, os.path.join(args.images, f'{config.tag}.png'), title)
    return result, figure


def _epsilons(result) -> List[report.Epsilon]:
    """ε of a DP-SGD run: RDP, and PLD under Poisson sampling; none without DP."""
    privacy = result.privacy
    if privacy is None:
        return []
    kinds = [('RDP', privacy.epsilon), ('PLD', privacy.epsilon_pld)]
    return [report.Epsilon(value, kind, privacy.delta) for kind, value in kinds if value is not None]


def _audit(args: argparse.Namespace, dp: bool):
    """`--audit`: the configuration retrained on members + canaries and attacked; the report."""
    from tfpriv.data import load_dataset  # pylint: disable=g-import-not-at-top
    from tfpriv.dp.accounting import default_delta  # pylint: disable=g-import-not-at-top
    from tfpriv.experiments.dpsgd import train  # pylint: disable=g-import-not-at-top
    data = load_dataset(args.dataset).subset(args.num_train, args.num_test)
    config = dataclasses.replace(_config(args, dp), resume=False, verbose=0)
    return audit.audit_run(
        lambda dataset, out: train(dataclasses.replace(config, out=out), dataset).model, data,
        canaries=args.audit_canaries, seed=args.seed,
        delta=args.delta or default_delta(data.num_train))


def _compare(args: argparse.Namespace) -> report.RunReport:
    """`--compare`: the run with and without DP, their histories in one figure (with the
    membership-inference AUC of each under `--audit`)."""
    from tfpriv.experiments.plotting import plot_histories  # pylint: disable=g-import-not-at-top
    histories, metrics, notes, accuracy, epsilons, files = {}, {}, [], [], [], []
    for tag, dp in (('dp', True), ('no-dp', False)):
        result, _ = _run_training(args, dp)
        metrics[tag] = result.metrics()
        accuracy.append(('DP-SGD' if dp else 'no DP', result.test_accuracy))
        epsilons += _epsilons(result)
        files.append(('metrics', os.path.join(result.config.out, 'metrics.json')))
        if args.audit:
            audited = _audit(args, dp)
            metrics[tag]['audit'] = dataclasses.asdict(audited)
            notes.append((f'audit {tag}', audited.summary()))
            tag += f' (MIA AUC {audited.mia_auc:.3f}, adv. {audited.mia_advantage:.3f})'
        histories[tag] = result.history
    metrics['figure'] = plot_histories(histories, os.path.join(args.images, f'{args.model}_compare.png'),
                                       f'{args.model.upper()} on {args.dataset}: DP-SGD vs no DP')
    return report.RunReport(f'DP-SGD vs no DP: {args.model.upper()} on {args.dataset}, {args.epochs} epochs',
                            accuracy, epsilons, [('figure', metrics['figure'])] + files, metrics, notes)


def _encrypted_eval(model, num_test: Optional[int], progress: StderrProgress) -> dict:
    """`--encrypted-eval`: the trained model classifies the MNIST test set under SMPC."""
    from tfpriv.crypto.smpc.inference import evaluate_encrypted  # pylint: disable=g-import-not-at-top
    from tfpriv.data import load_dataset  # pylint: disable=g-import-not-at-top
    data = load_dataset('mnist').subset(None, num_test)
    model = getattr(model, 'inner', model)  # the user's Keras model inside a DPSGDModel
    evaluation = evaluate_encrypted(model, data.x_test, data.y_test, progress=progress)
    return {name: getattr(evaluation, name) for name in (
        'num_images', 'num_parties', 'accuracy', 'plaintext_accuracy', 'disagreements', 'seconds',
        'slowdown', 'bytes_per_image')}


def _train_report(args: argparse.Namespace, progress: StderrProgress) -> report.RunReport:
    """The default mode: one DP-SGD (or plain) run, with `--audit` / `--encrypted-eval`."""
    result, figure = _run_training(args, args.dp)
    metrics, notes, run_dir = result.metrics(), [], result.config.out
    if args.audit:
        audited = _audit(args, args.dp)
        metrics['audit'] = dataclasses.asdict(audited)
        notes.append(('audit', audited.summary()))
    if args.encrypted_eval:
        evaluation = metrics['encrypted_evaluation'] = _encrypted_eval(result.model, args.num_test, progress)
        notes.append(('encrypted', f"accuracy {evaluation['accuracy']:.4f} under SMPC "
                      f"({evaluation['num_parties']} parties, {evaluation['num_images']} images), "
                      f"{evaluation['disagreements']} predictions differ from plaintext, "
                      f"{evaluation['seconds']:.1f} s ({evaluation['slowdown']:.1f}x plaintext), "
                      f"{evaluation['bytes_per_image'] / 1e6:.2f} MB per image"))
    path = report.write_metrics(run_dir, metrics)
    privacy = result.privacy
    kind = (f'DP-SGD (σ = {privacy.noise_multiplier:.3g}, C = {args.l2_norm_clip}, {privacy.sampling} '
            'sampling)') if privacy else 'No DP'
    return report.RunReport(
        f'{kind}: {args.model.upper()} on {args.dataset}, {result.epochs_completed} epochs, '
        f'{result.num_train} training examples',
        [(f'test ({result.num_test} images)', result.test_accuracy)], _epsilons(result),
        [('figure', figure), ('metrics', path), ('checkpoint', os.path.join(run_dir, 'backup'))],
        metrics, notes)


def _dpsgd_interrupted(args: argparse.Namespace, since: float) -> str:
    """What a Ctrl-C leaves in the default mode: the checkpoint of the last finished epoch."""
    saved = []
    for dp in ((True, False) if args.compare else (args.dp,)):
        out = _config(args, dp).out
        history = os.path.join(out, 'history.json')
        if report.resumable(history, args.resume, since):
            with open(history) as f:
                saved.append(f"{os.path.join(out, 'backup')} (epoch {len(json.load(f))}/{args.epochs})")
    if not saved:
        return f'no epoch had finished, nothing was saved: rerun `{report.rerun_command(False)}`'
    return f"saved {', '.join(saved)}: continue with `{report.rerun_command(True)}`"


def _chosen_mode(args: argparse.Namespace):
    """(flag, module) of the chosen optional mode, or (None, None) for the default (DP-SGD) mode."""
    return next(((flag, module) for flag, module, _, _ in MODES if _mode_on(args, flag)), (None, None))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser,
         progress: StderrProgress) -> report.RunReport:
    """Runs the chosen mode (stdout redirected to stderr, so only the summary reaches stdout)."""
    flag, module = _chosen_mode(args)
    progress.status(f"train.py{' --' + flag if flag else ''}: loading TensorFlow and the data")
    with contextlib.redirect_stdout(sys.stderr):
        if module is not None:
            return module.run(args, progress)
        try:
            return _compare(args) if args.compare else _train_report(args, progress)
        except ValueError as error:  # ResumeMismatch, or a model/argument make_private refuses
            parser.error(str(error))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = resolve_defaults(parser.parse_args(argv))
    try:
        errors = validate(args)
    except Exception as error:  # e.g. an unreadable data file
        errors = [str(error)]
    if errors:
        parser.error('; '.join(errors))
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    if not args.default_allocator:
        allocator.keep_freed_memory()
    started = time.time()
    try:
        run_report = _run(args, parser, StderrProgress(args.verbose))
    except KeyboardInterrupt:
        # TFF's executor leaves the interrupted computation's coroutine unawaited; Python would
        # warn when it is collected, after the one line below. Nothing is lost with it.
        warnings.filterwarnings('ignore', message=r"coroutine '.*' was never awaited",
                                category=RuntimeWarning)
        _, module = _chosen_mode(args)
        message = module.interrupted(args, started) if module else _dpsgd_interrupted(args, started)
        sys.stderr.write(f'\ntrain.py: interrupted; {message}\n')
        return 130
    run_report.seconds = time.time() - started
    print(report.to_json(run_report.metrics) if args.json else report.format_report(run_report))
    return 0
