"""`train.py --federated`: the federated flags, their validation and the run.

The common flags of train.py keep their meaning: `--model`, `--activation`,
`--optimizer`/`--learning-rate` (client optimizer), `--batch-size` (client batch B), `--dp`
(DP-FedAvg here, with `--l2-norm-clip`, `--noise-multiplier`, `--delta`), `--seed`,
`--dataset`, `--num-train`/`--num-test`, `--out`, `--images`, `--resume`,
`--verbose`. `--seed` makes a run repeatable (client split, schedule, data order,
initial weights, dropout; not the secure aggregators' randomness nor the DP noise).
`--epochs` and `--clipping` are refused: rounds are `--rounds`.

A run directory that holds a checkpoint is resumed with `--resume` or replaced
with `--overwrite`; otherwise the run is refused (exit 2), as is `--resume`
without a checkpoint, with a corrupt one or with other settings.

`--workers` takes loopback addresses (SSH tunnels to remote workers) unless
`--insecure-workers`. A failure the user can cause at run time (MNIST missing,
a worker unreachable or lost, an update outside the secure aggregator's range,
an unwritable `--out`) is one line on stderr and exit status 1.

`--partition` takes one scheme or a comma-separated list (e.g.
`iid,pathological`): each is trained in turn (its own run directory and
checkpoint) and all are drawn in one figure, `images/fedavg_*.png`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import inspect
import math
import os
import sys
from typing import Dict, List, Optional

from tfpriv.experiments import report
from tfpriv.experiments.flags import add_numbers, failed
from tfpriv.federated.partition import PARTITIONS
from tfpriv.federated.runtime import check_secure_workers, parse_workers
from tfpriv.federated.secure import CHOICES
from tfpriv.progress import Progress, prefixed

SERVER_OPTIMIZERS = ('sgd', 'sgdm', 'adam', 'yogi', 'adagrad')


_FEDERATION = (  # (flag, type, default, help): `flags.add_numbers`
    ('--clients', int, None, 'number of clients K (default 100; per-example: one per example)'),
    ('--rounds', int, 10, 'federated rounds'),
    ('--client-fraction', float, 0.1, 'fraction C of clients sampled per round, in (0, 1]'),
    ('--local-epochs', int, 1, 'local epochs E per round'),
)
_SPLIT = (('--alpha', float, 0.5, 'Dirichlet concentration for dirichlet (labels) and banks (sizes)'),
          ('--shards-per-client', int, 2, 'pathological: shards per client'))
_SERVER = (
    ('--server-momentum', float, 0.9, 'momentum of --server-optimizer sgdm'),
    ('--model-ema', float, 0.0, 'also evaluate an exponential moving average of the global models '
     'with this decay β in [0, 1); 0 turns it off'),
    ('--target-quantile', float, 0.5, 'adaptive clipping: target unclipped quantile'),
)
# Flags of the DP-SGD mode that --federated does not use: (flag, what to use instead).
_UNUSED = (('epochs', 'rounds are --rounds, local epochs --local-epochs'),
           ('clipping', 'DP-FedAvg clips whole client updates, in TFF'))


def add_arguments(parser) -> None:
    """Adds the federated-only flags to `parser` (an ArgumentParser or argument group)."""
    add_numbers(parser, _FEDERATION + _SPLIT + _SERVER)
    _add_dp_arguments(parser)
    add = parser.add_argument
    add('--partition', default='iid',
        help=f'client split, or a comma-separated list to compare: {", ".join(PARTITIONS)} '
             '(default iid)')
    add('--learning-rate-decay', '--client-lr-decay', dest='client_learning_rate_decay', type=float,
        default=1.0, help='plain FedAvg: round r clients use --learning-rate x decay^r, decay in '
        '(0, 1] (default 1)')
    add('--server-optimizer', '--server-opt', dest='server_optimizer', choices=SERVER_OPTIMIZERS,
        default='sgd', help='server optimizer (default sgd: plain FedAvg with --server-learning-rate 1)')
    add('--server-learning-rate', '--server-lr', dest='server_learning_rate', type=float, default=1.0,
        help='server learning rate (default 1.0)')
    add('--adaptive-clipping', action='store_true',
        help='DP-FedAvg with adaptive clipping (--l2-norm-clip is the initial clip)')
    add('--secure-agg', choices=CHOICES, default='none',
        help='secure aggregation of the client updates (default none)')
    _add_runtime_arguments(parser)
    add('--overwrite', action='store_true',
        help='replace the checkpoint of an earlier run in the same run directory (without it, '
             'and without --resume, such a run is refused)')


def _add_runtime_arguments(parser) -> None:
    """Flags of where the computation runs and of the secure aggregators' fixed-point range."""
    add = parser.add_argument
    add('--workers', default=None,
        help='TFF workers host:port,host:port (default: one local worker confined to this host); '
             'loopback addresses only (SSH tunnels to remote workers) unless --insecure-workers')
    add('--insecure-workers', action='store_true',
        help='allow --workers on non-loopback addresses (plaintext, unauthenticated gRPC; the '
             'worker runs any computation it is sent) and an unconfined local worker where '
             'the kernel refuses a private network namespace')
    add('--secagg-bound', type=float, default=None,
        help='public bound B on |client update values| of --secure-agg shamir/rlwe/secagg '
             '(scheme default: 512 / 4 / 512); a larger update stops the run')
    add('--secagg-precision', type=int, default=None,
        help='fixed-point fractional bits of --secure-agg (scheme default: shamir 20, smpc 32, '
             'rlwe 16, secagg 20)')
    add('--secagg-neighbours', type=int, default=None,
        help="k, each client's neighbours in --secure-agg secagg (SecAgg+ graph): even and below "
             "the round's m clients, or m - 1 for the complete graph; default 2 ceil(log2 m); "
             'up to k - floor(k/2) - 1 neighbours of each client may drop')


