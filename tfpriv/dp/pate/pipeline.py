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

from tfpriv.dp.accounting import default_delta
from tfpriv.dp.mechanisms import epsilon_of
from tfpriv.dp.pate.aggregation import UNANSWERED, ConfidentGNMax, GNMax, make_aggregator, vote_counts
from tfpriv.dp.pate.analysis import ORDERS, analyze, analyze_stages, data_dependent_rdp
from tfpriv.dp.pate.smooth_sensitivity import release_epsilon
from tfpriv.dp.pate.student import (POOL_SIZE, Student, StudentConfig, ensemble_proba, select_queries,
                                   split_public)
from tfpriv.dp.pate.teachers import DEFAULT_CACHE_DIR, SEED_CAUSE, TeacherConfig, partition, teacher_votes
from tfpriv.dp.pate.transfer import TransferConfig, confident_candidates, head_votes, standardizer, train_heads
from tfpriv.progress import Progress, prefixed, report as report_progress
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
    delta: float = default_delta(60000)  # the teachers' private set: MNIST's training images
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
                    x_test: np.ndarray, num_classes: int, rng: RandomSource,
                    progress: Optional[Progress] = None) -> np.ndarray:
    """Stage-2 votes on x_test: heads on the student's (public) features, one per fresh shard."""
    transfer = config.transfer
    test_features = student.features(x_test)
    mean, std = standardizer(test_features[:POOL_SIZE])  # the public pool's statistics
    shards = partition(len(x_train), config.teachers.num_teachers, rng)
    heads = train_heads((student.features(x_train) - mean) / std, y_train, shards, num_classes,
                        transfer.l2, transfer.steps, transfer.learning_rate, progress)
    return head_votes(heads, (test_features - mean) / std)


@dataclasses.dataclass
class PateResult:
    """What `run_pate` returns: JSON-able metrics; `counts` (vote counts, for figures) apart.

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

    aggregator: str
    teachers: int
    noise: float
    threshold: float
    sigma_threshold: float
    queries: int
    answered: int
    answer_accuracy: float
    teacher_accuracy: float
    plurality_accuracy: float
    student_accuracy: float
    epsilon_data_independent: float
    epsilon_data_dependent: float
    data_dependent_order: float
    delta: float
    epsilon_curve: List[Dict[str, float]]
    noise_source: str
    seconds: float
    smooth_sensitivity: Optional[Dict[str, float]] = None
    stages: Optional[List[Dict]] = None
    counts: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)

    def metrics(self) -> Dict:
        """The JSON-able fields (no `counts`), leaving out `smooth_sensitivity` / `stages` when unset."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != 'counts' and getattr(self, f.name) is not None}


@dataclasses.dataclass
class PateState:
    """What the stages of `run_pate` pass along: data, randomness and each stage's outputs."""

    config: PateConfig
    data: object  # the MNIST `Dataset`
    votes: np.ndarray  # stage-1 teacher votes on the 10,000 test images
    rng: RandomSource  # teachers' shards, queries, students (protects nothing)
    noise_rng: RandomSource  # the aggregators' noise (the privacy mechanism)
    public: Tuple[np.ndarray, ...]  # (x_pool, y_pool, x_held, y_held)
    pool_labels: np.ndarray  # the answers so far, UNANSWERED elsewhere
    started: float
    progress: Optional[Progress] = None  # teachers, students, stage-2 heads (`tfpriv.progress`)
    stages: List[Stage] = dataclasses.field(default_factory=list)
    metrics: List[Dict] = dataclasses.field(default_factory=list)
    truths: List[np.ndarray] = dataclasses.field(default_factory=list)
    counts: List[np.ndarray] = dataclasses.field(default_factory=list)
    students: List[Student] = dataclasses.field(default_factory=list)


def _setup(config: PateConfig, cache_dir: Optional[str], progress: Optional[Progress]) -> PateState:
    """Teacher votes (cached), MNIST's public pool / held-out split, the two random sources."""
    from tfpriv.data import load_mnist  # pylint: disable=g-import-not-at-top
    started = time.time()
    votes = teacher_votes(config.teachers, cache_dir, progress)
    data = load_mnist()
    noise_rng = RandomSource(config.seed + 1 if config.seed is not None else None,
                             "PATE's aggregator noise (seeded_noise; train.py --pate-seeded-noise)") \
        if config.seeded_noise else RandomSource()
    return PateState(config, data, votes, RandomSource(config.seed, SEED_CAUSE), noise_rng,
                     split_public(data.x_test, data.y_test),
                     np.full(POOL_SIZE, UNANSWERED, dtype=np.int64), started, progress)


