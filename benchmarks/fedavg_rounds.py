"""FedAvg on MNIST: rounds to target accuracy, TFF vs Keras round time, secure-aggregation cost.

    .venv/bin/python benchmarks/fedavg_rounds.py [--models mlp,cnn] [--partitions iid,pathological]
                                                 [--max-rounds 20] [--out runs/bench_fedavg] [--quiet]

1. Rounds to 97% (MLP, McMahan et al.'s 2NN target) and 99% (CNN) central test
   accuracy with K = 100 clients, C = 0.1, E = 5, B = 10, for IID and
   McMahan's pathological non-IID split. Each configuration checkpoints every
   round in --out, so re-running with a larger --max-rounds continues it.
2. The time of one round (10 clients x 5 epochs of 600 examples) through TFF
   vs the same client training done directly in Keras (fit each client from the
   global weights, then average weighted by size), on the same clients.
3. Secure aggregation of those 10 real client deltas with each scheme
   available: seconds, bytes per client and max error vs plain averaging.
4. `--dp-row`: DP-FedAvg on MNIST, K = --dp-clients IID clients, m = C K per round:
   central DP (TFF's Gaussian aggregator) vs distributed DP (DDGauss,
   `tfpriv.federated.distributed_dp`) under plain summation and each secure
   aggregator, at the same σ and ε, paired by seed (same initial weights, clients
   and data order): accuracy, paired difference ± SE, ε, round time vs central.
   `--epsilon-curves`: ε per round of fixed-size (replace-one) vs
   Poisson (add/remove) client sampling, printed and drawn.
5. `--crx-row`: Credit Approval with one client per applicant vs the
   centralized model of the same shape on the same split.
Progress (rounds, timing repeats, secure aggregators' clients) goes to stderr
unless `--quiet`; stdout holds the figures only. Unless `--default-allocator`, the
process keeps freed memory (`tfpriv.allocator`, as `train.py` does), for every mode alike;
each --dp-results line records which.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from typing import Optional

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=wrong-import-position

from tfpriv import allocator  # pylint: disable=wrong-import-position
from tfpriv.data import load_mnist  # pylint: disable=wrong-import-position
from tfpriv.experiments.progress import StderrProgress  # pylint: disable=wrong-import-position
from tfpriv.federated import fedavg, partition, secure  # pylint: disable=wrong-import-position
from tfpriv.federated.runtime import tff_context  # pylint: disable=wrong-import-position
from tfpriv.progress import Progress, each, prefixed  # pylint: disable=wrong-import-position
from tfpriv.rng import RandomSource  # pylint: disable=wrong-import-position

TARGETS = {'mlp': 0.97, 'cnn': 0.99, 'cnn_large': 0.99}
# McMahan et al. 2017, Table 2 (their CNN is tfpriv's cnn_large).
PAPER = {('cnn_large', 'iid'): '18-20', ('cnn_large', 'pathological'): '206-229'}


def _config(args, model: str, scheme: str) -> fedavg.FedConfig:
    return fedavg.FedConfig(model=model, clients=100, rounds=args.max_rounds, client_fraction=0.1,
                            local_epochs=5, batch_size=10, partition=scheme,
                            client_learning_rate=args.client_learning_rate, client_learning_rate_decay=args.client_learning_rate_decay,
                            server_optimizer=args.server_optimizer,
                            server_learning_rate=args.server_learning_rate, server_momentum=args.server_momentum,
                            model_ema=args.model_ema, seed=0, resume=True,
                            out=os.path.join(args.out, f'{model}_{scheme}'))


def rounds_to_target(args, data, progress: Optional[Progress]) -> None:
    momentum = f' momentum {args.server_momentum}' if args.server_optimizer == 'sgdm' else ''
    decay = f' x {args.client_learning_rate_decay}^round' if args.client_learning_rate_decay != 1 else ''
    ema = f', model EMA {args.model_ema}' if args.model_ema else ''
    print(f'== rounds to target (K=100, C=0.1, E=5, B=10, client lr {args.client_learning_rate}{decay}, '
          f'server {args.server_optimizer} lr {args.server_learning_rate}{momentum}{ema}, '
          f'at most {args.max_rounds} rounds)')
    from tfpriv.experiments.plotting import plot_histories
    for model in args.models:
        histories = {}
        for scheme in args.partitions:
            config = _config(args, model, scheme)
            began = time.perf_counter()
            history = histories[scheme] = fedavg.train(
                config, data, progress=prefixed(progress, f'{model} {scheme}: ')).history
            print(f'{model} {scheme:12s}: {_outcome(history, TARGETS[model])} '
                  f'(median round {statistics.median(history["seconds"]):.1f} s, '
                  f'this run {time.perf_counter() - began:.0f} s)'
                  + (f'; McMahan et al. 2017: {PAPER[(model, scheme)]}'
                     if (model, scheme) in PAPER else ''), flush=True)
        figure = plot_histories(histories, os.path.join(
            args.images, f'fedavg_mnist_{model}_{"_vs_".join(histories)}.png'),
            f'FedAvg {model.upper()} on MNIST: K=100, C=0.1, E=5, B=10', xlabel='round',
            target=TARGETS[model])
        print(f'figure: {figure}')


def _outcome(history, target: float) -> str:
    """'reached 0.99 in N rounds' or 'did not reach ...', best; for the model EMA too."""
    parts = []
    for key, name in (('val_accuracy', 'global model'), ('ema_val_accuracy', 'model EMA')):
        if key in history:
            hit = fedavg.rounds_to_accuracy(history, target, key)
            parts.append(f'{name}: ' + (f'reached {target} in {hit} rounds' if hit else
                                        f'did not reach {target} in {len(history[key])} rounds')
                         + f', best {max(history[key]):.4f}')
    return '; '.join(parts)


def figure_from(spec: str, images: str) -> None:
    """One figure of finished runs: spec is `label=run_dir,label=run_dir` (checkpoint dirs)."""
    from tfpriv.federated.checkpoint import read_meta
    from tfpriv.experiments.plotting import plot_histories
    histories, models = {}, set()
    for item in spec.split(','):
        label, _, directory = item.partition('=')
        meta = read_meta(directory)
        histories[label] = meta['history']
        models.add(meta['fingerprint']['model'])
        fp = meta['fingerprint']
        decay, ema = fp.get('client_learning_rate_decay', 1.0), fp.get('model_ema', 0.0)
        print(f'{label}: {fp["partition"]}, client lr {fp["client_learning_rate"]}'
              f'{f" x {decay}^round" if decay != 1.0 else ""}, server {fp["server_optimizer"]} '
              f'lr {fp["server_learning_rate"]} momentum {fp["server_momentum"]}'
              f'{f", model EMA {ema}" if ema else ""}: '
              f'{_outcome(meta["history"], TARGETS[fp["model"]])}')
    model = '_'.join(sorted(models))
    path = os.path.join(images, f'fedavg_mnist_{model}_{"_vs_".join(histories)}.png')
    print('figure:', plot_histories(histories, path, f'FedAvg {model} on MNIST: K=100, C=0.1, E=5, B=10',
                                    xlabel='round',
                                    target=TARGETS[model] if len(models) == 1 else None))


def _keras_round(config, data, parts, clients, initial):
    """The round in plain Keras; returns (seconds, client weight lists)."""
    import tensorflow as tf
    model = fedavg.keras_model(config, data)
    model.compile(optimizer=tf.keras.optimizers.SGD(config.client_learning_rate),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    began = time.perf_counter()
    results = []
    for k in clients:
        model.set_weights(initial)
        model.fit(partition.client_dataset(data.x_train, data.y_train, parts[k], 10, 5, int(k)),
                  epochs=1, verbose=0)
        results.append(model.get_weights())
    sizes = np.array([len(parts[k]) for k in clients], dtype=float)
    _ = [sum(s * r[j] for s, r in zip(sizes / sizes.sum(), results)) for j in range(len(initial))]
    return time.perf_counter() - began, results


def round_times(args, data, model: str, repeats: int, progress: Optional[Progress]) -> None:
    config = dataclasses.replace(_config(args, model, 'iid'), out=None, resume=False)
    rng = RandomSource(seed=1)
    parts = partition.partition('iid', data.y_train, 100, rng)
    clients = fedavg.sample_clients(100, 10, 1, rng)[0]
    datasets = [partition.client_dataset(data.x_train, data.y_train, parts[k], 10, 5, int(k))
                for k in clients]
    spec = datasets[0].element_spec
    with tff_context():
        rounds = fedavg.build_round(config, fedavg.make_model_fn(config, data, spec), spec, 100)
        state = rounds.initialize()
        initial = [np.asarray(w) for w in rounds.get_model_weights(state).trainable]
        tff_times = []
        # The first call also compiles: not counted.
        for _ in each(progress, f'{model} TFF rounds', range(repeats + 1)):
            began = time.perf_counter()
            rounds.next(state, datasets)
            tff_times.append(time.perf_counter() - began)
    keras_times, results = zip(*[_keras_round(config, data, parts, clients, initial)
                                 for _ in each(progress, f'{model} Keras rounds',
                                               range(repeats + 1))])
    tff_s, keras_s = statistics.median(tff_times[1:]), statistics.median(keras_times[1:])
    print(f'{model}: one round (10 clients x 5 epochs x 600 examples, B=10): TFF {tff_s:.2f} s, '
          f'Keras {keras_s:.2f} s, TFF/Keras = {tff_s / keras_s:.2f}x (median of {repeats})',
          flush=True)
    deltas = [[w0 - w for w0, w in zip(initial, r)] for r in results[-1]]
    sizes = [len(parts[k]) for k in clients]
    reference, _ = secure.make_aggregator('plain').aggregate(deltas, sizes)
    for scheme in secure.available_schemes():
        aggregator = secure.make_aggregator(scheme, num_parties=len(deltas))
        aggregator.progress = prefixed(progress, f'{model} {scheme} ')
        began = time.perf_counter()
        average, stats = aggregator.aggregate(deltas, sizes)
        seconds = time.perf_counter() - began
        error = max(float(np.max(np.abs(a - b))) for a, b in zip(average, reference))
        print(f'{model}: secure aggregation {scheme}: {seconds:.3f} s per round '
              f'({100 * seconds / tff_s:.1f}% of the TFF round), '
              f'{stats.bytes_per_client / 1e6:.2f} MB per client, max |error| {error:.1e}',
              flush=True)


def _dp_config(args, sigma: float, seed: int, **options) -> fedavg.FedConfig:
    return fedavg.FedConfig(model='mlp', clients=args.dp_clients, rounds=args.dp_rounds,
                            client_fraction=args.dp_fraction, local_epochs=1, batch_size=10,
                            client_learning_rate=args.client_learning_rate, dp=True,
                            noise_multiplier=sigma, l2_norm_clip=args.dp_clip, seed=seed, **options)


def _dp_key(args, sigma: float) -> str:
    return (f'K={args.dp_clients} C={args.dp_fraction} T={args.dp_rounds} S={args.dp_clip} '
            f'sigma={sigma} lr={args.client_learning_rate}')


def _dp_records(path: str) -> list:
    import json
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _dp_run(args, data, sigma: float, label: str, seed: int, progress) -> dict:
    """One DP-FedAvg run (central or distributed under one backend), appended to --dp-results."""
    import json
    options = {} if label == 'central' else dict(dp_mode='distributed', secure_agg=label)
    result = fedavg.train(_dp_config(args, sigma, seed, **options), data,
                          progress=prefixed(progress, f'σ={sigma} {label} seed {seed}: '))
    history = result.history
    record = dict(key=_dp_key(args, sigma), label=label, seed=seed, sigma=sigma,
                  test_accuracy=result.test_accuracy, epsilon=result.epsilon, delta=result.delta,
                  clients_per_round=result.clients_per_round, num_clients=result.num_clients,
                  round_seconds=statistics.median(history['seconds'][1:] or history['seconds']),
                  agg_seconds=statistics.median(history['agg_seconds']) if 'agg_seconds' in history else None,
                  val_accuracy=history['val_accuracy'],
                  allocator='default' if args.default_allocator else 'kept')
    os.makedirs(os.path.dirname(os.path.abspath(args.dp_results)), exist_ok=True)
    with open(args.dp_results, 'a') as handle:
        handle.write(json.dumps(record) + '\n')
    return record


def dp_row(args, data, progress: Optional[Progress]) -> None:
    """Central vs distributed DP-FedAvg (every secure aggregator) at the same σ, PAIRED by seed.

    A seed fixes the initial weights, the client split, the client sample of every round and
    each client's data order in both modes (`fedavg.train`); only the noise realisation
    differs (TFF's Gaussian vs the clients' discrete-Gaussian shares). The distributed noise
    is calibrated so that σ_eff = σ (`distributed_dp.matching_params`): both ε are computed
    by dp_accounting and printed. Runs already in --dp-results are reused, so several
    processes (e.g. one per backend) fill one table. `--dp-reverse` runs the labels in
    reverse order (central last).
    """
    labels = ['central'] + args.dp_schemes
    if args.dp_reverse:  # central last: with a forward run of another seed, drift cancels
        labels.reverse()
    for sigma in args.dp_sigmas:
        key = _dp_key(args, sigma)
        for seed in args.dp_seeds:
            for label in labels:
                done = {(r['label'], r['seed']) for r in _dp_records(args.dp_results) if r['key'] == key}
                if (label, seed) not in done:
                    _dp_run(args, data, sigma, label, seed, progress)
        dp_table(args.dp_results, key)


def dp_table(path: str, key: str) -> None:
    """Per backend: mean accuracy, mean paired difference to central ± its standard error, ε,
    round time vs central's, over the seeds that have both runs."""
    records = [r for r in _dp_records(path) if r['key'] == key]
    central = {r['seed']: r for r in records if r['label'] == 'central'}
    print(f'== DP-FedAvg, MNIST MLP, {key}, E=1, B=10 (paired by seed; {path})')
    if not central:
        return
    first = next(iter(central.values()))
    print(f'central: K={first["num_clients"]}, m={first["clients_per_round"]}, '
          f'ε = {first["epsilon"]:.4f} (δ = {first["delta"]:g}); seeds {sorted(central)}: '
          f'accuracy {statistics.mean(r["test_accuracy"] for r in central.values()):.4f}, '
          f'median round {statistics.median(r["round_seconds"] for r in central.values()):.2f} s')
    for label in dict.fromkeys(r['label'] for r in records if r['label'] != 'central'):
        runs = {r['seed']: r for r in records if r['label'] == label and r['seed'] in central}
        seeds = sorted(runs)
        diffs = [runs[s]['test_accuracy'] - central[s]['test_accuracy'] for s in seeds]
        se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float('nan')
        half = _t_quantile(len(diffs) - 1) * se  # 95 % confidence half-width
        ratio = statistics.median(runs[s]['round_seconds'] / central[s]['round_seconds'] for s in seeds)
        eps = max(runs[s]['epsilon'] for s in seeds)
        agg = [runs[s]['agg_seconds'] for s in seeds if runs[s]['agg_seconds'] is not None]
        print(f'distributed {label:7s}: seeds {seeds}: accuracy '
              f'{statistics.mean(runs[s]["test_accuracy"] for s in seeds):.4f}, paired difference '
              f'{100 * statistics.mean(diffs):+.2f} ± {100 * se:.2f} points (SE; 95 % CI '
              f'[{100 * (statistics.mean(diffs) - half):+.2f}, {100 * (statistics.mean(diffs) + half):+.2f}]; '
              f'per seed {", ".join(f"{100 * d:+.2f}" for d in diffs)}), ε = {eps:.4f}, round time '
              f'{ratio:.2f}x central (median of per-seed ratios)'
              + (f', aggregation {statistics.median(agg):.2f} s' if agg else ''), flush=True)


