"""Accuracy vs ε of DP-SGD on MNIST: the best configuration per model family, per ε.

    PYTHONPATH=. .venv/bin/python benchmarks/dp_frontier.py [--families scatternet_linear ...]
        [--epsilons 0.5 1 2 3 8] [--search-epsilons 1 3] [--seeds 3] [--plot-only]

Two phases, both resumable: every finished run is appended as one JSON line to
`--results` (default benchmarks/results/dp_frontier.jsonl) and skipped when the
script is started again.

1. Search, on a validation split: the 60,000 training images are shuffled with
   a fixed public seed; 50,000 train, 10,000 validate (δ = 1e-5 for both n).
   For each family and each ε of `--search-epsilons`, every configuration of
   the family's small grid is trained with σ calibrated to that ε
   (`--target-epsilon`, RDP) and scored on the validation images. The test set
   is never used to choose anything (a search on the test set would itself leak
   it, and is not covered by ε). The search is not private either: its cost is
   reported as the number of configurations tried, as the issue asks.
2. Final: for every ε of `--epsilons`, the family's best validation configuration
   at the nearest searched ε is retrained on all 60,000 images, σ recalibrated
   to ε, with `--seeds` seeds; test accuracy mean ± sd, RDP and PLD ε, wall time.

Then `images/dp_frontier.png` (accuracy vs ε, the issue's published points drawn
as references) and a Markdown table on stdout. CPU is scarce: ScatterNet-linear
(cheap, cached features) has the largest grid; the pixel CNN and MLP the smallest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import tempfile
import time
from typing import Dict, Iterable, List, Optional

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # pylint: disable=wrong-import-position

from tfpriv.data import Dataset  # pylint: disable=wrong-import-position
from tfpriv.experiments.dpsgd import TrainConfig, load_data, train  # pylint: disable=wrong-import-position

EPSILONS = (0.5, 1.0, 2.0, 3.0, 8.0)
VALIDATION = 10_000
SPLIT_SEED = 2021
RESULTS = os.path.join('benchmarks', 'results', 'dp_frontier.jsonl')
# Published MNIST points (δ = 1e-5), from issue #16.
REFERENCES = (('TF Privacy tutorial (ReLU CNN)', 96.6, 2.92), ('Opacus example', 96.8, 3.01),
              ('Papernot et al. 2021 (tanh CNN)', 98.1, 2.93),
              ('Tramèr & Boneh 2021 (ScatterNet)', 98.7, 2.93), ('PATE 2018', 98.5, 1.97))
# Per family: fixed settings, and the points searched (each a dict of the settings it varies).
FAMILIES: Dict[str, dict] = {
    'scatternet_linear': dict(
        fixed=dict(model='scatternet_linear', l2_norm_clip=0.1, momentum=0.9, lr_schedule='cosine',
                   learning_rate=4.0),
        points=[dict(batch_size=2048, epochs=10), dict(batch_size=2048, epochs=25),
                dict(batch_size=4096, epochs=10), dict(batch_size=2048, epochs=50),
                # Tramèr & Boneh's MNIST ScatterNet + linear settings (their README), with GroupNorm
                dict(batch_size=4096, epochs=50, learning_rate=8.0)]),
    'scatternet_cnn': dict(
        fixed=dict(model='scatternet_cnn', activation='tanh', l2_norm_clip=0.1, momentum=0.9,
                   lr_schedule='cosine', learning_rate=4.0),
        points=[dict(batch_size=2048, epochs=10)]),
    'cnn': dict(
        fixed=dict(model='cnn', activation='tanh', l2_norm_clip=1.0, momentum=0.9,
                   lr_schedule='cosine', learning_rate=2.0),
        # lr 0.125: the TF Privacy tutorial's lr 0.25 at batch 256, scaled linearly to batch
        # 1024 and divided by 1 / (1 - momentum)
        points=[dict(batch_size=1024, epochs=10), dict(batch_size=1024, epochs=10, learning_rate=0.5),
                dict(batch_size=1024, epochs=10, learning_rate=0.125)]),
    'mlp': dict(
        fixed=dict(model='mlp', activation='tanh', l2_norm_clip=1.0, momentum=0.9,
                   lr_schedule='cosine', learning_rate=2.0),
        points=[dict(batch_size=1024, epochs=10), dict(batch_size=2048, epochs=25)]),
}


def grid(family: str) -> List[dict]:
    """The family's configurations: its fixed settings plus one searched point each."""
    spec = FAMILIES[family]
    return [dict(spec['fixed'], **point) for point in spec['points']]


