"""End-to-end encrypted training: data, labels, model and gradients stay secret-shared.

The data owners share their records (`owners`), the model owner shares the
initial weights of a Keras MLP (Dense + ReLU layers: the project's `mlp`, or
`logistic_regression`), and the n >= 2 computing parties, helped by the
dealer's correlated randomness, run mini-batch SGD on shares:

  forward   h = a W + b (Beaver matmul), mask = [h > 0] (exact comparison),
            a' = h * mask (one round, no truncation: the mask is an integer);
  loss      softmax cross-entropy: p = softmax(z) through `approx.exp` and
            `approx.reciprocal` (max subtracted first, exactly), dL/dz = p - y;
            or MSE, L = 1/2 sum_c (z - y)^2, dL/dz = z - y;
  backward  g <- (lr / B) dL/dz, dW = a^T g, db = sum g, g <- (g W^T) * mask;
  update    W <- W - dW, b <- b - db (local).

Per epoch only aggregates are opened: the number of correct predictions
(sum of [z_y >= max_c z_c], compared on shares) and the summed loss
(cross-entropy: sum log s - (z_y - max z), s = sum exp(z - max z), with the
secure `approx.log` evaluated once per epoch). The model stays shared; it is
revealed only when `SharedModel.reveal(to=party)` is called.

The same SGD loop runs on float64 NumPy arrays with exact exp, division and
log (`PlainOps`): the plaintext run of the same model, batches and
initialization that the encrypted run is compared with.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from tfpriv import checks
from tfpriv.crypto.smpc import approx
from tfpriv.crypto.smpc.inference import compile_model
from tfpriv.crypto.smpc.owners import (NORMALIZATION_LEVELS, column_bounds, share_split,
                                       standardize)
from tfpriv.crypto.smpc.party import Cluster, Party, Traffic
from tfpriv.crypto.smpc.tensor import SharedTensor, stack
from tfpriv.errors import InconsistentResultError, UnsupportedLayerError

LOSSES = ('cross_entropy', 'mse')
Progress = Callable[[int, int, int], None]  # (epoch, batch, batches)
EpochHook = Callable[[int, 'FitState'], None]  # (epoch, state) after each epoch's metrics


@dataclasses.dataclass(frozen=True)
class SgdConfig:
    """Mini-batch SGD: `epochs` passes in a `seed`-shuffled order, mean gradient per batch."""

    learning_rate: float = 0.1
    epochs: int = 5
    batch_size: int = 32
    loss: str = 'cross_entropy'
    seed: int = 0

    def __post_init__(self):
        checks.number('learning_rate', self.learning_rate, minimum=0.0, strict_minimum=True)
        checks.integer('epochs', self.epochs, minimum=1)
        checks.integer('batch_size', self.batch_size, minimum=1)
        checks.choice('loss', self.loss, LOSSES)
        checks.integer('seed', self.seed)


@dataclasses.dataclass
class DenseLayer:
    """y = x @ kernel + bias, then ReLU if `relu`; arrays or SharedTensors."""

    kernel: object
    bias: object
    relu: bool


# ---- the two backends --------------------------------------------------------------------


class PlainOps:
    """Float64 NumPy with exact functions: the plaintext twin of the protocol."""

    @staticmethod
    def positive(h):
        return (h > 0).astype(np.float64)

    @staticmethod
    def nonnegative(x):
        return (x >= 0).astype(np.int64)

    @staticmethod
    def row_max(z):
        return z.max(axis=-1)

    @staticmethod
    def softmax(z):
        top = z.max(axis=-1)
        e = np.exp(z - top[:, None])
        total = e.sum(axis=-1)
        return e / total[:, None], top, total

    @staticmethod
    def log(s, hi):  # pylint: disable=unused-argument
        return np.log(s)

    @staticmethod
    def inv_sqrt(v, levels):  # pylint: disable=unused-argument
        return 1.0 / np.sqrt(v)

    @staticmethod
    def stack(values):
        return np.stack(values)

    @staticmethod
    def reveal(x) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)


class SecureOps:
    """`SharedTensor` with the approximations of `approx`; `reveal` opens to all parties."""

    positive = staticmethod(lambda h: h > 0)
    nonnegative = staticmethod(lambda x: x >= 0)
    row_max = staticmethod(approx.row_max)
    softmax = staticmethod(approx.softmax)
    log = staticmethod(approx.log)
    inv_sqrt = staticmethod(approx.inv_sqrt)
    stack = staticmethod(stack)

    @staticmethod
    def reveal(x) -> np.ndarray:
        return np.asarray(x.reveal(), dtype=np.float64)


# ---- the model ---------------------------------------------------------------------------


def layers_from_keras(model) -> List[DenseLayer]:
    """The Dense(+ReLU) chain of a Keras model, as float64 weights.

    Raises:
      UnsupportedLayerError: a layer other than Input, Flatten, Dropout, Dense, ReLU.
    """
    layers: List[DenseLayer] = []
    for index, step in enumerate(compile_model(model)):
        if step.kind == 'reshape' and index == 0 and step.options['shape'] == (-1,):
            continue
        if step.kind == 'dense':
            kernel, bias = (np.asarray(w, np.float64) for w in step.weights)
            layers.append(DenseLayer(kernel, bias, relu=False))
        elif step.kind == 'relu' and layers and not layers[-1].relu:
            layers[-1].relu = True
        else:
            raise UnsupportedLayerError(
                f'encrypted training supports a Flatten then Dense layers with optional ReLU; '
                f'layer {step.layer!r} ({step.kind}) is not supported')
    if not layers:
        raise UnsupportedLayerError('the model has no Dense layer to train')
    return layers


def logistic_regression(input_shape: Sequence[int], num_classes: int = 2):
    """Flatten -> Dense(num_classes) logits: multinomial logistic regression under softmax."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top,import-outside-toplevel
    inputs = tf.keras.Input(shape=tuple(input_shape))
    outputs = tf.keras.layers.Dense(num_classes)(tf.keras.layers.Flatten()(inputs))
    return tf.keras.Model(inputs, outputs, name='logreg')