def _runtime_problems(args: argparse.Namespace) -> List[str]:
    """Problems with --workers, --out and the --secagg-* flags (no TensorFlow needed)."""
    bound, precision = args.secagg_bound, args.secagg_precision
    neighbours = args.secagg_neighbours
    problems = failed([
        (neighbours is None or args.secure_agg == 'secagg',
         '--secagg-neighbours needs --secure-agg secagg'),
        (bound is None or (math.isfinite(bound) and bound > 0),
         f'--secagg-bound must be a positive number, got {bound}'),
        (precision is None or 1 <= precision <= 62,
         f'--secagg-precision must be in [1, 62] bits, got {precision}'),
        (args.secure_agg != 'none' or (bound is None and precision is None),
         '--secagg-bound and --secagg-precision need --secure-agg'),
        (args.secure_agg != 'smpc' or bound is None,
         '--secure-agg smpc has no --secagg-bound (its ring holds any value that fits '
         '--secagg-precision)'),
    ])
    if not problems and (bound, precision, neighbours) != (None, None, None):
        problems += _aggregator_problems(args)
    if args.workers is not None:
        try:
            check_secure_workers(parse_workers(args.workers), args.insecure_workers)
        except ValueError as error:
            problems.append(f'--workers: {error}')
    return problems + _out_problems(args.out or 'runs')


def _aggregator_problems(args: argparse.Namespace) -> List[str]:
    """Builds the aggregator with the --secagg-* flags given: its own range checks."""
    from tfpriv.federated import secure  # pylint: disable=g-import-not-at-top
    from tfpriv.federated.fedavg import clients_per_round  # pylint: disable=g-import-not-at-top
    try:
        secure.make_aggregator(args.secure_agg, None,
                               clients_per_round(args.client_fraction, args.clients or 100),
                               bound=args.secagg_bound, precision=args.secagg_precision,
                               neighbours=args.secagg_neighbours)
    except ValueError as error:
        given = [f'--secagg-{k} {v:g}' for k, v in (('bound', args.secagg_bound),
                                                      ('precision', args.secagg_precision),
                                                      ('neighbours', args.secagg_neighbours))
                 if v is not None]
        return [f'--secure-agg {args.secure_agg} with {" ".join(given)}: {error}']
    return []


def _out_problems(out: str) -> List[str]:
    """--out must be, or be creatable in, a writable directory."""
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return [f'--out {out}: {existing} is not a directory']
    if not os.access(existing, os.W_OK | os.X_OK):
        return [f'--out {out}: {existing} is not writable']
    return []


