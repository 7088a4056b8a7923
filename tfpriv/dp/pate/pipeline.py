"""The PATE pipeline on MNIST: teachers → noisy answers to the student's queries → student.

1. Teachers (`teachers.teacher_votes`, cached) vote on all 10,000 test images.
2. The student picks `queries` pool images (public data only,
   `student.select_queries`) and the aggregator answers them from the votes.
3. Privacy: data-independent and data-dependent ε of the answers
   (`analysis.analyze`), also as the answers accumulate (for the figure).
4. The student self-trains on the pool with the answers as labels and is
   evaluated on the 1,000 held-out images.

Noise for the aggregator comes from the OS CSPRNG unless `seeded_noise` is
set (reproducible, insecure: for tests and benchmarks only). Teacher
training, query selection and student training use `RandomSource(seed)`: their
randomness protects nothing (the aggregator's noise is the privacy mechanism).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Optional

import numpy as np
from absl import logging
from dp_accounting.rdp import rdp_privacy_accountant

from tfpriv.dp.mechanisms import epsilon_of
from tfpriv.dp.pate.aggregation import UNANSWERED, make_aggregator, vote_counts
from tfpriv.dp.pate.analysis import ORDERS, analyze, data_dependent_rdp
from tfpriv.dp.pate.student import POOL_SIZE, Student, StudentConfig, select_queries, split_public
from tfpriv.dp.pate.teachers import DEFAULT_CACHE_DIR, TeacherConfig, teacher_votes
from tfpriv.rng import RandomSource


@dataclasses.dataclass(frozen=True)
class PateConfig:
    """One PATE run. `noise` is γ for LNMax and σ (σ2) for GNMax / Confident-GNMax."""

    teachers: TeacherConfig = TeacherConfig(seed=0)
    student: StudentConfig = StudentConfig()
    aggregator: str = 'confident-gnmax'
    noise: float = 40.0
    threshold: float = 200.0
    sigma_threshold: float = 150.0
    queries: int = 400
    delta: float = 1e-5
    seed: Optional[int] = 0
    seeded_noise: bool = False


def epsilon_curve(aggregator, counts: np.ndarray, labels: np.ndarray, delta: float,
                  points: int = 12) -> List[Dict[str, float]]:
    """ε (both ways) and the answered-label accuracy after the first k queries, for `points` values of k."""
    per_query = [data_dependent_rdp(aggregator, counts[i:i + 1], labels[i:i + 1]) for i in range(len(labels))]
    cumulative = np.cumsum(per_query, axis=0)
    curve = []
    for k in sorted(set(np.linspace(1, len(labels), points).round().astype(int))):
        dependent, _ = rdp_privacy_accountant.compute_epsilon(ORDERS, cumulative[k - 1], delta)
        curve.append({'queries': int(k), 'answered': int(np.count_nonzero(labels[:k] != UNANSWERED)),
                      'data_dependent_eps': float(dependent),
                      'data_independent_eps': epsilon_of(aggregator.dp_events(labels[:k]), delta)})
    return curve


def run_pate(config: PateConfig, cache_dir: Optional[str] = DEFAULT_CACHE_DIR) -> Dict:
    """Runs the pipeline; returns its metrics (JSON-serializable) plus `counts` for plotting."""
    from tfpriv.data import load_mnist  # pylint: disable=g-import-not-at-top
    start = time.time()
    votes = teacher_votes(config.teachers, cache_dir)
    data = load_mnist()
    x_pool, y_pool, x_held, y_held = split_public(data.x_test, data.y_test)
    counts = vote_counts(votes, data.num_classes)
    pool_counts = counts[:POOL_SIZE]
    rng = RandomSource(config.seed)
    queries = select_queries(x_pool, config.queries, rng)
    noise_rng = RandomSource(config.seed + 1 if config.seed is not None else None) \
        if config.seeded_noise else RandomSource()
    aggregator = make_aggregator(config.aggregator, config.noise, config.threshold,
                                 config.sigma_threshold, noise_rng)
    answers = aggregator(pool_counts[queries])
    report = analyze(aggregator, pool_counts[queries], answers, config.delta)
    answered = answers != UNANSWERED
    logging.info('%s answered %d/%d queries; ε data-independent %.3f, data-dependent %.3f',
                 config.aggregator, answered.sum(), len(answers), report.data_independent_eps,
                 report.data_dependent_eps)
    pool_labels = np.full(POOL_SIZE, UNANSWERED, dtype=np.int64)
    pool_labels[queries] = answers
    student = Student(config.student, data.input_shape, data.num_classes, rng).fit(x_pool, pool_labels)
    return {
        'aggregator': config.aggregator, 'teachers': config.teachers.num_teachers,
        'noise': config.noise, 'threshold': config.threshold, 'sigma_threshold': config.sigma_threshold,
        'queries': int(len(answers)), 'answered': int(answered.sum()),
        'answer_accuracy': float(np.mean(answers[answered] == y_pool[queries][answered])) if answered.any()
        else float('nan'),
        'teacher_accuracy': float(np.mean(votes[:, POOL_SIZE:] == y_held[None, :])),
        'plurality_accuracy': float(np.mean(counts[POOL_SIZE:].argmax(axis=1) == y_held)),
        'student_accuracy': student.accuracy(x_held, y_held),
        'epsilon_data_independent': report.data_independent_eps,
        'epsilon_data_dependent': report.data_dependent_eps,
        'data_dependent_order': report.data_dependent_order,
        'delta': config.delta,
        'epsilon_curve': epsilon_curve(aggregator, pool_counts[queries], answers, config.delta),
        'noise_source': 'seeded (INSECURE)' if config.seeded_noise else 'os.urandom CSPRNG',
        'seconds': time.time() - start,
        'counts': counts,
    }