def forward(layers: Sequence[DenseLayer], ops, x) -> Tuple[object, list]:
    """Logits, and per layer its input and ReLU mask (None without ReLU) for backward."""
    cache = []
    for layer in layers:
        h = x @ layer.kernel + layer.bias
        mask = ops.positive(h) if layer.relu else None
        cache.append((x, mask))
        x = h * mask if layer.relu else h
    return x, cache


def backward(layers: Sequence[DenseLayer], cache: list, grad) -> List[Tuple[object, object]]:
    """(dW, db) per layer from the (already scaled) gradient of the logits."""
    grads: List[Tuple[object, object]] = [None] * len(layers)
    for i in reversed(range(len(layers))):
        inputs, mask = cache[i]
        if mask is not None:
            grad = grad * mask
        grads[i] = (inputs.T @ grad, grad.sum(axis=0))
        if i:
            grad = grad @ layers[i].kernel.T
    return grads


# ---- loss and metrics --------------------------------------------------------------------


@dataclasses.dataclass
class BatchTerms:
    """dL/dz, the margin z_y - max z (>= 0 iff correct) and the loss terms of a batch."""

    grad: object
    margin: object
    loss_sum: object = None      # MSE: the batch's summed loss
    normalizer: object = None    # cross-entropy: sum exp(z - max z) per example


def loss_terms(ops, loss: str, logits, labels) -> BatchTerms:
    """The gradient and metric terms of `loss` for logits (B, C) and one-hot labels."""
    true_logit = (logits * labels).sum(axis=-1)
    if loss == 'cross_entropy':
        probabilities, top, total = ops.softmax(logits)
        return BatchTerms(probabilities - labels, true_logit - top, normalizer=total)
    diff = logits - labels
    return BatchTerms(diff, true_logit - ops.row_max(logits),
                      loss_sum=(diff * diff).sum() * 0.5)


@dataclasses.dataclass
class Tally:
    """Shared running sums of one pass; opened once by `result`."""

    examples: int = 0
    correct: object = 0
    loss_sum: object = 0.0
    normalizers: List[object] = dataclasses.field(default_factory=list)

    def add(self, ops, terms: BatchTerms, count: int) -> None:
        self.examples += count
        self.correct = ops.nonnegative(terms.margin).sum() + self.correct
        if terms.normalizer is None:
            self.loss_sum = terms.loss_sum + self.loss_sum
        else:
            self.loss_sum = self.loss_sum - terms.margin.sum()
            self.normalizers.append(terms.normalizer)

    def result(self, ops, num_classes: int) -> Tuple[float, float]:
        """(mean loss, accuracy), opening only the two sums; checks they are possible."""
        loss_sum = self.loss_sum
        for size in sorted({s.shape[0] for s in self.normalizers}):
            group = ops.stack([s for s in self.normalizers if s.shape[0] == size])
            loss_sum = ops.log(group, float(num_classes)).sum() + loss_sum
        correct = float(ops.reveal(self.correct))
        loss = float(ops.reveal(loss_sum)) / self.examples
        if not (correct == round(correct) and 0 <= correct <= self.examples):
            raise InconsistentResultError(
                f'the opened number of correct predictions, {correct}, is not an integer in '
                f'[0, {self.examples}]: a party deviated from the protocol')
        if not np.isfinite(loss) or loss < -0.01:
            raise InconsistentResultError(f'the opened mean loss {loss} is impossible: a party '
                                          f'deviated from the protocol')
        return loss, correct / self.examples