def dp_figure(path: str, key: str, images: str) -> None:
    """Mean test accuracy per round over the seeds of each label (central, each backend)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    records = [r for r in _dp_records(path) if r['key'] == key]
    fig, ax = plt.subplots(figsize=(6, 4))
    for label in dict.fromkeys(r['label'] for r in records):
        curves = np.array([r['val_accuracy'] for r in records if r['label'] == label])
        ax.plot(range(1, curves.shape[1] + 1), curves.mean(axis=0),
                label=f'{label if label == "central" else "distributed " + label} ({len(curves)} seeds)')
    ax.set(xlabel='round', ylabel='test accuracy (mean over seeds)', title=f'DP-FedAvg MLP, MNIST: {key}')
    ax.title.set_fontsize(8)
    ax.legend(fontsize=8)
    os.makedirs(images, exist_ok=True)
    figure = os.path.join(images, 'fedavg_dp_central_vs_distributed.png')
    fig.tight_layout()
    fig.savefig(figure)
    print(f'figure: {figure}')


def _t_quantile(dof: int) -> float:
    """The 0.975 quantile of Student's t with `dof` degrees of freedom (nan below 1)."""
    if dof < 1:
        return float('nan')
    from scipy import stats
    return float(stats.t.ppf(0.975, dof))