def _add_dp_arguments(parser) -> None:
    """Client sampling, client dropouts and the DP mode of DP-FedAvg."""
    add = parser.add_argument
    add('--client-sampling', choices=('fixed', 'poisson'), default='fixed',
        help='fixed: round(C K) clients per round without replacement (ε under replace-one); '
             'poisson: each client joins with probability C (ε under add/remove-one, smaller) '
             '(default fixed)')
    add('--dp-mode', choices=('central', 'distributed'), default=None,
        help='--dp noise: central (the server adds Gaussian noise, TFF) or distributed (each '
             'client adds a discrete Gaussian share before secure aggregation, DDGauss); default '
             'distributed with --secure-agg, else central')
    add('--dp-bits', type=int, default=16,
        help='distributed DP: the secure sum is taken mod 2^bits, bits in [2, 24] (default 16)')
    add('--dropout-rate', type=float, default=0.0,
        help='each sampled client drops out before its update reaches the aggregate with this '
             'probability, in [0, 1) (drawn from --seed); the secure aggregators sum the '
             'survivors and distributed DP accounts for the noise shares summed (default 0)')


def dp_mode(args: argparse.Namespace) -> str:
    """--dp-mode, defaulting to distributed when --secure-agg is set."""
    if getattr(args, 'dp_mode', None):
        return args.dp_mode
    return 'distributed' if args.secure_agg != 'none' else 'central'


def _dp_problems(args: argparse.Namespace) -> List[str]:
    """Problems with the DP-mode and client-sampling flags."""
    mode, secure = dp_mode(args), args.secure_agg != 'none'
    return failed([
        (args.dp or args.dp_mode is None, '--dp-mode needs --dp'),
        (not (args.dp and secure and mode == 'central'),
         '--dp-mode central (TFF\'s DP aggregator at the server) cannot be combined with '
         '--secure-agg: use --dp-mode distributed'),
        (not (args.dp and mode == 'distributed' and args.client_sampling == 'poisson'),
         '--dp-mode distributed needs --client-sampling fixed (the noise shares are sized for a '
         'known number of clients per round)'),
        (not (args.dp and mode == 'distributed' and args.adaptive_clipping),
         '--adaptive-clipping is not supported with --dp-mode distributed'),
        (2 <= args.dp_bits <= 24, f'--dp-bits must be in [2, 24], got {args.dp_bits}'),
        (0 <= args.dropout_rate < 1, f'--dropout-rate must be in [0, 1), got {args.dropout_rate}'),
    ])


def _dp_options(args: argparse.Namespace) -> Dict[str, object]:
    """The `FedConfig` fields of the sampling and DP-mode flags."""
    return {'client_sampling': args.client_sampling, 'dp_mode': dp_mode(args),
            'dp_bits': args.dp_bits, 'dropout_rate': args.dropout_rate}


def _partitions(args) -> List[str]:
    return [p.strip() for p in str(args.partition).split(',') if p.strip()]


def _num_examples(args) -> int:
    from tfpriv.experiments.cli import train_size  # pylint: disable=g-import-not-at-top,import-outside-toplevel
    return train_size(args)


def _partition_problems(args: argparse.Namespace, n: int) -> List[str]:
    """Problems with --partition and --clients for a training set of n examples."""
    parts, clients = _partitions(args), args.clients
    unknown = [p for p in parts if p not in PARTITIONS]
    k = clients or 100
    return failed([
        (bool(parts) and not unknown, f'unknown --partition {",".join(unknown) or repr(args.partition)}; '
                                      f'choose from {", ".join(PARTITIONS)}'),
        (len(set(parts)) == len(parts), f'--partition lists a scheme twice: {args.partition}'),
        (clients is None or 1 <= clients <= n,
         f'--clients must be in [1, {n}] (the number of training examples), got {clients}'),
        (parts != ['per-example'] or clients in (None, n),
         f'--partition per-example makes one client per example ({n}); drop --clients or set it to {n}'),
        ('pathological' not in parts or k < 1 or k * args.shards_per_client <= n,
         f'--partition pathological needs --clients x --shards-per-client <= {n}, '
         f'got {k} x {args.shards_per_client}'),
        (all(p == 'per-example' for p in parts) or clients is not None or k <= n,
         f'the default 100 clients exceed the {n} training examples: set --clients'),
    ])