def validation_split(data: Dataset) -> Dataset:
    """50,000 training / 10,000 validation images of the training set (fixed public shuffle)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(data.num_train)
    train_rows, valid_rows = order[:-VALIDATION], order[-VALIDATION:]
    return dataclasses.replace(data, x_train=data.x_train[train_rows], y_train=data.y_train[train_rows],
                               x_test=data.x_train[valid_rows], y_test=data.y_train[valid_rows])


def load_results(path: str) -> List[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append_result(path: str, record: dict) -> None:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'a') as f:
        f.write(json.dumps(record) + '\n')
        f.flush()
        os.fsync(f.fileno())


def run_key(phase: str, family: str, epsilon: float, config: dict, seed: int) -> str:
    return json.dumps([phase, family, epsilon, config, seed], sort_keys=True)


def run_one(config: dict, epsilon: float, seed: int, data: Dataset) -> dict:
    """One DP-SGD run at target ε; its accuracy on `data`'s test part, ε (RDP, PLD), time."""
    with tempfile.TemporaryDirectory(prefix='dp-frontier-') as out:
        start = time.time()
        result = train(TrainConfig(**config, target_epsilon=epsilon, seed=seed, out=out,
                                   verbose=0), data)
        seconds = time.time() - start
    privacy = result.privacy
    return dict(accuracy=result.test_accuracy, epsilon_rdp=privacy.epsilon,
                epsilon_pld=privacy.epsilon_pld, noise_multiplier=privacy.noise_multiplier,
                delta=privacy.delta, seconds=seconds, final_loss=result.history['loss'][-1])


def run_all(tasks: Iterable[tuple], data: Dataset, results: List[dict], path: str) -> None:
    """Runs each (phase, family, ε, config, seed) not yet in `results`; appends each as it ends."""
    done = {r['key'] for r in results}
    for phase, family, epsilon, config, seed in tasks:
        key = run_key(phase, family, epsilon, config, seed)
        if key in done:
            continue
        record = dict(key=key, phase=phase, family=family, epsilon=epsilon, config=config,
                      seed=seed, **run_one(config, epsilon, seed, data))
        append_result(path, record)
        results.append(record)
        print(f"{phase} {family} ε={epsilon:g} {config} seed {seed}: acc {record['accuracy']:.4f}, "
              f"ε rdp {record['epsilon_rdp']:.3f} pld {record['epsilon_pld']:.3f}, "
              f"{record['seconds']:.0f} s", flush=True)


def best_config(results: List[dict], family: str, epsilon: float) -> Optional[dict]:
    """The validation-best configuration of `family` at the searched ε nearest `epsilon`."""
    searched = [r for r in results if r['phase'] == 'search' and r['family'] == family]
    if not searched:
        return None
    nearest = min({r['epsilon'] for r in searched}, key=lambda e: abs(math.log(e / epsilon)))
    return max((r for r in searched if r['epsilon'] == nearest), key=lambda r: r['accuracy'])['config']


def summarize(results: List[dict]) -> List[dict]:
    """One row per (family, ε, configuration) of the final runs: mean ± sd test accuracy etc."""
    rows = []
    finals = [r for r in results if r['phase'] == 'final']
    groups = sorted({(r['family'], r['epsilon'], json.dumps(r['config'], sort_keys=True))
                     for r in finals})
    for family, epsilon, config in groups:
        runs = [r for r in finals if (r['family'], r['epsilon']) == (family, epsilon)
                and json.dumps(r['config'], sort_keys=True) == config]
        accuracies = [100 * r['accuracy'] for r in runs]
        rows.append(dict(family=family, epsilon=epsilon, config=runs[0]['config'], seeds=len(runs),
                         mean=statistics.mean(accuracies),
                         sd=statistics.stdev(accuracies) if len(runs) > 1 else 0.0,
                         epsilon_rdp=max(r['epsilon_rdp'] for r in runs),
                         epsilon_pld=max(r['epsilon_pld'] for r in runs),
                         noise_multiplier=runs[0]['noise_multiplier'],
                         seconds=statistics.mean(r['seconds'] for r in runs),
                         searched=sum(r['phase'] == 'search' and r['family'] == family
                                      for r in results),
                         chosen=runs[0]['config'] == best_config(results, family, epsilon)))
    return rows


