"""Encrypted training end to end: against TensorFlow, against its plaintext twin, and faults."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfpriv.crypto.smpc import Encoding, SharedTensor, approx
from tfpriv.crypto.smpc.checked import VerifyingNetwork, verified_cluster
from tfpriv.crypto.smpc.party import Traffic
from tfpriv.crypto.smpc.owners import (MAX_TRAINING_PRECISION, NORMALIZATION_LEVELS, OwnerData,
                                       column_bounds, credit_records, share_columns, share_rows,
                                       share_split, split_columns, split_rows)
from tfpriv.crypto.smpc.training import (DataSharing, PlainOps, SecureOps, SgdConfig,
                                         SharedModel, Tally, backward, forward,
                                         layers_from_keras, logistic_regression, loss_terms,
                                         set_keras_weights, train_encrypted, train_plaintext)
from tfpriv.data import load_credit
from tfpriv.experiments.encrypted import WeightLog
from tfpriv.errors import InconsistentResultError, MalformedMessageError, UnsupportedLayerError
from tfpriv.model import build_model
from tfpriv.rng import RandomSource

F = 20


def small_credit(num_train=48, num_test=24):
    return credit_records().subset(num_train, num_test)


def mlp(input_shape, num_classes=2, seed=0):
    tf.keras.utils.set_random_seed(seed)
    return build_model('mlp', input_shape, num_classes, dropout=0.0)


@pytest.mark.parametrize('loss', ['cross_entropy', 'mse'])
def test_plaintext_twin_gradients_equal_tensorflow(loss):
    # the plaintext backward pass (which the encrypted one is compared with) against autodiff
    data = load_credit().subset(16, 4)
    model = mlp(data.input_shape)
    x, labels = data.x_train.astype(np.float64), np.eye(2)[data.y_train]
    layers = layers_from_keras(model)
    logits, cache = forward(layers, PlainOps, x)
    grads = backward(layers, cache, loss_terms(PlainOps, loss, logits, labels).grad)
    with tf.GradientTape() as tape:
        z = tf.cast(model(x.astype(np.float32)), tf.float64)
        if loss == 'cross_entropy':
            value = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels, z))
        else:
            value = 0.5 * tf.reduce_sum((z - labels)**2)
    reference = tape.gradient(value, model.trainable_variables)
    np.testing.assert_allclose(logits, z.numpy(), atol=1e-5)
    for ours, theirs in zip([g for pair in grads for g in pair], reference):
        np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-4, rtol=1e-4)


def test_layers_from_keras_refuses_other_layers():
    tf.keras.utils.set_random_seed(0)
    model = build_model('cnn', (28, 28, 1), 10)
    with pytest.raises(UnsupportedLayerError, match='Dense layers'):
        layers_from_keras(model)


@pytest.mark.parametrize('num_parties', [2, 3, 4])
def test_encrypted_training_tracks_plaintext(num_parties):
    """Same initial weights, batches and normalization: 2 epochs of 3 steps each, at the
    default precision f = 24 (u = 2^-24).

    Tolerance per weight, from the bounds of `approx` (not fitted): the logit gradient
    errs by e_s <= 2 C exp-bound + 4 u ~ 3.6e-5 per entry (softmax bound); each
    standardized feature by e_x <= |z| (3 u + 6.5 u / v) + 5 u / sqrt(v) + u for its
    column's variance v (test_secure_standardization_matches_numpy); a step moves a
    weight by at most lr (|a| e_s + e_x |p - y|) with |a| <= 5 and |p - y| <= 1, so 6 steps
    give 6 lr (5 e_s + e_x) on the last layer, and back-propagation through weights of
    norm < 1 adds at most as much (the ReLU masks agree: no pre-activation of this seed
    lies within that error of 0): ~4.6e-4. The opened metrics differ by the loss's own
    error and accuracy by at most one flip.
    """
    data = small_credit()
    model = mlp(data.input_shape)
    config = SgdConfig(learning_rate=0.1, epochs=2, batch_size=16, seed=1)
    plain = train_plaintext(model, data, config)
    cluster = verified_cluster(num_parties, Encoding(MAX_TRAINING_PRECISION),
                               RandomSource(seed=num_parties))
    secure = train_encrypted(model, data, cluster, config)
    u = 2.0**-MAX_TRAINING_PRECISION
    scaled = data.x_train / column_bounds(data.x_train)
    v = scaled.var(0) + 4.0**-NORMALIZATION_LEVELS
    z = np.abs(scaled - scaled.mean(0)).max(0) / np.sqrt(v)
    e_x = np.max(z * (3 * u + 6.5 * u / v) + 5 * u / np.sqrt(v) + u)
    e_s = 2 * 2 * approx.exp_error_bound(MAX_TRAINING_PRECISION) + 4 * u
    tolerance = 2 * 6 * config.learning_rate * (5 * e_s + e_x)
    assert tolerance < 1e-3
    owner = cluster.client('analyst')
    for ours, theirs in zip(secure.model.reveal(to=owner), plain.model):
        assert np.max(np.abs(ours.kernel - theirs.kernel)) <= tolerance
        assert np.max(np.abs(ours.bias - theirs.bias)) <= tolerance
    for key in ('loss', 'val_loss'):
        np.testing.assert_allclose(secure.history[key], plain.history[key], atol=2e-3)
    for key in ('accuracy', 'val_accuracy'):
        np.testing.assert_allclose(secure.history[key], plain.history[key], atol=1 / 24 + 1e-9)
    start = layers_from_keras(model)[0].kernel
    assert np.max(np.abs(plain.model[0].kernel - start)) > 1e-3  # it trained
    assert all(b > 0 for b in secure.history['bytes']) and secure.history['rounds'][0] > 0


def test_epoch_hook_logs_weights_outside_the_cost_figures():
    # WeightLog reveals the shared weights after each epoch (the benchmark's drift);
    # its traffic must not enter the epoch's bytes and rounds, and the drift it reports
    # compares the two twins (nonzero: fixed point differs; small: the bound above)
    data = small_credit(32, 8)
    model = mlp(data.input_shape)
    config = SgdConfig(learning_rate=0.1, epochs=2, batch_size=16, seed=2)
    clusters = [verified_cluster(2, Encoding(MAX_TRAINING_PRECISION), RandomSource(seed=s))
                for s in (5, 6)]
    log, plain_log = WeightLog(clusters[0].client('experimenter')), WeightLog()
    logged = train_encrypted(model, data, clusters[0], config, on_epoch=log)
    bare = train_encrypted(model, data, clusters[1], config)
    train_plaintext(model, data, config, on_epoch=plain_log)
    assert logged.history['bytes'] == bare.history['bytes']
    assert logged.history['rounds'] == bare.history['rounds']
    assert len(log.epochs) == len(plain_log.epochs) == config.epochs
    final = [w for layer in logged.model.reveal(to=clusters[0].client('owner'))
             for w in (layer.kernel, layer.bias)]
    for ours, theirs in zip(log.epochs[-1], final):
        np.testing.assert_array_equal(ours, theirs)
    drift = log.drift(plain_log)
    assert len(drift) == config.epochs and all(0 < d <= 1e-3 for d in drift)


def test_logistic_regression_with_mse_and_vertical_split():
    data = small_credit(32, 16)
    tf.keras.utils.set_random_seed(0)
    model = logistic_regression(data.input_shape, 2)
    config = SgdConfig(learning_rate=0.05, epochs=1, batch_size=8, loss='mse')
    sharing = DataSharing(partition='columns', num_owners=3)
    plain = train_plaintext(model, data, config, sharing)
    cluster = verified_cluster(2, Encoding(F), RandomSource(seed=7))
    secure = train_encrypted(model, data, cluster, config, sharing)
    (ours,), (theirs,) = secure.model.reveal(cluster.client('bank')), plain.model
    assert np.max(np.abs(ours.kernel - theirs.kernel)) <= 1e-3
    np.testing.assert_allclose(secure.history['loss'], plain.history['loss'], atol=1e-3)


def test_shared_model_serves_encrypted_inference_and_keras():
    data = load_credit().subset(32, 16)  # already standardized by the loader
    model = mlp(data.input_shape)
    cluster = verified_cluster(3, Encoding(F), RandomSource(seed=3))
    run = train_encrypted(model, data, cluster, SgdConfig(epochs=1, batch_size=16),
                          DataSharing(normalize=False))
    assert isinstance(run.model, SharedModel)
    x = data.x_test.astype(np.float64)
    logits = run.model.logits(SharedTensor.share(cluster, x)).reveal()
    set_keras_weights(model, run.model.reveal(to=cluster.client('owner')))
    keras_logits = model(x.astype(np.float32)).numpy()
    np.testing.assert_allclose(logits, keras_logits, atol=1e-3 * np.abs(x).max())
    with pytest.raises(TypeError, match='Party'):
        run.model.reveal(to='everyone')


def test_owner_shares_hide_the_records():
    # each party's share of the data is uniform: every bit is set with probability 1/2
    data = small_credit(96, 8)
    cluster = verified_cluster(3, Encoding(F), RandomSource(seed=11))
    x, _ = share_rows(cluster, split_rows(data.x_train, data.y_train), 2)
    for share in cluster.shares(x._handle):
        bits = np.unpackbits(share.view(np.uint8))
        # binomial: mean 1/2, sd 1/(2 sqrt(n)); 6 sd two-sided
        assert abs(bits.mean() - 0.5) <= 6 * 0.5 / np.sqrt(bits.size)
    np.testing.assert_allclose(x.reveal(), data.x_train, atol=2.0**-F)


def test_vertical_and_horizontal_sharing_agree():
    data = small_credit(20, 4)
    cluster = verified_cluster(2, Encoding(F), RandomSource(seed=5))
    rows = share_rows(cluster, split_rows(data.x_train, data.y_train, 4), 2)
    owners = [OwnerData('bank', data.x_train[:, :10], data.y_train),
              OwnerData('bureau', data.x_train[:, 10:])]
    columns = share_columns(cluster, owners, 2)
    for a, b in zip(rows, columns):
        np.testing.assert_array_equal(a.reveal(), b.reveal())


@pytest.mark.parametrize('owner,message', [
    (OwnerData('applicant 3', np.full((1, 46), np.nan), np.array([1])), 'NaN'),
    (OwnerData('applicant 3', np.zeros((1, 45)), np.array([1])), '45 features'),
    (OwnerData('applicant 3', np.zeros((1, 46)), np.array([2])), 'labels'),
])
def test_malformed_owner_data_is_refused_with_the_owner_named(owner, message):
    cluster = verified_cluster(2, Encoding(F), RandomSource(seed=1))
    good = OwnerData('applicant 0', np.zeros((1, 46)), np.array([0]))
    with pytest.raises(ValueError, match=f"'applicant 3'.*{message}"):
        share_rows(cluster, [good, owner], 2)


class FaultyNetwork(VerifyingNetwork):
    """Party `culprit` sends a malformed message in the `at`-th broadcast round."""

    def __init__(self, num_parties, culprit, at, fault):
        super().__init__(num_parties)
        self.culprit, self.at, self.fault, self.count = culprit, at, fault, 0

    def broadcast(self, contributions, combiners):
        self.count += 1
        if self.count == self.at:
            contributions = list(contributions)
            contributions[self.culprit] = tuple(self.fault(a) for a in contributions[self.culprit])
        return super().broadcast(contributions, combiners)


@pytest.mark.parametrize('fault', [lambda a: a[..., :-1], lambda a: a.astype(np.float64)],
                         ids=['short message', 'wrong dtype'])
@pytest.mark.parametrize('num_parties', [2, 3, 4])
def test_malformed_party_message_stops_training(num_parties, fault):
    data = load_credit().subset(16, 8)
    model = mlp(data.input_shape)
    network = FaultyNetwork(num_parties, culprit=1, at=40, fault=fault)
    cluster = verified_cluster(num_parties, Encoding(F), RandomSource(seed=1), network=network)
    with pytest.raises(MalformedMessageError, match='party1 sent') as error:
        train_encrypted(model, data, cluster, SgdConfig(epochs=1, batch_size=8),
                        DataSharing(normalize=False))
    if num_parties > 2:  # a majority names the one culprit
        assert 'party0 sent' not in str(error.value) and 'the others sent' in str(error.value)


def test_impossible_opened_aggregate_is_an_error():
    cluster = verified_cluster(2, Encoding(F), RandomSource(seed=1))
    tally = Tally(examples=10, correct=SharedTensor.share(cluster, np.array(12), precision=0),
                  loss_sum=SharedTensor.share(cluster, np.array(3.0)))
    with pytest.raises(InconsistentResultError, match='integer in'):
        tally.result(SecureOps, 2)
    four = SharedTensor.share(cluster, np.array(4), precision=0)
    tally = dataclasses.replace(tally, correct=four)
    assert tally.result(SecureOps, 2) == pytest.approx((0.3, 0.4), abs=1e-5)


def test_sgd_config_names_the_bad_argument():
    with pytest.raises(ValueError, match='loss must be one of'):
        SgdConfig(loss='nll')
    with pytest.raises(ValueError, match='learning_rate must be > 0'):
        SgdConfig(learning_rate=0.0)
    with pytest.raises(TypeError, match='batch_size must be an int'):
        SgdConfig(batch_size=3.5)


def test_credit_records_are_the_loaders_rows_before_standardization():
    raw, standardized = credit_records(), load_credit()
    x = raw.x_train
    std = np.where(x.std(0) > 0, x.std(0), 1.0)
    numeric = ~np.all(np.isin(x, [0.0, 1.0]), axis=0)
    rebuilt = np.where(numeric, (x - x.mean(0)) / std, x)
    np.testing.assert_allclose(rebuilt, standardized.x_train, atol=1e-5)
    np.testing.assert_array_equal(raw.y_test, standardized.y_test)
    assert numeric.sum() == 6 and x.max() == 100000


def test_diverging_training_stops_with_overflow_when_checked():
    # raw Credit attributes (up to 100,000) without standardization and a large step:
    # the products leave the fixed-point range; with the check this is an error, not a
    # silently wrapped model
    data = small_credit(16, 8)
    model = mlp(data.input_shape)
    cluster = verified_cluster(2, Encoding(F), RandomSource(seed=1), check_overflow=True)
    with pytest.raises(OverflowError, match='fixed-point range'):
        train_encrypted(model, data, cluster, SgdConfig(learning_rate=1.0, epochs=1, batch_size=8),
                        DataSharing(normalize=False))


def test_split_rows_and_columns_name_the_owners_and_check_their_number():
    """Default one record per owner, named '<name> k'; the columns' first owner holds the
    labels; 1 <= num_owners <= the records (or columns), both ends allowed."""
    x, y = np.arange(12.0).reshape(4, 3), np.array([0, 1, 1, 0])
    rows = split_rows(x, y)
    assert [o.name for o in rows] == ['owner 0', 'owner 1', 'owner 2', 'owner 3']
    assert [o.y.tolist() for o in rows] == [[0], [1], [1], [0]]
    assert [len(o.x) for o in split_rows(x, y, 1, 'bank')] == [4]
    columns = split_columns(x, y, 3, 'bureau')
    assert [o.name for o in columns] == ['bureau 0', 'bureau 1', 'bureau 2']
    assert columns[0].y is y and columns[1].y is None and columns[2].y is None
    assert [o.x.shape for o in split_columns(x, y, 1)] == [(4, 3)]
    with pytest.raises(ValueError, match=r'^num_owners must be in \[1, 4\] \(the number of '
                                         r'records\), got 5$'):
        split_rows(x, y, 5)
    with pytest.raises(ValueError, match=r'^num_owners must be in \[1, 3\] \(the number of '
                                         r'columns\) for a vertical split, got 0$'):
        split_columns(x, y, 0)


@pytest.mark.parametrize('partition,num_owners', [('rows', None), ('rows', 3), ('columns', None),
                                                  ('columns', 4)])
def test_share_split_shares_records_and_exact_one_hot_labels_and_counts_the_traffic(
        partition, num_owners):
    data = small_credit(12, 4)
    cluster = verified_cluster(2, Encoding(F), RandomSource(seed=3))
    before = dataclasses.replace(cluster.network.online)
    x, y, traffic = share_split(cluster, data.x_train, data.y_train, 2, partition, num_owners)
    after = cluster.network.online
    assert traffic == Traffic(after.rounds - before.rounds, after.messages - before.messages,
                              after.bytes - before.bytes)
    assert traffic.messages > 0 and traffic.bytes > 0
    np.testing.assert_allclose(x.reveal(), data.x_train, atol=2.0**-F)
    np.testing.assert_array_equal(y.reveal(), np.eye(2)[data.y_train])
    assert (x.precision, y.precision) == (F, 0)  # labels are shared as integers
    with pytest.raises(ValueError, match=r"^partition must be one of \('rows', 'columns'\), "
                                         r"got 'diagonal'$"):
        share_split(cluster, data.x_train, data.y_train, 2, 'diagonal')
