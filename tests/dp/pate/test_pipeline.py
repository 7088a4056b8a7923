"""Teacher shards, vote cache, query selection, CLI validation, and PATE end to end on real MNIST."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfpriv.experiments import pate as cli
from tfpriv.dp.pate.student import StudentConfig, select_queries, split_public
from tfpriv.dp.pate.teachers import TeacherConfig, partition, teacher_votes
from tfpriv.rng import RandomSource


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3000), data=st.data())
def test_shards_are_disjoint_and_cover(n, data):
    teachers = data.draw(st.integers(1, n))
    shards = partition(n, teachers, RandomSource(n))
    assert len(shards) == teachers
    joined = np.concatenate(shards)
    assert len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))  # disjoint and covering
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_partition_rejects_bad_sizes():
    with pytest.raises(ValueError, match='num_teachers <= num_examples'):
        partition(5, 6, RandomSource(0))
    with pytest.raises(ValueError, match='num_teachers'):
        TeacherConfig(num_teachers=0)


def test_select_queries_distinct_and_in_pool():
    x = RandomSource(0).uniform01((500, 28, 28, 1)).astype(np.float32)
    chosen = select_queries(x, 40, RandomSource(1))
    assert len(np.unique(chosen)) == 40 and chosen.min() >= 0 and chosen.max() < 500
    with pytest.raises(ValueError, match='num_queries'):
        select_queries(x, 501, RandomSource(1))


def test_public_split_protocol():
    x, y = np.zeros((10000, 2)), np.arange(10000)
    xp, yp, xh, yh = split_public(x, y)
    assert (len(xp), len(xh), yp[-1], yh[0]) == (9000, 1000, 8999, 9000)
    with pytest.raises(ValueError, match='10,000'):
        split_public(x[:10], y[:10])


def test_cli_validation_messages():
    parser = cli.standalone_parser()
    bad = parser.parse_args(['--teachers', '0', '--queries', '9001', '--pate-noise', '-1', '--threshold', '300',
                             '--student-rounds', '-1', '--student-ensemble', '0', '--dataset', 'credit'])
    errors = ' '.join(cli.validate(bad))
    for flag in ('--teachers', '--queries', '--pate-noise', '--threshold', '--student-rounds',
                 '--student-ensemble', 'mnist'):
        assert flag in errors
    assert cli.validate(parser.parse_args([])) == []


def test_end_to_end_small_real_mnist(tmp_path):
    """5 teachers on 1,000 real MNIST images, 30 queries, a short student run."""
    parser = cli.standalone_parser()
    args = parser.parse_args(
        ['--teachers', '5', '--num-train', '1000', '--queries', '30', '--teacher-epochs', '5',
         '--student-steps', '150', '--student-rounds', '1', '--student-ensemble', '2', '--threshold', '3', '--pate-sigma-threshold', '1',
         '--pate-noise', '1', '--pate-seeded-noise', '--pate-cache', str(tmp_path / 'cache'),
         '--out', str(tmp_path / 'out'), '--images', str(tmp_path / 'img')])
    assert cli.validate(args) == []
    calls = []
    metrics = cli.run(args, lambda *report: calls.append(report[:3])).metrics
    assert ('teachers', 5, 5) in calls and ('stage 1 student', 4, 4) in calls  # 2 rounds x 2 networks
    assert metrics['queries'] == 30 and 0 < metrics['answered'] <= 30
    assert metrics['answer_accuracy'] > 0.7 and metrics['plurality_accuracy'] > 0.6
    assert metrics['student_accuracy'] > 0.3  # 10 classes: chance is 0.1
    assert 0 < metrics['epsilon_data_dependent'] <= metrics['epsilon_data_independent'] * 1.0001
    assert all(os.path.getsize(path) > 0 for path in metrics['figures'])
    with open(tmp_path / 'out' / 'pate' / 'metrics.json') as f:
        assert json.load(f)['answered'] == metrics['answered']
    # The votes are cached: a second call loads the same array from disk.
    config = cli.config_from_args(args).teachers
    cached = [p for p in os.listdir(tmp_path / 'cache') if p.endswith('.npz')]
    assert cached == [f'votes_{config.key()}.npz']
    votes = teacher_votes(config, str(tmp_path / 'cache'))
    assert votes.shape == (5, 10000) and votes.dtype == np.int8


def test_teacher_augmentation_changes_training_and_cache_key():
    from tfpriv.data import load_mnist
    from tfpriv.dp.pate.teachers import train_teachers
    from tfpriv.dp.pate.trainer import Augmentation
    data = load_mnist().subset(400, 200)
    plain = TeacherConfig(num_teachers=2, epochs=3, seed=0, num_train=400)
    augmented = TeacherConfig(num_teachers=2, epochs=3, seed=0, num_train=400, augmentation=Augmentation())
    assert plain.key() != augmented.key()
    votes = [train_teachers(data.x_train, data.y_train, data.x_test, config) for config in (plain, augmented)]
    assert all(v.shape == (2, 200) for v in votes)
    assert not np.array_equal(votes[0], votes[1])  # same seed and shards: only the augmentation differs
    assert cli.config_from_args(cli.standalone_parser().parse_args(['--teacher-augment'])
                                ).teachers.augmentation == Augmentation()


def test_student_config_rejects_bad_values():
    with pytest.raises(ValueError, match='confidence'):
        StudentConfig(confidence=1.5)


def test_transfer_flags_validated_and_mapped():
    parser = cli.standalone_parser()
    assert cli.config_from_args(parser.parse_args([])).transfer is None  # one stage unless asked
    bad = parser.parse_args(['--transfer-queries', '10', '--transfer-threshold', '300',
                             '--transfer-sigma-threshold', '0', '--transfer-noise', 'nan',
                             '--transfer-min-confidence', '1'])
    errors = ' '.join(cli.validate(bad))
    for flag in ('--transfer-threshold', '--transfer-sigma-threshold', '--transfer-noise', '--transfer-min-confidence'):
        assert flag in errors
    assert '--transfer-queries' in ' '.join(cli.validate(parser.parse_args(['--transfer-queries', '9001'])))
    transfer = cli.config_from_args(parser.parse_args(['--transfer-queries', '70', '--transfer-noise', '25'])).transfer
    assert (transfer.queries, transfer.noise, transfer.threshold, transfer.sigma_threshold,
            transfer.min_confidence) == (70, 25.0, 100.0, 40.0, 0.9)


def test_end_to_end_two_stages_small_real_mnist(tmp_path):
    """Stage 2 on 10 teachers: heads on the stage-1 student's features answer 40 more queries."""
    args = cli.standalone_parser().parse_args(
        ['--teachers', '10', '--num-train', '2000', '--queries', '60', '--teacher-epochs', '5',
         '--student-steps', '200', '--student-rounds', '0', '--student-ensemble', '2', '--threshold', '5',
         '--pate-sigma-threshold', '1', '--pate-noise', '1', '--transfer-queries', '40', '--transfer-threshold', '5',
         '--transfer-sigma-threshold', '1', '--transfer-noise', '1', '--transfer-min-confidence', '0',
         '--pate-seeded-noise',
         '--pate-cache', str(tmp_path / 'cache'), '--out', str(tmp_path / 'out'), '--images', str(tmp_path / 'img')])
    assert cli.validate(args) == []
    calls = []
    metrics = cli.run(args, lambda *report: calls.append(report[:3])).metrics
    assert ('stage 2 heads', 0, 500) in calls and ('stage 2 student', 2, 2) in calls
    first, second = metrics['stages']
    assert (first['queries'], second['queries'], metrics['queries']) == (60, 40, 100)
    assert metrics['answered'] == first['answered'] + second['answered'] and second['answered'] > 0
    assert second['teacher_accuracy'] > 0.6 and second['answer_accuracy'] > 0.7
    assert metrics['student_accuracy'] > 0.3 and second['student_accuracy'] > 0.3  # both students, averaged
    # ε covers both stages: more than either alone, at most their sum.
    for key in ('epsilon_data_dependent', 'epsilon_data_independent'):
        assert max(first[key], second[key]) < metrics[key] <= first[key] + second[key]
    assert metrics['epsilon_curve'][-1]['queries'] == 100
    released = metrics['smooth_sensitivity']  # the publishable ε: more than the un-noised one at that order
    assert released['expected_epsilon'] > released['data_dependent_epsilon_at_order'] > 0
    assert all(os.path.getsize(path) > 0 for path in metrics['figures'])


def test_student_features_are_the_members_penultimate_layers():
    from tfpriv.data import load_mnist
    from tfpriv.dp.pate.student import Student, ensemble_proba
    data = load_mnist().subset(10, 200)
    student = Student(StudentConfig(steps=5, rounds=0, ensemble=2), data.input_shape, 10, RandomSource(0))
    with pytest.raises(RuntimeError, match='fit'):
        student.features(data.x_test)
    labels = np.full(200, -1)
    labels[:20] = data.y_test[:20]
    features = student.fit(data.x_test, labels).features(data.x_test[:7])
    assert features.shape == (7, 64) and np.all(features >= 0)  # two members x Dense(32, relu)
    other = Student(StudentConfig(steps=5, rounds=0, ensemble=1), data.input_shape, 10, RandomSource(1))
    other.fit(data.x_test, labels)
    mean = ensemble_proba([student, other], data.x_test[:7])
    np.testing.assert_allclose(mean, (student.predict_proba(data.x_test[:7]) + other.predict_proba(data.x_test[:7])) / 2,
                               rtol=1e-6)
    with pytest.raises(ValueError, match='at least one'):
        ensemble_proba([], data.x_test[:7])
