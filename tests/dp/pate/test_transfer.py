"""Stage-2 PATE: per-shard softmax heads, their locality, and ε composed over stages."""

import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant

from tfpriv.dp.mechanisms import epsilon_of
from tfpriv.dp.pate.aggregation import UNANSWERED, ConfidentGNMax, LNMax, vote_counts
from tfpriv.dp.pate.analysis import ORDERS, analyze, analyze_stages, data_dependent_rdp
from tfpriv.dp.pate.pipeline import epsilon_curve
from tfpriv.dp.pate.teachers import partition
from tfpriv.dp.pate.transfer import TransferConfig, confident_candidates, head_votes, standardizer, train_heads
from tfpriv.rng import RandomSource


@pytest.fixture(scope='module')
def pixels():
    """Real MNIST, 7x7 mean-pooled pixels standardized on the test images: (x_train, y_train, x_test, y_test)."""
    from tfpriv.data import load_mnist
    data = load_mnist().subset(1203, 1000)

    def pool(x):
        return x.reshape(len(x), 7, 4, 7, 4).mean(axis=(2, 4)).reshape(len(x), 49)

    train, test = pool(data.x_train), pool(data.x_test)
    mean, std = standardizer(test)
    return (train - mean) / std, data.y_train, (test - mean) / std, data.y_test


def _objective_gradient(head, x, y, l2):
    inputs = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    logits = inputs @ head
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return inputs.T @ (probs - np.eye(10)[y]) / len(x) + l2 * head


def test_heads_learn_real_mnist_and_converge(pixels):
    x, y, x_test, y_test = pixels
    shards = partition(len(x), 4, RandomSource(0))  # sizes 301, 301, 301, 300
    heads = train_heads(x, y, shards, 10, l2=1e-2, steps=3000, learning_rate=0.5)
    assert heads.shape == (4, 50, 10)
    for head, shard in zip(heads, shards):  # the stated objective is at its minimum
        assert np.abs(_objective_gradient(head, x[shard], y[shard], 1e-2)).max() < 1e-3
    votes = head_votes(heads, x_test)
    assert votes.shape == (4, 1000) and votes.dtype == np.int8
    accuracy = np.mean(votes == y_test[None, :], axis=1)
    assert accuracy.min() > 0.7  # a linear model on 7x7 pixels from 300 labels: 0.74-0.80 here
    assert np.mean(vote_counts(votes, 10).argmax(axis=1) == y_test) > 0.75


def test_uneven_shards_train_as_if_alone(pixels):
    x, y, _, _ = pixels
    shards = [np.arange(0, 50), np.arange(50, 170), np.arange(170, 171)]
    together = train_heads(x, y, shards, 10, steps=200)
    for head, shard in zip(together, shards):
        np.testing.assert_allclose(head, train_heads(x, y, [shard], 10, steps=200)[0], atol=1e-5)


def test_a_head_reads_only_its_own_shard(pixels):
    """Changing one example's label moves exactly one head: the PATE sensitivity argument."""
    x, y, _, _ = pixels
    shards = partition(len(x), 3, RandomSource(1))
    before = train_heads(x, y, shards, 10, steps=100)
    changed = y.copy()
    changed[shards[1][0]] = (changed[shards[1][0]] + 1) % 10
    after = train_heads(x, changed, shards, 10, steps=100)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[2], after[2])
    assert not np.allclose(before[1], after[1])


def test_train_heads_rejects_bad_input(pixels):
    x, y, _, _ = pixels
    with pytest.raises(ValueError, match='one label per row'):
        train_heads(x, y[:10], [np.arange(5)], 10)
    with pytest.raises(ValueError, match='empty shard'):
        train_heads(x, y, [np.arange(5), np.arange(0)], 10)


@pytest.mark.parametrize('field, value, message', [
    ('queries', 0, 'queries'), ('noise', -1.0, 'noise'), ('sigma_threshold', float('nan'), 'sigma_threshold'),
    ('l2', -0.1, 'l2'), ('learning_rate', 0.0, 'learning_rate'), ('min_confidence', 1.0, 'min_confidence')])
def test_transfer_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        TransferConfig(**{field: value})


def test_transfer_config_accepts_the_edges_of_each_range():
    """queries and steps >= 1, min_confidence in [0, 1), l2 >= 0: the closed ends are allowed."""
    edges = TransferConfig(queries=1, steps=1, min_confidence=0.0, l2=0.0)
    assert (edges.queries, edges.steps, edges.min_confidence, edges.l2) == (1, 1, 0.0, 0.0)
    assert TransferConfig(l2=0.5).l2 == 0.5