def _value_problems(args: argparse.Namespace) -> List[str]:
    """Problems with the values of the other federated flags."""
    secure = args.secure_agg != 'none'
    return failed([
        (0 < args.client_fraction <= 1, f'--client-fraction must be in (0, 1], got {args.client_fraction}'),
        (args.rounds >= 1, f'--rounds must be >= 1, got {args.rounds}'),
        (args.local_epochs >= 1, f'--local-epochs must be >= 1, got {args.local_epochs}'),
        (args.alpha > 0, f'--alpha must be > 0, got {args.alpha}'),
        (args.shards_per_client >= 1, f'--shards-per-client must be >= 1, got {args.shards_per_client}'),
        (args.server_learning_rate > 0, f'--server-learning-rate must be > 0, got {args.server_learning_rate}'),
        (0 <= args.model_ema < 1, f'--model-ema must be in [0, 1), got {args.model_ema}'),
        (0 < args.client_learning_rate_decay <= 1, f'--learning-rate-decay must be in (0, 1], '
         f'got {args.client_learning_rate_decay}'),
        (args.client_learning_rate_decay == 1 or not (args.dp or secure),
         '--learning-rate-decay is only supported for plain FedAvg (--no-dp, no --secure-agg)'),
        (0 <= args.server_momentum < 1, f'--server-momentum must be in [0, 1), got {args.server_momentum}'),
        (0 < args.target_quantile < 1, f'--target-quantile must be in (0, 1), got {args.target_quantile}'),
        (args.batch_size >= 1, f'--batch-size must be >= 1, got {args.batch_size}'),
        (not args.adaptive_clipping or args.dp, '--adaptive-clipping needs --dp'),
        (getattr(args, 'target_epsilon', None) is None,
         '--target-epsilon is not supported with --federated: set --noise-multiplier'),
        (not (args.resume and args.overwrite), '--resume and --overwrite exclude each other'),
    ])


def _unused_flags(args: argparse.Namespace) -> List[str]:
    """DP-SGD flags given a value other than their default: --federated would ignore them."""
    from tfpriv.experiments.cli import SEED_DEFAULTS, build_parser  # pylint: disable=g-import-not-at-top,import-outside-toplevel
    parser = build_parser()
    return [f'--{flag} is not used with --federated ({instead}); drop it'
            for flag, instead in _UNUSED if hasattr(args, flag)
            and getattr(args, flag) != SEED_DEFAULTS.get(flag, parser.get_default(flag))]


def _checkpoint_problems(args: argparse.Namespace) -> List[str]:
    """The run directories' checkpoints against --resume / --overwrite, read without TensorFlow."""
    from tfpriv.errors import CorruptCheckpoint, ResumeMismatch  # pylint: disable=g-import-not-at-top
    from tfpriv.federated import checkpoint, fedavg  # pylint: disable=g-import-not-at-top
    problems = []
    for scheme in _partitions(args):
        config = config_from_args(args, scheme)
        out = fedavg.default_out(config, args.dataset, args.out or 'runs')
        if not args.resume:
            if checkpoint.exists(out) and not args.overwrite:
                problems.append(f'{checkpoint.path(out)} exists: pass --resume to continue that run '
                                'or --overwrite to replace it')
            continue
        try:
            checkpoint.check_fingerprint(out, checkpoint.read_meta(out), config.fingerprint())
        except FileNotFoundError:
            problems.append(f'--resume: there is no checkpoint {checkpoint.path(out)}; '
                            'drop --resume to start this run')
        except (CorruptCheckpoint, ResumeMismatch) as error:
            problems.append(f'--resume: {error}')
    return problems


def validate(args: argparse.Namespace, num_examples: Optional[int] = None) -> List[str]:
    """Problems with the federated flags and checkpoints, as messages (empty when fine).

    Needs no TensorFlow: a bad flag, a missing, corrupt or foreign checkpoint under
    --resume, or an existing one without --resume / --overwrite exits before TF starts.
    """
    from tfpriv.federated.secure import available_schemes  # pylint: disable=g-import-not-at-top
    n = num_examples if num_examples is not None else _num_examples(args)
    errors = (_partition_problems(args, n) + _value_problems(args) + _dp_problems(args)
              + _unused_flags(args))
    if args.secure_agg != 'none' and args.secure_agg not in available_schemes():
        errors.append(f'--secure-agg {args.secure_agg} is not available in this checkout '
                      f'(available: none, {", ".join(available_schemes())})')
    errors += _runtime_problems(args)
    return errors or _checkpoint_problems(args)