def _answer_and_learn(state: PateState, aggregator, votes: np.ndarray, queries: np.ndarray) -> Student:
    """One stage: answers `queries` from `votes`, adds them to the pool labels, trains a student."""
    config, data = state.config, state.data
    x_pool, y_pool, x_held, y_held = state.public
    state.counts.append(vote_counts(votes, data.num_classes))
    counts = state.counts[-1][:POOL_SIZE][queries]
    answers = aggregator(counts)
    answered = answers != UNANSWERED
    state.pool_labels[queries[answered]] = answers[answered]
    student = Student(config.student, data.input_shape, data.num_classes, state.rng).fit(
        x_pool, state.pool_labels, prefixed(state.progress, f'stage {len(state.stages) + 1} '))
    state.stages.append((aggregator, counts, answers))
    state.truths.append(y_pool[queries])
    metrics = _stage_metrics(aggregator, counts, answers, state.truths[-1], votes[:, POOL_SIZE:],
                             y_held, data.num_classes, config.delta)
    metrics['student_accuracy'] = student.accuracy(x_held, y_held)
    state.metrics.append(metrics)
    logging.info('stage %d: %s', len(state.stages), metrics)
    state.students.append(student)
    return student


def _first_stage(state: PateState) -> Student:
    """Stage 1: the configured aggregator answers `queries` pool images chosen by the student."""
    config = state.config
    aggregator = make_aggregator(config.aggregator, config.noise, config.threshold,
                                 config.sigma_threshold, state.noise_rng)
    queries = select_queries(state.public[0], config.queries, state.rng)
    return _answer_and_learn(state, aggregator, state.votes, queries)


def _second_stage(state: PateState, student: Student) -> None:
    """Stage 2 (`config.transfer`): heads on the first student's features answer more queries."""
    config, data = state.config, state.data
    transfer, num_train, x_pool = config.transfer, config.teachers.num_train, state.public[0]
    votes = _transfer_votes(student, config, data.x_train[:num_train], data.y_train[:num_train],
                            data.x_test, data.num_classes, state.rng, prefixed(state.progress, 'stage 2 '))
    pool = confident_candidates(student.predict_proba(x_pool), transfer.min_confidence, transfer.queries)
    aggregator = ConfidentGNMax(transfer.threshold, transfer.sigma_threshold, transfer.noise,
                                state.noise_rng)
    queries = pool[select_queries(x_pool[pool], min(transfer.queries, len(pool)), state.rng)]
    _answer_and_learn(state, aggregator, votes, queries)


def _release(state: PateState) -> Optional[Dict[str, float]]:
    """The smooth-sensitivity release of the data-dependent ε (GNMax-family stages only)."""
    if not all(isinstance(aggregator, (GNMax, ConfidentGNMax)) for aggregator, _, _ in state.stages):
        return None
    release = release_epsilon(state.stages, state.config.delta, rng=state.noise_rng)
    return {'order': release.order, 'beta': release.beta, 'sigma_s': release.sigma_s,
            'epsilon': release.epsilon, 'expected_epsilon': release.expected_epsilon,
            'data_dependent_epsilon_at_order': release.data_dependent_epsilon}


def _finish(state: PateState) -> PateResult:
    """ε over all stages, answer quality and the (averaged) students' held-out accuracy."""
    config, stages = state.config, state.stages
    x_held, y_held = state.public[2:]
    report = analyze_stages(stages, config.delta)
    answers, truth = np.concatenate([s[2] for s in stages]), np.concatenate(state.truths)
    answered = answers != UNANSWERED
    names = ('teachers', 'stage-2 heads')
    return PateResult(
        aggregator=config.aggregator, teachers=config.teachers.num_teachers, noise=config.noise,
        threshold=config.threshold, sigma_threshold=config.sigma_threshold,
        queries=report.num_queries, answered=report.num_answered,
        answer_accuracy=float(np.mean(answers[answered] == truth[answered])) if answered.any()
        else float('nan'),
        teacher_accuracy=state.metrics[0]['teacher_accuracy'],
        plurality_accuracy=state.metrics[0]['plurality_accuracy'],
        student_accuracy=float(np.mean(ensemble_proba(state.students, x_held).argmax(axis=1) == y_held)),
        epsilon_data_independent=report.data_independent_eps,
        epsilon_data_dependent=report.data_dependent_eps,
        data_dependent_order=report.data_dependent_order, delta=config.delta,
        epsilon_curve=epsilon_curve(stages, config.delta),
        noise_source='seeded (INSECURE)' if config.seeded_noise else 'os.urandom CSPRNG',
        seconds=time.time() - state.started, smooth_sensitivity=_release(state),
        stages=state.metrics if config.transfer else None,
        counts=dict(zip(names, state.counts)))


def run_pate(config: PateConfig, cache_dir: Optional[str] = DEFAULT_CACHE_DIR,
             progress: Optional[Progress] = None) -> PateResult:
    """Runs the pipeline stage by stage (setup, stage 1, optional stage 2, release); see `PateResult`.

    `progress` (`tfpriv.progress`) hears the teachers, each stage's student networks, the
    stage-2 heads and the privacy analysis.
    """
    state = _setup(config, cache_dir, progress)
    student = _first_stage(state)
    if config.transfer:
        _second_stage(state, student)
    report_progress(progress, 'privacy analysis', 0, 1)
    result = _finish(state)
    report_progress(progress, 'privacy analysis', 1, 1)
    return result
