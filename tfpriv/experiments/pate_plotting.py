"""PATE figures: teacher agreement histogram and accuracy versus ε."""

from __future__ import annotations

import os
from typing import Dict, Mapping, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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

    Each run is a metrics dict of `pipeline.run_pate` (keys `student_accuracy`,
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