def _two_stages():
    rng = RandomSource(3)
    counts1 = np.tile([[200, 30, 20, 0, 0, 0, 0, 0, 0, 0]], (30, 1))
    counts2 = np.tile([[250, 0, 0, 0, 0, 0, 0, 0, 0, 0]], (50, 1))
    counts2[:5] = [120, 110, 20, 0, 0, 0, 0, 0, 0, 0]  # a few disputed queries
    first, second = LNMax(0.05, rng), ConfidentGNMax(100.0, 40.0, 30.0, rng)
    return [(first, counts1, first(counts1)), (second, counts2, second(counts2))]


def test_stages_compose_both_ways():
    stages = _two_stages()
    report = analyze_stages(stages, 1e-5)
    events = stages[0][0].dp_events(stages[0][2]) + stages[1][0].dp_events(stages[1][2])
    assert report.data_independent_eps == pytest.approx(epsilon_of(events, 1e-5))
    assert report.num_queries == 80
    assert report.num_answered == 30 + np.count_nonzero(stages[1][2] != UNANSWERED)
    singles = [analyze(*stage, 1e-5) for stage in stages]
    assert max(s.data_dependent_eps for s in singles) < report.data_dependent_eps
    assert report.data_dependent_eps < sum(s.data_dependent_eps for s in singles)  # RDP composes sub-additively
    summed = data_dependent_rdp(*stages[0]) + data_dependent_rdp(*stages[1])
    assert report.data_dependent_eps == pytest.approx(rdp_privacy_accountant.compute_epsilon(ORDERS, summed, 1e-5)[0])
    with pytest.raises(ValueError, match='at least one'):
        analyze_stages([], 1e-5)


def test_epsilon_curve_runs_through_both_stages():
    stages = _two_stages()
    curve = epsilon_curve(stages, 1e-5, points=9)
    report = analyze_stages(stages, 1e-5)
    assert curve[-1]['queries'] == 80 and curve[-1]['answered'] == report.num_answered
    assert curve[-1]['data_dependent_eps'] == pytest.approx(report.data_dependent_eps)
    assert curve[-1]['data_independent_eps'] == pytest.approx(report.data_independent_eps)
    eps = [p['data_dependent_eps'] for p in curve]
    assert all(a <= b + 1e-12 for a, b in zip(eps, eps[1:]))
    inside_first = [p for p in curve if p['queries'] <= 30]
    assert inside_first[-1]['data_independent_eps'] <= analyze(*stages[0], 1e-5).data_independent_eps + 1e-9


def _first_queries(stages, k):
    """The stages cut after their first k queries in order (a stage left empty is dropped)."""
    cut = []
    for aggregator, counts, labels in stages:
        if k > 0:
            cut.append((aggregator, counts[:k], labels[:k]))
        k -= len(labels)
    return cut


def test_epsilon_curve_point_k_is_the_analysis_of_the_first_k_queries():
    """12 points by default, from the first query to the last; every point of the full
    curve equals `analyze_stages` of the first k queries, the second stage's first included."""
    stages = _two_stages()
    assert [p['queries'] for p in epsilon_curve(stages, 1e-5)] == [
        1, 8, 15, 23, 30, 37, 44, 51, 58, 66, 73, 80]  # round(1 + 79 i / 11), i = 0..11
    full = epsilon_curve(stages, 1e-5, points=80)
    assert [p['queries'] for p in full] == list(range(1, 81))
    for point in full:
        report = analyze_stages(_first_queries(stages, point['queries']), 1e-5)
        assert point['answered'] == report.num_answered
        assert point['data_independent_eps'] == pytest.approx(report.data_independent_eps, rel=1e-9)
        assert point['data_dependent_eps'] == pytest.approx(report.data_dependent_eps, rel=1e-9)


def test_confident_candidates(caplog):
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.5, 0.5]])
    assert confident_candidates(probs, 0.9, 2).tolist() == [0, 2]
    assert confident_candidates(probs, 0.0, 4).tolist() == [0, 1, 2, 3]
    with caplog.at_level('WARNING'):
        assert confident_candidates(probs, 0.0, 4).tolist() == [0, 1, 2, 3]  # exactly enough
        assert not caplog.messages
        assert confident_candidates(probs, 0.6, 5).tolist() == [0, 1, 2]
    assert caplog.messages == [
        'only 3 pool images reach confidence 0.6: stage 2 asks 3 queries, not 5']
    with pytest.raises(ValueError, match='min_confidence'):
        confident_candidates(probs, 0.99, 1)