# ---- the SGD loop ------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """Training and test features (N, d) and one-hot labels (N, C), arrays or shared."""

    x_train: object
    y_train: object
    x_test: object
    y_test: object
    num_classes: int


@dataclasses.dataclass
class FitState:
    """What the loop carries: the layers being trained, the backend and the cost counters."""

    layers: List[DenseLayer]
    ops: object
    cluster: Optional[Cluster] = None
    history: Dict[str, List[float]] = dataclasses.field(default_factory=dict)

    def record(self, **values: float) -> None:
        for key, value in values.items():
            self.history.setdefault(key, []).append(float(value))

    def traffic(self) -> Tuple[Traffic, int]:
        """(online traffic, offline bytes) so far; zero for plaintext."""
        if self.cluster is None:
            return Traffic(), 0
        network = self.cluster.network
        return dataclasses.replace(network.online), network.offline.bytes


def sgd_step(state: FitState, x, y, loss: str, learning_rate: float) -> BatchTerms:
    """One SGD step on a batch; returns its loss terms (for the running metrics)."""
    logits, cache = forward(state.layers, state.ops, x)
    terms = loss_terms(state.ops, loss, logits, y)
    grads = backward(state.layers, cache, terms.grad * (learning_rate / x.shape[0]))
    for layer, (d_kernel, d_bias) in zip(state.layers, grads):
        layer.kernel = layer.kernel - d_kernel
        layer.bias = layer.bias - d_bias
    return terms


def evaluate(state: FitState, x, y, num_classes: int, loss: str,
             batch_size: int = 1000) -> Tuple[float, float]:
    """(mean loss, accuracy) of the current model on (x, y), opening only the sums."""
    tally = Tally()
    for start in range(0, x.shape[0], batch_size):
        logits, _ = forward(state.layers, state.ops, x[start:start + batch_size])
        labels = y[start:start + batch_size]
        terms = loss_terms(state.ops, loss, logits, labels)
        tally.add(state.ops, terms, labels.shape[0])
    return tally.result(state.ops, num_classes)


def _train_epoch(state: FitState, split: Split, config: SgdConfig, order: np.ndarray,
                 progress: Optional[Progress], epoch: int) -> Tuple[float, float]:
    tally = Tally()
    batches = range(0, len(order), config.batch_size)
    for index, start in enumerate(batches):
        rows = order[start:start + config.batch_size]
        terms = sgd_step(state, split.x_train[rows], split.y_train[rows], config.loss,
                         config.learning_rate)
        tally.add(state.ops, terms, len(rows))
        if progress is not None:
            progress(epoch, index + 1, len(batches))
    return tally.result(state.ops, split.num_classes)


def fit(state: FitState, split: Split, config: SgdConfig, progress: Optional[Progress] = None,
        on_epoch: Optional[EpochHook] = None) -> Dict[str, List[float]]:
    """`config.epochs` epochs of SGD; per epoch: loss, accuracy, test loss/accuracy, seconds,
    and for shared data the online bytes and rounds and offline bytes of training alone.

    `on_epoch(epoch, state)` runs after each epoch's figures are recorded (what it
    sends is outside them), e.g. a benchmark that compares the weights with a twin's.
    """
    rng = np.random.default_rng(config.seed)
    num_train = split.x_train.shape[0]
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(num_train)
        (online, offline), start = state.traffic(), time.perf_counter()
        loss, accuracy = _train_epoch(state, split, config, order, progress, epoch)
        seconds = time.perf_counter() - start
        after, after_offline = state.traffic()
        val_loss, val_accuracy = evaluate(state, split.x_test, split.y_test, split.num_classes,
                                          config.loss)
        state.record(loss=loss, accuracy=accuracy, val_loss=val_loss, val_accuracy=val_accuracy,
                     seconds=seconds, bytes=after.bytes - online.bytes,
                     rounds=after.rounds - online.rounds, offline_bytes=after_offline - offline)
        logging.info('epoch %d: loss %.4f, accuracy %.4f, test accuracy %.4f, %.1f s',
                     epoch, loss, accuracy, val_accuracy, seconds)
        if on_epoch is not None:
            on_epoch(epoch, state)
    return state.history


# ---- the pipelines -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DataSharing:
    """How the data owners share: by `rows` (one owner per record by default) or
    `columns` (`num_owners` owners, 2 by default); `normalize` standardizes on shares."""

    partition: str = 'rows'
    num_owners: Optional[int] = None
    normalize: bool = True
    levels: int = NORMALIZATION_LEVELS


