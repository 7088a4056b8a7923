"""The PATE pipeline on MNIST: teachers → noisy answers to the student's queries → student.

1. Teachers (`teachers.teacher_votes`, cached) vote on all 10,000 test images.
2. The student picks `queries` pool images (public data only,
   `student.select_queries`) and the aggregator answers them from the votes.
3. Privacy: data-independent and data-dependent ε of the answers
   (`analysis.analyze`), also as the answers accumulate (for the figure).
4. The student self-trains on the pool with the answers as labels and is
   evaluated on the 1,000 held-out images.
5. Optionally (`PateConfig.transfer`, `transfer`), a second stage: teachers
   retrained as softmax heads on that student's features answer more queries,
   a fresh student trains on all answers, the two students are averaged, and
   ε composes both stages.

Noise for the aggregator comes from the OS CSPRNG unless `seeded_noise` is
set (reproducible, insecure: for tests and benchmarks only). Teacher
training, query selection and student training use `RandomSource(seed)`: their
randomness protects nothing (the aggregator's noise is the privacy mechanism).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging
from dp_accounting.rdp import rdp_privacy_accountant

from tfpriv.dp.mechanisms import epsilon_of
from tfpriv.dp.pate.aggregation import UNANSWERED, ConfidentGNMax, GNMax, make_aggregator, vote_counts
from tfpriv.dp.pate.analysis import ORDERS, analyze, analyze_stages, data_dependent_rdp
from tfpriv.dp.pate.smooth_sensitivity import release_epsilon
from tfpriv.dp.pate.student import (POOL_SIZE, Student, StudentConfig, ensemble_proba, select_queries,
                                   split_public)
from tfpriv.dp.pate.teachers import DEFAULT_CACHE_DIR, TeacherConfig, partition, teacher_votes
from tfpriv.dp.pate.transfer import TransferConfig, confident_candidates, head_votes, standardizer, train_heads
from tfpriv.rng import RandomSource


@dataclasses.dataclass(frozen=True)
class PateConfig:
    """One PATE run. `noise` is γ for LNMax and σ (σ2) for GNMax / Confident-GNMax.

    `transfer` adds a second stage (`tfpriv.dp.pate.transfer`): teachers
    retrained as heads on the first student's features answer more queries and
    a fresh student trains on both stages' answers; ε covers both stages.
    """

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
    transfer: Optional[TransferConfig] = None


Stage = Tuple[object, np.ndarray, np.ndarray]  # (aggregator, vote counts of the queries, answers)


def _prefix(stages: Sequence[Stage], k: int):
    """DpEvents and answer count of the first k queries across the stages in order."""
    events, answered = [], 0
    for aggregator, _, labels in stages:
        part = labels[:k]
        if k > 0 and len(part):
            events += aggregator.dp_events(part)
            answered += int(np.count_nonzero(part != UNANSWERED))
        k -= len(labels)
    return events, answered


def epsilon_curve(stages: Sequence[Stage], delta: float, points: int = 12) -> List[Dict[str, float]]:
    """ε (both ways) after the first k queries of the stages in order, for `points` values of k."""
    per_query = [data_dependent_rdp(aggregator, counts[i:i + 1], labels[i:i + 1])
                 for aggregator, counts, labels in stages for i in range(len(labels))]
    cumulative = np.cumsum(per_query, axis=0)
    curve = []
    for k in sorted(set(np.linspace(1, len(per_query), points).round().astype(int))):
        dependent, _ = rdp_privacy_accountant.compute_epsilon(ORDERS, cumulative[k - 1], delta)
        events, answered = _prefix(stages, int(k))
        curve.append({'queries': int(k), 'answered': answered, 'data_dependent_eps': float(dependent),
                      'data_independent_eps': epsilon_of(events, delta)})
    return curve


def _stage_metrics(aggregator, counts: np.ndarray, answers: np.ndarray, truth: np.ndarray,
                   votes_held: np.ndarray, y_held: np.ndarray, num_classes: int, delta: float) -> Dict:
    """What one stage released and how good its teachers are (held-out 1,000)."""
    answered = answers != UNANSWERED
    report = analyze(aggregator, counts, answers, delta)
    return {
        'queries': int(len(answers)), 'answered': int(answered.sum()),
        'answer_accuracy': float(np.mean(answers[answered] == truth[answered])) if answered.any() else float('nan'),
        'teacher_accuracy': float(np.mean(votes_held == y_held[None, :])),
        'plurality_accuracy': float(np.mean(vote_counts(votes_held, num_classes).argmax(axis=1) == y_held)),
        'epsilon_data_independent': report.data_independent_eps,
        'epsilon_data_dependent': report.data_dependent_eps,
    }


def _transfer_votes(student: Student, config: PateConfig, x_train: np.ndarray, y_train: np.ndarray,
                    x_test: np.ndarray, num_classes: int, rng: RandomSource) -> np.ndarray:
    """Stage-2 votes on x_test: heads on the student's (public) features, one per fresh shard."""
    transfer = config.transfer
    test_features = student.features(x_test)
    mean, std = standardizer(test_features[:POOL_SIZE])  # the public pool's statistics
    shards = partition(len(x_train), config.teachers.num_teachers, rng)
    heads = train_heads((student.features(x_train) - mean) / std, y_train, shards, num_classes,
                        transfer.l2, transfer.steps, transfer.learning_rate)
    return head_votes(heads, (test_features - mean) / std)


