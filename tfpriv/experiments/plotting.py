"""Figures of the `train.py` runs: loss, accuracy and ε per epoch (or round); PATE's figures."""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

History = Mapping[str, Sequence[float]]


def _save(fig, path: str) -> str:
    """Lays out, writes (creating the directory) and closes `fig`; returns `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_histories(histories: Mapping[str, History], path: str, title: str,
                   xlabel: str = 'epoch', target: Optional[float] = None) -> str:
    """One figure: panels for loss, accuracy and (when present) ε, one line style per run label.

    Each history maps `loss`, `val_loss`, `accuracy`, `val_accuracy` and
    optionally `epsilon` to per-epoch values. With a `target` accuracy a last
    panel zooms on the test accuracy near it, with the target drawn. Returns `path`.
    """
    has_epsilon = any('epsilon' in h for h in histories.values())
    panels: List[Dict[str, str]] = [
        {'loss': 'train loss', 'val_loss': 'test loss', 'ema_val_loss': 'test loss (model EMA)'},
        {'accuracy': 'train accuracy', 'val_accuracy': 'test accuracy',
         'ema_val_accuracy': 'test accuracy (model EMA)'},
    ] + ([{'epsilon': 'ε (RDP)', 'epsilon_pld': 'ε (PLD)'}] if has_epsilon else [])
    ylabels = ['loss', 'accuracy'] + (['ε'] if has_epsilon else [])
    if target is not None:
        panels.append({'val_accuracy': 'test accuracy', 'ema_val_accuracy': 'test accuracy (model EMA)'})
        ylabels.append(f'test accuracy near the {target:g} target')
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    if target is not None:
        axes[-1].axhline(target, color='black', linestyle='--', linewidth=1, label=f'target {target:g}')
        axes[-1].set_ylim(target - 0.02, min(1.0, target + 0.01))
    for ax, panel, ylabel in zip(axes, panels, ylabels):
        for label, history in histories.items():
            for key, name in panel.items():
                values = history.get(key)
                if values:
                    epochs = range(1, len(values) + 1)
                    ax.plot(epochs, values, marker='o', markersize=3, label=f'{label}: {name}')
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_agreement(counts: Mapping[str, np.ndarray], path: str, title: str = 'Teacher agreement') -> str:
    """Histograms of the plurality vote share max_j n_j / N, one per named set of vote counts."""
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0.0, 1.0, 41)
    for name, rows in counts.items():
        rows = np.asarray(rows)
        ax.hist(rows.max(axis=1) / rows.sum(axis=1), bins=bins, histtype='step', linewidth=1.8,
                label=f'{name} ({rows.sum(axis=1)[0]} votes per image)')
    ax.set_yscale('log')
    ax.set_xlabel('fraction of teachers voting for the plurality class')
    ax.set_ylabel('images')
    ax.set_title(f'{title} ({len(next(iter(counts.values())))} images)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='upper left')
    return _save(fig, path)


def plot_accuracy_vs_epsilon(runs: Sequence[Dict], path: str, title: str = 'PATE on MNIST') -> str:
    """Student accuracy against ε (data-dependent: filled, data-independent: hollow), one point per run.

    Each run is a `PateResult.metrics()` of `tfpriv.dp.pate.pipeline.run_pate` (keys `student_accuracy`,
    `epsilon_data_dependent`, `epsilon_data_independent`, `aggregator`, `answered`).
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, run in enumerate(runs):
        colour = f'C{i}'
        stages = ' + stage 2' if 'stages' in run else ''
        label = f"{run['aggregator']}{stages}, {run['answered']} answers"
        ax.plot([run['epsilon_data_dependent'], run['epsilon_data_independent']],
                [run['student_accuracy']] * 2, color=colour, alpha=0.4)
        ax.scatter(run['epsilon_data_dependent'], run['student_accuracy'], color=colour, label=label)
        ax.scatter(run['epsilon_data_independent'], run['student_accuracy'], facecolors='none',
                   edgecolors=colour)
    ax.set_xlabel('ε at δ = %g (filled: data-dependent, hollow: data-independent)' % runs[0]['delta'])
    ax.set_ylabel('student accuracy (1,000 held-out images)')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_epsilon_curve(run: Dict, path: str) -> str:
    """ε against the number of queries asked, for one run (`run['epsilon_curve']`)."""
    curve = run['epsilon_curve']
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    queries = [p['queries'] for p in curve]
    ax.plot(queries, [p['data_dependent_eps'] for p in curve], marker='o', label='data-dependent')
    ax.plot(queries, [p['data_independent_eps'] for p in curve], marker='s', label='data-independent')
    ax.set_xlabel('queries asked')
    ax.set_ylabel('ε at δ = %g' % run['delta'])
    ax.set_title(f"{run['aggregator']}: {run['answered']} answers, student accuracy "
                 f"{run['student_accuracy']:.4f}")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