def command(config: dict, epsilon: float, seed: int = 0) -> str:
    flags = {'batch_size': '--batch-size', 'learning_rate': '--lr', 'l2_norm_clip': '--l2-norm-clip',
             'lr_schedule': '--lr-schedule', 'ema_decay': '--ema-decay'}
    parts = [f"{flags.get(k, '--' + k.replace('_', '-'))} {v}" for k, v in sorted(config.items())]
    return f"python3 train.py {' '.join(parts)} --target-epsilon {epsilon:g} --seed {seed}"


def print_table(rows: List[dict]) -> None:
    """All final rows; a row whose configuration the current search no longer picks (a later
    search at a nearer ε chose another) is marked superseded and left out of the figure."""
    print('| family | ε target | ε RDP | ε PLD | σ | test acc. (mean ± sd, seeds) | s / run | '
          'configs searched | chosen by the current search | command |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for r in rows:
        print(f"| {r['family']} | {r['epsilon']:g} | {r['epsilon_rdp']:.3f} | {r['epsilon_pld']:.3f} "
              f"| {r['noise_multiplier']:.3f} | {r['mean']:.2f} ± {r['sd']:.2f} ({r['seeds']}) "
              f"| {r['seconds']:.0f} | {r['searched']} | {'yes' if r['chosen'] else 'superseded'} "
              f"| `{command(r['config'], r['epsilon'])}` |")


def plot(rows: List[dict], path: str) -> None:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
    fig, ax = plt.subplots(figsize=(9, 5))
    for family in sorted({r['family'] for r in rows}):
        points = sorted((r['epsilon_rdp'], r['mean'], r['sd']) for r in rows
                        if r['family'] == family and r['chosen'])
        ax.errorbar(*zip(*points), marker='o', capsize=3, label=f'tfpriv {family}')
    for i, (name, accuracy, epsilon) in enumerate(REFERENCES):
        ax.scatter([epsilon], [accuracy], marker='*x+dP'[i % 5], s=90, color='k', label=name, zorder=3)
    ax.set_xscale('log')
    ax.set_xlabel('ε (RDP, δ = 1e-5)')
    ax.set_ylabel('test accuracy (%)')
    ax.set_title('DP-SGD on MNIST: accuracy vs ε (mean ± sd over seeds)')
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.02, 1.0))
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches='tight')
    print(f'figure: {path}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--families', nargs='+', choices=tuple(FAMILIES), default=tuple(FAMILIES))
    parser.add_argument('--epsilons', nargs='+', type=float, default=EPSILONS)
    parser.add_argument('--search-epsilons', nargs='+', type=float, default=(1.0, 3.0))
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--seed-ids', nargs='+', type=int, default=None,
                        help='final runs of these seeds only (default 0 .. --seeds - 1), to split '
                        'the finals over processes')
    parser.add_argument('--results', default=RESULTS)
    parser.add_argument('--figure', default=os.path.join('images', 'dp_frontier.png'))
    parser.add_argument('--plot-only', action='store_true', help='table and figure from --results')
    args = parser.parse_args()
    results = load_results(args.results)
    if not args.plot_only:
        for family in args.families:
            data = load_data(FAMILIES[family]['fixed']['model'])
            run_all([('search', family, e, c, 0) for e in args.search_epsilons for c in grid(family)],
                    validation_split(data), results, args.results)
            run_all([('final', family, e, best_config(results, family, e), s)
                     for e in args.epsilons for s in args.seed_ids or range(args.seeds)], data,
                    results, args.results)
    rows = summarize(results)
    print(f"configurations tried on the validation split: "
          f"{sum(r['phase'] == 'search' for r in results)}")
    print_table(rows)
    plot(rows, args.figure)


if __name__ == '__main__':
    main()