def config_from_args(args: argparse.Namespace, scheme: str):
    """The `FedConfig` of one partition scheme of the run."""
    from tfpriv.federated.fedavg import FedConfig  # pylint: disable=g-import-not-at-top
    return FedConfig(
        model=args.model, activation=args.activation,
        clients=None if scheme == 'per-example' else (args.clients or 100),
        rounds=args.rounds, client_fraction=args.client_fraction, local_epochs=args.local_epochs,
        batch_size=args.batch_size, partition=scheme, alpha=args.alpha,
        shards_per_client=args.shards_per_client, client_optimizer=args.optimizer,
        client_learning_rate=args.learning_rate,
        client_learning_rate_decay=args.client_learning_rate_decay,
        server_optimizer=args.server_optimizer, server_learning_rate=args.server_learning_rate,
        server_momentum=args.server_momentum,
        model_ema=args.model_ema, dp=args.dp, l2_norm_clip=args.l2_norm_clip,
        noise_multiplier=args.noise_multiplier,
        adaptive_clipping=args.adaptive_clipping, target_quantile=args.target_quantile,
        delta=args.delta, secure_agg=args.secure_agg, secagg_bound=args.secagg_bound,
        secagg_precision=args.secagg_precision, secagg_neighbours=args.secagg_neighbours,
        insecure_workers=args.insecure_workers,
        workers=parse_workers(args.workers) if args.workers else None, seed=args.seed,
        resume=args.resume, overwrite=args.overwrite, **_dp_options(args))


def _refuse(message: str, status: int = 2) -> None:
    """Exits like argparse: one line on stderr and `status` (2: the flags, 1: at run time)."""
    sys.stderr.write(f'train.py: error: {message}\n')
    raise SystemExit(status)


# errno values of an --out (or --images) that cannot be written: full, read-only, not ours.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.ENOTDIR, errno.EISDIR, errno.EFBIG}


def _range_advice(args: argparse.Namespace, message: str) -> str:
    """Which --secagg-* flag to change for a fixed-point range error of the aggregator."""
    from tfpriv.crypto.secagg import scheme_class  # pylint: disable=g-import-not-at-top
    defaults = inspect.signature(scheme_class(args.secure_agg)).parameters
    if 'bound' in defaults and ('public bound' in message or 'exceeds bound' in message):
        now = args.secagg_bound or defaults['bound'].default
        return f'raise --secagg-bound above that magnitude (now {now:g})'
    now = args.secagg_precision or defaults['precision'].default
    return f'lower --secagg-precision (now {now}) so the sum fits the fixed-point range'


@contextlib.contextmanager
def _runtime_failures(args: argparse.Namespace):
    """Failures a user can cause at run time (data, workers, ranges, disk): one line, exit 1."""
    from tfpriv import errors  # pylint: disable=g-import-not-at-top
    try:
        yield
    except (errors.DatasetUnavailableError, errors.DropoutError, errors.WorkerIsolationError,
            errors.WorkerLost, errors.WorkerUnreachable) as error:
        _refuse(str(error), 1)
    except errors.FixedPointRangeError as error:
        _refuse(f'--secure-agg {args.secure_agg}: {error}; {_range_advice(args, str(error))}', 1)
    except OSError as error:
        if error.errno not in _WRITE_ERRNOS:
            raise
        _refuse(f'cannot write {error.filename or args.out or "runs"}: {error.strerror}', 1)


def _train_one(args: argparse.Namespace, scheme: str, data,
               progress: Optional[Progress]) -> Dict:
    """Trains one partition scheme; writes its metrics.json; returns its metrics (with history)."""
    from tfpriv.errors import CheckpointExists, CorruptCheckpoint, ResumeMismatch  # pylint: disable=g-import-not-at-top
    from tfpriv.federated import fedavg  # pylint: disable=g-import-not-at-top
    config = config_from_args(args, scheme)
    config.out = fedavg.default_out(config, args.dataset, args.out or 'runs')
    several = len(_partitions(args)) > 1
    try:
        result = fedavg.train(config, data, progress=prefixed(progress, f'{scheme} ' if several else ''))
    except (CheckpointExists, CorruptCheckpoint, ResumeMismatch) as error:
        _refuse(str(error))
    metrics = result.metrics()
    seconds = metrics['history'].get('seconds', [])
    metrics.update(mean_round_seconds=sum(seconds) / max(1, len(seconds)), run_dir=config.out)
    metrics['metrics_file'] = report.write_metrics(config.out, metrics)
    return metrics