def run_pate(config: PateConfig, cache_dir: Optional[str] = DEFAULT_CACHE_DIR) -> Dict:
    """Runs the pipeline; returns its metrics (JSON-serializable) plus `counts` for plotting.

    `counts` maps 'teachers' (and, with `config.transfer`, 'stage-2 heads') to
    the vote counts on all 10,000 test images. For GNMax / Confident-GNMax,
    `smooth_sensitivity` holds the publishable ε: the data-dependent RDP
    released with smooth-sensitivity noise (`smooth_sensitivity.release_epsilon`).
    With `config.transfer`, `stages` holds each stage's metrics (ε of that
    stage alone, the accuracy of that stage's student); the top-level ε and
    answer counts cover both stages, and `student_accuracy` is that of the
    final classifier, the mean softmax of both stages' students (post-processing
    of the answers: no privacy cost; it evens out the students' run-to-run
    variation).
    """
    from tfpriv.data import load_mnist  # pylint: disable=g-import-not-at-top
    start = time.time()
    votes = teacher_votes(config.teachers, cache_dir)
    data = load_mnist()
    x_pool, y_pool, x_held, y_held = split_public(data.x_test, data.y_test)
    rng = RandomSource(config.seed)
    noise_rng = RandomSource(config.seed + 1 if config.seed is not None else None) \
        if config.seeded_noise else RandomSource()
    pool_labels = np.full(POOL_SIZE, UNANSWERED, dtype=np.int64)
    stages, metrics, truths, all_counts, students = [], [], [], [], []

    def run_stage(aggregator, votes: np.ndarray, queries: np.ndarray) -> Student:
        """Answers `queries` from `votes`, adds the answers to the pool labels, trains a student."""
        all_counts.append(vote_counts(votes, data.num_classes))
        counts = all_counts[-1][:POOL_SIZE][queries]
        answers = aggregator(counts)
        answered = answers != UNANSWERED
        pool_labels[queries[answered]] = answers[answered]
        student = Student(config.student, data.input_shape, data.num_classes, rng).fit(x_pool, pool_labels)
        stages.append((aggregator, counts, answers))
        truths.append(y_pool[queries])
        metrics.append(_stage_metrics(aggregator, counts, answers, truths[-1], votes[:, POOL_SIZE:], y_held,
                                      data.num_classes, config.delta))
        metrics[-1]['student_accuracy'] = student.accuracy(x_held, y_held)
        logging.info('stage %d: %s', len(stages), metrics[-1])
        students.append(student)
        return student

    student = run_stage(make_aggregator(config.aggregator, config.noise, config.threshold,
                                        config.sigma_threshold, noise_rng),
                        votes, select_queries(x_pool, config.queries, rng))
    if config.transfer:
        transfer, num_train = config.transfer, config.teachers.num_train
        votes = _transfer_votes(student, config, data.x_train[:num_train], data.y_train[:num_train],
                                data.x_test, data.num_classes, rng)
        pool = confident_candidates(student.predict_proba(x_pool), transfer.min_confidence, transfer.queries)
        run_stage(ConfidentGNMax(transfer.threshold, transfer.sigma_threshold, transfer.noise, noise_rng),
                  votes, pool[select_queries(x_pool[pool], min(transfer.queries, len(pool)), rng)])
    report = analyze_stages(stages, config.delta)
    answers = np.concatenate([s[2] for s in stages])
    truth = np.concatenate(truths)
    answered = answers != UNANSWERED
    result = {
        'aggregator': config.aggregator, 'teachers': config.teachers.num_teachers,
        'noise': config.noise, 'threshold': config.threshold, 'sigma_threshold': config.sigma_threshold,
        'queries': report.num_queries, 'answered': report.num_answered,
        'answer_accuracy': float(np.mean(answers[answered] == truth[answered])) if answered.any()
        else float('nan'),
        'teacher_accuracy': metrics[0]['teacher_accuracy'],
        'plurality_accuracy': metrics[0]['plurality_accuracy'],
        'student_accuracy': float(np.mean(ensemble_proba(students, x_held).argmax(axis=1) == y_held)),
        'epsilon_data_independent': report.data_independent_eps,
        'epsilon_data_dependent': report.data_dependent_eps,
        'data_dependent_order': report.data_dependent_order,
        'delta': config.delta,
        'epsilon_curve': epsilon_curve(stages, config.delta),
        'noise_source': 'seeded (INSECURE)' if config.seeded_noise else 'os.urandom CSPRNG',
        'seconds': time.time() - start,
        'counts': {'teachers': all_counts[0]},
    }
    if all(isinstance(aggregator, (GNMax, ConfidentGNMax)) for aggregator, _, _ in stages):
        release = release_epsilon(stages, config.delta, rng=noise_rng)
        result['smooth_sensitivity'] = {
            'order': release.order, 'beta': release.beta, 'sigma_s': release.sigma_s,
            'epsilon': release.epsilon, 'expected_epsilon': release.expected_epsilon,
            'data_dependent_epsilon_at_order': release.data_dependent_epsilon}
    if config.transfer:
        result['stages'] = metrics
        result['counts']['stage-2 heads'] = all_counts[1]
    return result
