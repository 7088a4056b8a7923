"""`train.py --federated`: the federated flags, their validation and the run.

The common flags of train.py keep their meaning: `--model`, `--activation`,
`--optimizer`/`--learning-rate` (client optimizer), `--batch-size` (client batch B), `--dp`
(DP-FedAvg here, with `--l2-norm-clip`, `--noise-multiplier`, `--delta`), `--seed`,
`--dataset`, `--num-train`/`--num-test`, `--out`, `--images`, `--resume`,
`--verbose`. `--epochs` is not used: rounds are `--rounds`.

`--partition` takes one scheme or a comma-separated list (e.g.
`iid,pathological`): each is trained in turn (its own run directory and
checkpoint) and all are drawn in one figure, `images/fedavg_*.png`.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import List, Optional

from tfpriv.federated.partition import PARTITIONS
from tfpriv.federated.runtime import parse_workers

SECURE_CHOICES = ('none', 'shamir', 'smpc', 'rlwe')
SERVER_OPTIMIZERS = ('sgd', 'sgdm', 'adam', 'yogi', 'adagrad')


def add_arguments(parser) -> None:
    """Adds the federated-only flags to `parser` (an ArgumentParser or argument group)."""
    add = parser.add_argument
    add('--clients', type=int, default=None,
        help='number of clients K (default 100; per-example: one per example)')
    add('--rounds', type=int, default=10, help='federated rounds (default 10)')
    add('--client-fraction', type=float, default=0.1,
        help='fraction C of clients sampled per round, in (0, 1] (default 0.1)')
    add('--local-epochs', type=int, default=1, help='local epochs E per round (default 1)')
    add('--partition', default='iid',
        help=f'client split, or a comma-separated list to compare: {", ".join(PARTITIONS)} '
             '(default iid)')
    add('--alpha', type=float, default=0.5,
        help='Dirichlet concentration for dirichlet (labels) and banks (sizes) (default 0.5)')
    add('--shards-per-client', type=int, default=2, help='pathological: shards per client (2)')
    add('--learning-rate-decay', '--client-lr-decay', dest='client_learning_rate_decay', type=float,
        default=1.0, help='plain FedAvg: round r clients use --learning-rate x decay^r, decay in '
        '(0, 1] (default 1)')
    add('--server-optimizer', '--server-opt', dest='server_optimizer', choices=SERVER_OPTIMIZERS,
        default='sgd', help='server optimizer (default sgd: plain FedAvg with --server-learning-rate 1)')
    add('--server-learning-rate', '--server-lr', dest='server_learning_rate', type=float, default=1.0,
        help='server learning rate (default 1.0)')
    add('--server-momentum', type=float, default=0.9, help='momentum of --server-optimizer sgdm (0.9)')
    add('--model-ema', type=float, default=0.0,
        help='also evaluate an exponential moving average of the global models with this '
             'decay β in [0, 1) (default 0: off)')
    add('--adaptive-clipping', action='store_true',
        help='DP-FedAvg with adaptive clipping (--l2-norm-clip is the initial clip)')
    add('--target-quantile', type=float, default=0.5,
        help='adaptive clipping: target unclipped quantile (default 0.5)')
    add('--secure-agg', choices=SECURE_CHOICES, default='none',
        help='secure aggregation of the client updates (default none)')
    add('--workers', default=None,
        help='remote TFF workers host:port,host:port (default: one local worker)')


def _partitions(args) -> List[str]:
    return [p.strip() for p in str(args.partition).split(',') if p.strip()]


def _num_examples(args) -> int:
    from tfpriv.experiments.cli import train_size  # pylint: disable=g-import-not-at-top,import-outside-toplevel
    return train_size(args)


def validate(args: argparse.Namespace, num_examples: Optional[int] = None) -> List[str]:
    """Problems with the federated flags, as messages (empty when fine). Needs no TensorFlow."""
    from tfpriv.federated.secure import available_schemes  # pylint: disable=g-import-not-at-top
    n = num_examples if num_examples is not None else _num_examples(args)
    errors = []
    parts = _partitions(args)
    unknown = [p for p in parts if p not in PARTITIONS]
    if not parts or unknown:
        errors.append(f'unknown --partition {",".join(unknown) or repr(args.partition)}; '
                      f'choose from {", ".join(PARTITIONS)}')
    if len(set(parts)) != len(parts):
        errors.append(f'--partition lists a scheme twice: {args.partition}')
    clients = args.clients
    if clients is not None and not 1 <= clients <= n:
        errors.append(f'--clients must be in [1, {n}] (the number of training examples), '
                      f'got {clients}')
    if parts == ['per-example'] and clients not in (None, n):
        errors.append(f'--partition per-example makes one client per example ({n}); '
                      f'drop --clients or set it to {n}')
    k = clients or 100
    if 'pathological' in parts and 1 <= k and k * args.shards_per_client > n:
        errors.append(f'--partition pathological needs --clients x --shards-per-client <= {n}, '
                      f'got {k} x {args.shards_per_client}')
    if any(p not in ('per-example',) for p in parts) and clients is None and k > n:
        errors.append(f'the default 100 clients exceed the {n} training examples: set --clients')
    checks = [
        (0 < args.client_fraction <= 1,
         f'--client-fraction must be in (0, 1], got {args.client_fraction}'),
        (args.rounds >= 1, f'--rounds must be >= 1, got {args.rounds}'),
        (args.local_epochs >= 1, f'--local-epochs must be >= 1, got {args.local_epochs}'),
        (args.alpha > 0, f'--alpha must be > 0, got {args.alpha}'),
        (args.shards_per_client >= 1, f'--shards-per-client must be >= 1, got {args.shards_per_client}'),
        (args.server_learning_rate > 0, f'--server-learning-rate must be > 0, got {args.server_learning_rate}'),
        (0 <= args.model_ema < 1, f'--model-ema must be in [0, 1), got {args.model_ema}'),
        (0 < args.client_learning_rate_decay <= 1, f'--learning-rate-decay must be in (0, 1], '
         f'got {args.client_learning_rate_decay}'),
        (args.client_learning_rate_decay == 1 or not (args.dp or args.secure_agg != 'none'),
         '--learning-rate-decay is only supported for plain FedAvg (--no-dp, no --secure-agg)'),
        (0 <= args.server_momentum < 1, f'--server-momentum must be in [0, 1), got {args.server_momentum}'),
        (0 < args.target_quantile < 1, f'--target-quantile must be in (0, 1), got {args.target_quantile}'),
        (args.batch_size >= 1, f'--batch-size must be >= 1, got {args.batch_size}'),
        (not args.adaptive_clipping or args.dp, '--adaptive-clipping needs --dp'),
        (not (args.dp and args.secure_agg != 'none'),
         '--dp (DP-FedAvg through TFF\'s DP aggregator) cannot be combined with --secure-agg'),
        (getattr(args, 'target_epsilon', None) is None,
         '--target-epsilon is not supported with --federated: set --noise-multiplier'),
    ]
    errors += [message for ok, message in checks if not ok]
    if args.secure_agg != 'none' and args.secure_agg not in available_schemes():
        errors.append(f'--secure-agg {args.secure_agg} is not available in this checkout '
                      f'(available: none, {", ".join(available_schemes())})')
    if args.workers is not None:
        try:
            parse_workers(args.workers)
        except ValueError as error:
            errors.append(f'--workers: {error}')
    return errors


def config_from_args(args: argparse.Namespace, scheme: str):
    """The `FedConfig` of one partition scheme of the run."""
    from tfpriv.federated.fedavg import FedConfig  # pylint: disable=g-import-not-at-top
    return FedConfig(
        model=args.model, activation=args.activation,
        clients=None if scheme == 'per-example' else (args.clients or 100),
        rounds=args.rounds, client_fraction=args.client_fraction, local_epochs=args.local_epochs,
        batch_size=args.batch_size, partition=scheme, alpha=args.alpha,
        shards_per_client=args.shards_per_client, client_optimizer=args.optimizer, client_learning_rate=args.learning_rate,
        client_learning_rate_decay=args.client_learning_rate_decay,
        server_optimizer=args.server_optimizer, server_learning_rate=args.server_learning_rate, server_momentum=args.server_momentum,
        model_ema=args.model_ema, dp=args.dp, l2_norm_clip=args.l2_norm_clip,
        noise_multiplier=args.noise_multiplier,
        adaptive_clipping=args.adaptive_clipping, target_quantile=args.target_quantile,
        delta=args.delta, secure_agg=args.secure_agg,
        workers=parse_workers(args.workers) if args.workers else None, seed=args.seed,
        resume=args.resume, verbose=getattr(args, 'verbose', 1))


def run(args: argparse.Namespace) -> dict:
    """Trains every requested partition; writes metrics JSON, checkpoints and one figure."""
    from tfpriv.data import load_dataset  # pylint: disable=g-import-not-at-top
    from tfpriv.federated import fedavg  # pylint: disable=g-import-not-at-top
    from tfpriv.experiments.plotting import plot_histories  # pylint: disable=g-import-not-at-top
    data = load_dataset(args.dataset).subset(args.num_train, args.num_test)
    summary, histories = {}, {}
    for scheme in _partitions(args):
        config = config_from_args(args, scheme)
        config.out = fedavg.default_out(config, args.dataset, args.out or 'runs')
        result = fedavg.train(config, data)
        result.pop('model')
        histories[scheme] = result['history']
        with open(os.path.join(config.out, 'metrics.json'), 'w') as f:
            json.dump(result, f, indent=1, default=float)
        summary[scheme] = {k: v for k, v in result.items() if k != 'history'}
        summary[scheme]['mean_round_seconds'] = (
            sum(result['history']['seconds']) / max(1, len(result['history']['seconds'])))
        summary[scheme]['run_dir'] = config.out
        line = f"fedavg {scheme}: test accuracy = {result['test_accuracy']:.4f}"
        if 'ema_test_accuracy' in result:
            line += f" (model EMA {result['ema_test_accuracy']:.4f})"
        if args.dp:
            line += f"; ε = {result['epsilon']:.3f}, δ = {result['delta']:g}"
        print(line)
    tag = f'fedavg_{args.dataset}_{args.model}' + ('_dp' if args.dp else '')
    tag += (f'_{args.secure_agg}' if args.secure_agg != 'none' else '') + '_' + '_vs_'.join(histories)
    title = (f"FedAvg {args.model.upper()} on {args.dataset}: K={summary[next(iter(summary))]['num_clients']}, "
             f"C={args.client_fraction}, E={args.local_epochs}, B={args.batch_size}"
             + (f", DP σ={args.noise_multiplier}" if args.dp else '')
             + (f", secure agg {args.secure_agg}" if args.secure_agg != 'none' else ''))
    figure = plot_histories(histories, os.path.join(args.images, f'{tag}.png'), title,
                            xlabel='round')
    print(f'figure: {figure}')
    return {'figure': figure, 'runs': summary}