def run(args: argparse.Namespace, progress: Optional[Progress] = None) -> report.RunReport:
    """Trains every requested partition; writes metrics.json, checkpoints and one figure.

    A failure the user can cause at run time is one line on stderr and exit status 1.
    """
    with _runtime_failures(args):
        return _run(args, progress)


def _run(args: argparse.Namespace, progress: Optional[Progress]) -> report.RunReport:
    from tfpriv.data import load_dataset  # pylint: disable=g-import-not-at-top
    from tfpriv.experiments.plotting import plot_histories  # pylint: disable=g-import-not-at-top
    data = load_dataset(args.dataset).subset(args.num_train, args.num_test)
    summary, histories = {}, {}
    for scheme in _partitions(args):
        summary[scheme] = _train_one(args, scheme, data, progress)
        histories[scheme] = summary[scheme]['history']
    tag = f'fedavg_{args.dataset}_{args.model}' + ('_dp' if args.dp else '')
    tag += (f'_{args.secure_agg}' if args.secure_agg != 'none' else '') + '_' + '_vs_'.join(histories)
    figure = plot_histories(histories, os.path.join(args.images, f'{tag}.png'), _title(args, summary),
                            xlabel='round')
    return _report(args, {'figure': figure, 'runs': summary})


def _title(args: argparse.Namespace, summary: Dict[str, Dict]) -> str:
    """`FedAvg MLP on mnist: K=100, C=0.1, E=1, B=32` (with DP σ and the secure aggregator)."""
    return (f"FedAvg {args.model.upper()} on {args.dataset}: K={summary[next(iter(summary))]['num_clients']}, "
            f"C={args.client_fraction}, E={args.local_epochs}, B={args.batch_size}"
            + (f", DP σ={args.noise_multiplier}" if args.dp else '')
            + (f", secure agg {args.secure_agg}" if args.secure_agg != 'none' else ''))


def _report(args: argparse.Namespace, metrics: Dict) -> report.RunReport:
    """The summary: test accuracy per partition (and of the model EMA), ε, the files."""
    from tfpriv.federated import checkpoint  # pylint: disable=g-import-not-at-top
    runs = metrics['runs']
    accuracy = []
    for scheme, run_metrics in runs.items():
        accuracy.append((scheme, run_metrics['test_accuracy']))
        if 'ema_test_accuracy' in run_metrics:
            accuracy.append((f'{scheme} model EMA', run_metrics['ema_test_accuracy']))
    epsilons = [report.Epsilon(m['epsilon'], f'RDP, user level, {scheme}' if len(runs) > 1
                               else 'RDP, user level', m['delta'])
                for scheme, m in runs.items() if 'epsilon' in m]
    first = next(iter(runs.values()))
    return report.RunReport(
        title=f"{_title(args, runs)}, {first['rounds_done']} rounds",
        accuracy=accuracy, epsilons=epsilons,
        files=[('figure', metrics['figure'])] + [('metrics', m['metrics_file']) for m in runs.values()]
        + [('checkpoint', checkpoint.path(m['run_dir'])) for m in runs.values()],
        metrics=metrics)


def interrupted(args: argparse.Namespace, since: float) -> str:
    """What a Ctrl-C leaves: each partition's checkpoint of its last finished round."""
    from tfpriv.federated import checkpoint, fedavg  # pylint: disable=g-import-not-at-top
    saved = []
    for scheme in _partitions(args):
        out = fedavg.default_out(config_from_args(args, scheme), args.dataset, args.out or 'runs')
        if report.resumable(checkpoint.path(out), args.resume, since):
            saved.append(f"{checkpoint.path(out)} (round {checkpoint.read_meta(out)['rounds_done']}"
                         f'/{args.rounds})')
    if not saved:
        return f'no round had finished, nothing was saved: rerun `{report.rerun_command(False)}`'
    if len(saved) < len(_partitions(args)):  # --resume needs a checkpoint for every partition
        return (f"saved {', '.join(saved)}, not every partition: start over with "
                f"`{report.rerun_command(False)} --overwrite`")
    return f"saved {', '.join(saved)}: continue with `{report.rerun_command(True)}`"