@dataclasses.dataclass
class SharedModel:
    """The trained model, still secret-shared: usable for encrypted inference as it is."""

    layers: List[DenseLayer]
    cluster: Cluster

    def logits(self, x: SharedTensor) -> SharedTensor:
        """Encrypted inference on shared records: the logits, still shared."""
        return forward(self.layers, SecureOps, x)[0]

    def reveal(self, to: Party) -> List[DenseLayer]:
        """The weights as float64 arrays, sent to party `to` only."""
        if not isinstance(to, Party):
            raise TypeError(f'to must be the Party that receives the model, got '
                            f'{type(to).__name__}')
        return [DenseLayer(layer.kernel.reveal(to=to), layer.bias.reveal(to=to), layer.relu)
                for layer in self.layers]


@dataclasses.dataclass
class TrainingRun:
    """History per epoch (loss, accuracy, val_loss, val_accuracy, seconds, bytes, rounds,
    offline_bytes), the model (a `SharedModel` or plaintext layers) and setup costs."""

    history: Dict[str, List[float]]
    model: object
    setup_seconds: float
    input_traffic: Traffic = dataclasses.field(default_factory=Traffic)

    @property
    def test_accuracy(self) -> float:
        return self.history['val_accuracy'][-1]


def set_keras_weights(model, layers: Sequence[DenseLayer]) -> None:
    """Writes plaintext `layers` into the Dense layers of the Keras `model`, in order."""
    dense = [layer for layer in model.layers if type(layer).__name__ == 'Dense']
    if len(dense) != len(layers):
        raise ValueError(f'the model has {len(dense)} Dense layers, got {len(layers)} to set')
    for target, layer in zip(dense, layers):
        target.set_weights([np.asarray(layer.kernel, np.float32),
                            np.asarray(layer.bias, np.float32)])


def _plain_arrays(data) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    flat = [np.asarray(x, np.float64).reshape(len(x), -1) for x in (data.x_train, data.x_test)]
    labels = [np.eye(data.num_classes)[np.asarray(y)] for y in (data.y_train, data.y_test)]
    return flat[0], labels[0], flat[1], labels[1]


def train_plaintext(model, data, config: SgdConfig, sharing: DataSharing = DataSharing(),
                    progress: Optional[Progress] = None,
                    on_epoch: Optional[EpochHook] = None) -> TrainingRun:
    """The plaintext twin: the same model, initialization, normalization, batches and loss
    on float64 arrays with exact functions."""
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = _plain_arrays(data)
    if sharing.normalize:
        x_train, x_test = standardize(PlainOps, x_train, x_test, column_bounds(x_train),
                                      sharing.levels)
    state = FitState(layers_from_keras(model), PlainOps)
    split = Split(x_train, y_train, x_test, y_test, data.num_classes)
    setup = time.perf_counter() - start
    history = fit(state, split, config, progress, on_epoch)
    return TrainingRun(history, state.layers, setup)


def share_data(cluster: Cluster, data, sharing: DataSharing) -> Tuple[Split, Traffic]:
    """The owners share the training and test records; optional secure standardization."""
    parts, traffic = [], Traffic()
    for x, y, name in ((data.x_train, data.y_train, 'owner'),
                       (data.x_test, data.y_test, 'test owner')):
        num_owners = sharing.num_owners if name == 'owner' or sharing.partition == 'columns' \
            else None
        shared_x, shared_y, cost = share_split(cluster, x, y, data.num_classes,
                                               sharing.partition, num_owners, name)
        parts += [shared_x, shared_y]
        traffic.add(cost.rounds, cost.messages, cost.bytes)
    if sharing.normalize:
        bounds = column_bounds(data.x_train)
        parts[0], parts[2] = standardize(SecureOps, parts[0], parts[2], bounds, sharing.levels)
    return Split(*parts, num_classes=data.num_classes), traffic


def train_encrypted(model, data, cluster: Cluster, config: SgdConfig,
                    sharing: DataSharing = DataSharing(), progress: Optional[Progress] = None,
                    model_owner: Optional[Party] = None,
                    on_epoch: Optional[EpochHook] = None) -> TrainingRun:
    """Encrypted training of the Keras `model` (its current weights are the initialization)
    on `data` (a `tfpriv.data.Dataset`); the model owner shares the initial weights."""
    if not isinstance(cluster, Cluster):
        raise TypeError(f'cluster must be a Cluster, got {type(cluster).__name__}')
    start = time.perf_counter()
    layers = layers_from_keras(model)
    split, traffic = share_data(cluster, data, sharing)
    owner = model_owner or cluster.client('model owner')
    shared = [DenseLayer(SharedTensor.share(cluster, layer.kernel, owner=owner),
                         SharedTensor.share(cluster, layer.bias, owner=owner), layer.relu)
              for layer in layers]
    state = FitState(shared, SecureOps, cluster)
    setup = time.perf_counter() - start
    logging.info('encrypted training: %d parties, %d records shared in %.1f s', cluster.num_parties,
                 split.x_train.shape[0], setup)
    history = fit(state, split, config, progress, on_epoch)
    return TrainingRun(history, SharedModel(state.layers, cluster), setup, traffic)
