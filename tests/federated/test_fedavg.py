"""FedAvg, DP-FedAvg and secure aggregation on small real-MNIST federations."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.data import load_mnist
from tfpriv.errors import CheckpointExists
from tfpriv.federated import dp_fedavg, fedavg, partition, secure
from tfpriv.federated.runtime import leftover_workers, start_worker, stop_worker, tff_context
from tfpriv.rng import RandomSource

BASE = fedavg.FedConfig(clients=6, rounds=2, client_fraction=0.5, local_epochs=1, batch_size=20)


@pytest.fixture(scope='module')
def small():
    return load_mnist().subset(1200, 400)


@pytest.fixture(scope='module')
def one_round_inputs(small):
    """Two clients of very different sizes (30 and 90 examples), no shuffling, no dropout."""
    config = dataclasses.replace(BASE, dropout=0.0)
    idx = [np.arange(30), np.arange(30, 120)]
    datasets = [partition.client_dataset(small.x_train, small.y_train, i, 10) for i in idx]
    return config, idx, datasets


def _weights(round_impl, state):
    return [np.asarray(w) for w in round_impl.get_model_weights(state).trainable]


def _keras_fedavg(config, data, initial, idx, lr=None):
    """The same round done directly in Keras: train each client, average weighted by size."""
    models = []
    for i in idx:
        model = fedavg.keras_model(config, data)
        model.set_weights(initial)
        model.compile(optimizer=tf.keras.optimizers.SGD(lr or config.client_learning_rate),
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(data.x_train[i], data.y_train[i], batch_size=10, epochs=1, shuffle=False,
                  verbose=0)
        models.append(model.get_weights())
    sizes = np.array([len(i) for i in idx], dtype=float)
    return [sum(s * m[j] for s, m in zip(sizes / sizes.sum(), models)) for j in range(len(initial))]


def test_fedavg_weights_by_example_count_and_secure_rounds_match(small, one_round_inputs):
    config, idx, datasets = one_round_inputs
    spec = datasets[0].element_spec
    model_fn = fedavg.make_model_fn(config, small, spec)
    with tff_context():
        plain = fedavg.build_round(config, model_fn, spec, 2)
        state = plain.initialize()
        initial = _weights(plain, state)
        after, metrics, _ = plain.next(state, datasets)
        expected = _keras_fedavg(config, small, initial, idx)
        for got, want in zip(_weights(plain, after), expected):
            np.testing.assert_allclose(got, want, atol=2e-5)
        assert metrics['num_examples'] == 120
        # the split round (TFF client work, Python aggregation, TFF finalizer) is the same FedAvg,
        # and every secure aggregator present equals plain aggregation up to fixed point
        # (SecAgg+ needs at least 3 clients: test_seeded_secure_aggregation_run_... covers it)
        for scheme in ['plain'] + [s for s in secure.available_schemes()
                                   if s not in secure.PER_ROUND_SCHEMES]:
            split = secure.SecureRound(model_fn, fedavg.build_optimizer('sgd', config.client_learning_rate),
                                       fedavg.build_optimizer('sgd', 1.0),
                                       secure.make_aggregator(scheme, RandomSource(seed=1)), spec)
            start = (plain.get_model_weights(state), split.initialize()[1])
            (weights, _), _, stats = split.next(start, datasets)
            assert stats.scheme == scheme and stats.num_clients == 2
            for got, want in zip(weights.trainable, expected):
                np.testing.assert_allclose(got, want, atol=1e-4, err_msg=scheme)
    assert leftover_workers() == []


def test_client_lr_decay_follows_the_round_number(small, one_round_inputs):
    config, idx, datasets = one_round_inputs
    config = dataclasses.replace(config, client_learning_rate=0.2, client_learning_rate_decay=0.25)
    spec = datasets[0].element_spec
    with tff_context():
        rounds = fedavg.build_round(config, fedavg.make_model_fn(config, small, spec), spec, 2)
        state, _, _ = rounds.next(rounds.initialize(), datasets)
        before = _weights(rounds, state)
        state, _, _ = rounds.next(state, datasets)
        for got, want in zip(_weights(rounds, state),
                             _keras_fedavg(config, small, before, idx, lr=0.2 * 0.25)):
            np.testing.assert_allclose(got, want, atol=2e-5)
    with pytest.raises(ValueError, match='plain FedAvg'):
        fedavg.build_round(dataclasses.replace(config, dp=True), None, spec, 2)
    assert leftover_workers() == []


@pytest.mark.parametrize('scheme', ['iid', 'dirichlet', 'pathological'])
def test_each_partition_trains(small, scheme):
    result = fedavg.train(dataclasses.replace(BASE, partition=scheme, alpha=0.5), small,
                          RandomSource(seed=0))
    history = result.history
    assert history['round'] == [1, 2] and result.clients_per_round == 3
    # The reported figures are the returned global model's, recomputed here by Keras.
    loss, accuracy = result.model.evaluate(small.x_test, small.y_test, batch_size=1000, verbose=0)
    assert history['val_loss'][-1] == pytest.approx(loss, rel=1e-5)
    assert history['val_accuracy'][-1] == pytest.approx(accuracy) == result.test_accuracy
    if scheme == 'iid':  # it learns: the second round lowers the loss of the first
        assert history['val_loss'][1] < history['val_loss'][0]
        assert result.test_accuracy > 0.3  # 10 classes: chance is 0.1
    metrics = json.loads(json.dumps(result.metrics()))  # scalar, JSON-able; the model apart
    assert 'model' not in metrics and 'epsilon' not in metrics and metrics['rounds_done'] == 2
    assert leftover_workers() == []


def test_dp_fedavg_epsilon_per_round(small, tmp_path):
    config = dataclasses.replace(BASE, dp=True, noise_multiplier=1.0, l2_norm_clip=1.0,
                                 out=str(tmp_path / 'run'))
    result = fedavg.train(config, small, RandomSource(seed=0))
    eps = result.history['epsilon']
    assert result.delta == 1e-2  # K = 6 clients: 10^-(ceil(log10 6) + 1)
    import dp_accounting
    from dp_accounting import rdp
    for rounds, value in enumerate(eps, start=1):
        acc = rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
        acc.compose(dp_accounting.SampledWithoutReplacementDpEvent(
            6, 3, dp_accounting.GaussianDpEvent(0.5)), rounds)
        assert value == pytest.approx(acc.get_epsilon(1e-2), rel=1e-9)
    assert eps[0] < eps[1] and result.epsilon == eps[-1]
    # resume: a 3-round run picks up the 2 checkpointed rounds and continues ε
    resumed = fedavg.train(dataclasses.replace(config, rounds=3, resume=True), small,
                           RandomSource(seed=0))
    history = resumed.history
    assert history['round'] == [1, 2, 3] and history['epsilon'][:2] == eps
    assert history['epsilon'][2] == pytest.approx(
        dp_fedavg.epsilons(6, 3, 1.0, 3, 1e-2)[2])
    assert history['val_loss'][:2] == result.history['val_loss']
    from tfpriv.federated.checkpoint import ResumeMismatch
    with pytest.raises(ResumeMismatch, match='other settings'):
        fedavg.train(dataclasses.replace(config, rounds=4, client_learning_rate=0.5, resume=True), small,
                     RandomSource(seed=0))
    assert leftover_workers() == []


def test_model_ema_is_evaluated_checkpointed_and_resumed(small, tmp_path):
    config = dataclasses.replace(BASE, rounds=1, model_ema=0.5, out=str(tmp_path / 'run'))
    first = fedavg.train(config, small, RandomSource(seed=0))
    w1 = first.model.get_weights()
    assert first.history['ema_val_loss'] == first.history['val_loss']  # v_1 = w_1
    second = fedavg.train(dataclasses.replace(config, rounds=2, resume=True), small,
                          RandomSource(seed=0))
    w2 = second.model.get_weights()  # the global model, not the EMA
    assert not np.allclose(w1[0], w2[0])
    model = second.model
    model.set_weights([0.5 * a + 0.5 * b for a, b in zip(w1, w2)])  # v_2 = β v_1 + (1 - β) w_2
    loss, accuracy = model.evaluate(small.x_test, small.y_test, batch_size=1000, verbose=0)
    history = second.history
    assert history['ema_val_loss'][1] == pytest.approx(loss, rel=1e-5)
    assert history['ema_val_accuracy'][1] == pytest.approx(accuracy) == second.ema_test_accuracy
    assert history['ema_val_loss'][1] != pytest.approx(history['val_loss'][1], rel=1e-5)
    with pytest.raises(ValueError, match=r'model_ema must be in \[0, 1\)'):
        fedavg.train(dataclasses.replace(config, model_ema=1.0), small)
    assert leftover_workers() == []


def test_dp_accounting_edge_cases():
    assert dp_fedavg.epsilons(100, 10, 0.0, 2, 1e-3) == [float('inf')] * 2
    with pytest.raises(ValueError, match='clients_per_round'):
        dp_fedavg.round_event(10, 11, 1.0)
    assert dp_fedavg.default_delta(100) == 1e-3 and dp_fedavg.default_delta(653) == 1e-3 < 1 / 653


def test_two_remote_workers_on_loopback(small):
    workers = [start_worker(), start_worker()]
    try:
        config = dataclasses.replace(BASE, rounds=1, client_fraction=1.0,
                                     workers=[w.target for w in workers])
        result = fedavg.train(config, small, RandomSource(seed=0))
        assert result.rounds_done == 1 and result.test_accuracy > 0.3
        assert all(w.process.poll() is None for w in workers)  # remote workers are not ours
    finally:
        for w in workers:
            stop_worker(w)
    assert leftover_workers() == []


def test_unknown_secure_aggregation_is_refused():
    with pytest.raises(ValueError, match='unknown secure aggregation'):
        secure.make_aggregator('paillier')


def test_seed_makes_a_run_repeatable_and_existing_checkpoints_are_kept(small, tmp_path):
    """Same seed: identical metrics and weights (init, dropout, split, order, sampling all seeded).

    The MLP keeps its default Dropout(0.2), so unseeded dropout masks or initial weights
    would change the losses. A second run into the same `out` is refused unless it resumes
    or overwrites; the overwriting run reproduces the first exactly.
    """
    config = dataclasses.replace(BASE, seed=3, out=str(tmp_path / 'run'))
    first = fedavg.train(config, small)
    with pytest.raises(CheckpointExists, match='overwrite=True'):
        fedavg.train(config, small)
    again = fedavg.train(dataclasses.replace(config, overwrite=True), small)
    drop_timing = lambda h: {k: v for k, v in h.items() if k != 'seconds'}  # noqa: E731
    assert drop_timing(again.history) == drop_timing(first.history)
    for a, b in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = fedavg.train(dataclasses.replace(config, seed=4, out=None), small)
    assert other.history['loss'] != first.history['loss']  # the seed is used, not a constant
    assert leftover_workers() == []


def test_seeded_secure_aggregation_run_equals_the_plain_run(small):
    """`secure_agg='shamir'` vs 'none' with one seed: the same global model up to fixed point.

    The seed gives both runs the same initial weights, clients and data order; dropout is
    off because the two round implementations are different TF graphs (different op seeds).
    Tolerance: Shamir's fixed-point error m 2^-(p+1) / Σ n_k (p = 20 bits, m = 3 clients:
    about 2.4e-9, its `max_abs_error`) plus float32 rounding of the two summation orders
    (a few ulps of weights of magnitude ≤ 1: about 1e-6); 1e-5 covers both.
    SecAgg+ ('secagg', 20 fractional bits, stochastic rounding) is off by at most
    m 2^-20 / 1 = 2.9e-6 per value (each client rounds (n_k/N) x_k once): also within 1e-5.
    """
    config = dataclasses.replace(BASE, rounds=1, dropout=0.0, seed=7)
    plain = fedavg.train(config, small).model.get_weights()
    for scheme in ('shamir', 'secagg'):
        secure_run = fedavg.train(dataclasses.replace(config, secure_agg=scheme), small)
        for got, want in zip(secure_run.model.get_weights(), plain):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=scheme)
    assert leftover_workers() == []


def test_the_central_dp_round_that_train_builds_adds_the_noise_its_epsilon_counts(small):
    """Clients that do not move (client lr 0) send zero deltas, so one DP-FedAvg round moves
    the global model by TFF's noise alone: N(0, (σ S / m)^2) per weight, σ = 1, S = 2, m = 3
    of K = 6, sd 2/3 (the server's SGD at lr 1 adds the average delta). The same run without
    DP, whose weights do not move at all, gives the seeded initial weights. Over the MLP's
    55,050 weights the sample variance is within 5 se (sqrt(2 / (n - 1)), ±3 %) and the mean
    within 5 se of 0: a σ passed at half its value (-75 % variance) fails, while the ε the
    run reports is still the one for σ (checked here against dp_fedavg.epsilons)."""
    config = dataclasses.replace(BASE, rounds=1, client_learning_rate=0.0, l2_norm_clip=2.0,
                                 noise_multiplier=1.0, seed=3)
    still = fedavg.train(config, small, RandomSource(seed=0)).model.get_weights()
    noised = fedavg.train(dataclasses.replace(config, dp=True), small, RandomSource(seed=0))
    assert noised.history['epsilon'] == [dp_fedavg.epsilons(6, 3, 1.0, 1, noised.delta)[0]]
    noise = np.concatenate([np.ravel(a - b) for a, b in zip(noised.model.get_weights(), still)])
    var, n = (1.0 * 2.0 / 3) ** 2, noise.size
    assert n == 55_050
    assert abs(noise.var(ddof=1) - var) <= 5 * var * np.sqrt(2 / (n - 1))
    assert abs(noise.mean()) <= 5 * np.sqrt(var / n)
    assert leftover_workers() == []