def epsilon_curves(args) -> None:
    """ε(δ) per round: fixed-size sampling (replace-one) vs Poisson sampling (add/remove)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from tfpriv.dp import accounting
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (k, m, sigma, rounds) in zip(axes, ((20, 5, 1.0, 5), (100, 10, 1.0, 100))):
        delta = accounting.default_delta(k)
        fixed = accounting.fedavg_epsilons(k, m, sigma, rounds, delta)
        poisson = accounting.fedavg_epsilons(k, m, sigma, rounds, delta, 'poisson', m / k)
        print(f'ε after {rounds} rounds, K={k}, m=C K={m}, σ={sigma}, δ={delta:g}: '
              f'fixed-size (replace-one) {fixed[-1]:.2f}, Poisson (add/remove) {poisson[-1]:.2f}')
        ax.plot(range(1, rounds + 1), fixed, label='fixed-size m, replace-one')
        ax.plot(range(1, rounds + 1), poisson, label='Poisson C = m/K, add/remove')
        ax.set(xlabel='round', ylabel='ε (RDP)', title=f'K={k}, m={m}, σ={sigma}, δ={delta:g}')
        ax.legend()
    path = os.path.join(args.images, 'fedavg_epsilon_fixed_vs_poisson.png')
    os.makedirs(args.images, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    print(f'figure: {path}')


def crx_row(args, progress: Optional[Progress]) -> None:
    """Credit Approval: FedAvg with one client per applicant vs the centralized model."""
    import tensorflow as tf
    from tfpriv.data.credit import load_credit
    data = load_credit()
    config = fedavg.FedConfig(model='mlp', clients=None, partition='per-example', rounds=args.crx_rounds,
                              client_fraction=0.1, local_epochs=1, batch_size=10,
                              client_learning_rate=0.1, seed=0)
    model = fedavg.keras_model(config, data)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), metrics=['accuracy'],
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.x_train, data.y_train, batch_size=32, epochs=args.crx_epochs, verbose=0)
    central = model.evaluate(data.x_test, data.y_test, verbose=0)[1]
    result = fedavg.train(config, data, progress=prefixed(progress, 'crx: '))
    print(f'crx: centralized MLP (SGD lr 0.1, B=32, {args.crx_epochs} epochs) test accuracy {central:.4f}; '
          f'FedAvg one client per applicant (K={result.num_clients}, C=0.1, E=1, lr 0.1, '
          f'{args.crx_rounds} rounds) {result.test_accuracy:.4f} (best {max(result.history["val_accuracy"]):.4f}); '
          f'gap {100 * (central - result.test_accuracy):.1f} points on {len(data.y_test)} test applicants')


def parse_args() -> argparse.Namespace:
    """The benchmark's flags (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', default='mlp,cnn')
    parser.add_argument('--partitions', default='iid,pathological')
    parser.add_argument('--max-rounds', type=int, default=20)
    parser.add_argument('--client-learning-rate', '--client-lr', dest='client_learning_rate', type=float, default=0.1)
    parser.add_argument('--client-learning-rate-decay', '--client-lr-decay', dest='client_learning_rate_decay', type=float, default=1.0,
                        help='client lr of round r: --client-lr x decay^r')
    parser.add_argument('--server-optimizer', '--server-opt', dest='server_optimizer', default='sgd', choices=fedavg.SERVER_OPTIMIZERS)
    parser.add_argument('--server-learning-rate', '--server-lr', dest='server_learning_rate', type=float, default=1.0)
    parser.add_argument('--server-momentum', type=float, default=0.9, help='for --server-opt sgdm')
    parser.add_argument('--model-ema', type=float, default=0.0,
                        help='also evaluate an EMA of the global models with this decay')
    parser.add_argument('--timing-repeats', type=int, default=2)
    parser.add_argument('--skip-targets', action='store_true')
    parser.add_argument('--skip-timing', action='store_true')
    parser.add_argument('--out', default='runs/bench_fedavg')
    parser.add_argument('--images', default='images')
    parser.add_argument('--dp-row', action='store_true', help='central vs distributed DP-FedAvg')
    parser.add_argument('--dp-sigmas', default='1.0')
    parser.add_argument('--dp-schemes', default='plain,shamir,smpc,rlwe,secagg')
    parser.add_argument('--dp-clients', type=int, default=500)
    parser.add_argument('--dp-fraction', type=float, default=0.1)
    parser.add_argument('--dp-rounds', type=int, default=20)
    parser.add_argument('--dp-clip', type=float, default=0.5)
    parser.add_argument('--dp-seeds', default='0,1,2,3')
    parser.add_argument('--dp-results', default='runs/bench_fedavg/dp_row.jsonl',
                        help='one JSON line per run; runs already there are reused')
    parser.add_argument('--dp-reverse', action='store_true',
                        help='run the backends in reverse order, central last (pair a forward '
                             'seed with a reversed one so that a drifting machine speed cancels)')
    parser.add_argument('--dp-table', action='store_true',
                        help='only print the table of the runs in --dp-results')
    parser.add_argument('--epsilon-curves', action='store_true')
    parser.add_argument('--crx-row', action='store_true', help='Credit Approval: federated vs centralized')
    parser.add_argument('--crx-rounds', type=int, default=60)
    parser.add_argument('--crx-epochs', type=int, default=30)
    parser.add_argument('--figure-from', default=None,
                        help='only plot finished runs in one figure: label=run_dir,label=run_dir')
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    parser.add_argument('--default-allocator', action='store_true',
                        help="keep glibc malloc's default policy (tfpriv.allocator)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not args.default_allocator:
        allocator.keep_freed_memory()
    progress = StderrProgress(verbose=0 if args.quiet else 1)
    if args.figure_from:
        figure_from(args.figure_from, args.images)
        return
    if args.epsilon_curves or args.crx_row or args.dp_row or args.dp_table:
        extra_rows(args, progress)
        return
    args.models = args.models.split(',')
    args.partitions = args.partitions.split(',')
    data = load_mnist()
    if not args.skip_timing:
        print('== per-round time and secure-aggregation overhead')
        for model in args.models:
            round_times(args, data, model, args.timing_repeats, progress)
    if not args.skip_targets:
        rounds_to_target(args, data, progress)


def extra_rows(args, progress: Optional[Progress]) -> None:
    """Only the rows asked for: ε curves, crx, DP-FedAvg."""
    if args.epsilon_curves:
        epsilon_curves(args)
    if args.crx_row:
        crx_row(args, progress)
    if args.dp_table:
        for sigma in args.dp_sigmas.split(','):
            dp_table(args.dp_results, _dp_key(args, float(sigma)))
            dp_figure(args.dp_results, _dp_key(args, float(sigma)), args.images)
    elif args.dp_row:
        args.dp_sigmas = [float(s) for s in args.dp_sigmas.split(',')]
        args.dp_schemes = args.dp_schemes.split(',')
        args.dp_seeds = [int(seed) for seed in args.dp_seeds.split(',')]
        dp_row(args, load_mnist(), progress)


if __name__ == '__main__':
    main()
