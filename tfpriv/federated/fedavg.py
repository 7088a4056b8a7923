"""Federated averaging on TensorFlow Federated with the Keras models of `tfpriv.model`.

FedAvg (McMahan, Moore, Ramage, Hampson, Agüera y Arcas, "Communication-
Efficient Learning of Deep Networks from Decentralized Data", AISTATS 2017,
Algorithm 1): each round the server samples m = max(1, round(C K)) of the K
clients uniformly without replacement; each runs E epochs of the client
optimizer on batches of B and returns Δ_k = w_t - w_k; the server averages the
deltas weighted by example counts n_k (Σ n_k Δ_k / Σ n_k) and applies its own
optimizer to that pseudo-gradient (server SGD with rate 1 is plain FedAvg;
momentum, Adam, Yogi and Adagrad are the adaptive federated optimizers of
Reddi et al., "Adaptive Federated Optimization", ICLR 2021).

Four round implementations share one loop (`train`):

* plain: `tff.learning.algorithms.build_weighted_fed_avg`;
* DP-FedAvg: `build_unweighted_fed_avg` with TFF's DP aggregator
  (`dp_fedavg`; clipped updates are averaged with equal weights, as DP needs);
* secure aggregation: `secure.SecureRound` (TFF client work, a
  `SecureAggregator`, TFF's server finalizer);
* distributed DP (`dp_mode='distributed'`): `secure.SecureRound` whose aggregator
  is `distributed_dp`'s DDGauss around the `secure_agg` protocol (`plain` for
  none): each client clips, quantizes and adds its share of discrete Gaussian
  noise before secure aggregation, so the server only sees the noised sum.

Client sampling (`client_sampling`): `fixed` (the default) draws m = round(C K)
clients uniformly without replacement each round, accounted under replace-one
adjacency; `poisson` lets each client join independently with probability C
(a varying count; DP divides by the expected count C K), accounted under
add/remove-one with `PoissonSampled(C, Gaussian(σ))`, a much smaller ε for the
same σ (see `tfpriv.dp.accounting`). Distributed DP needs `fixed`: its noise
shares are sized for a known number of clients.

The client sample of every round and each client's shuffle seed are drawn up
front from one `RandomSource(seed)`, so a resumed run sees the same clients.
The global model is evaluated on the central test set after every round with
Keras. The server state is checkpointed after every round (`checkpoint`).

Optionally (`model_ema` = β > 0) the server also keeps an exponential moving
average of the global models, v_t = β v_{t-1} + (1 - β) w_t with v_1 = w_1
(Polyak-Ruppert iterate averaging; Polyak & Juditsky 1992), and evaluates it
too (`ema_val_accuracy`). Training never reads it: it damps the round-to-round
swings that sampling 10 clients of 2 labels each causes on non-IID splits (a
smoother candidate for deployment, though it lags behind the global model
while that still improves). It is checkpointed with the state.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from absl import logging

from tfpriv import checks
from tfpriv.crypto.secagg import AggregationStats
from tfpriv.data.base import Dataset
from tfpriv.dp import accounting
from tfpriv.errors import CheckpointExists, DropoutError
from tfpriv.federated import checkpoint, distributed_dp, dp_fedavg, dropouts, partition, secure
from tfpriv.federated.runtime import tff_context
from tfpriv.progress import Progress, report
from tfpriv.rng import RandomSource

CLIENT_OPTIMIZERS = ('sgd', 'adam')
CLIENT_SAMPLINGS = ('fixed', 'poisson')
DP_MODES = ('central', 'distributed')
_ACCOUNTING = {
    ('central', 'fixed'): 'RDP, SampledWithoutReplacement(K, m, Gaussian(σ/2)), replace-one',
    ('central', 'poisson'): 'RDP, PoissonSampled(C, Gaussian(σ)), add/remove-one',
    ('distributed', 'fixed'): 'RDP, SampledWithoutReplacement(K, k, Gaussian(σ_eff/2)), '
                              'replace-one; σ_eff of the k discrete noise shares summed '
                              '(DDGauss; k = m without dropouts)'}
SERVER_OPTIMIZERS = ('sgd', 'sgdm', 'adam', 'yogi', 'adagrad')


@dataclasses.dataclass
class FedConfig:
    """One federated run. `clients=None` only for the `per-example` partition."""

    model: str = 'mlp'
    activation: str = 'relu'
    dropout: Optional[float] = None
    clients: Optional[int] = 100
    rounds: int = 10
    client_fraction: float = 0.1
    local_epochs: int = 1
    batch_size: int = 10
    partition: str = 'iid'
    alpha: float = 0.5
    shards_per_client: int = 2
    client_optimizer: str = 'sgd'
    client_learning_rate: float = 0.1
    client_learning_rate_decay: float = 1.0
    server_optimizer: str = 'sgd'
    server_learning_rate: float = 1.0
    server_momentum: float = 0.9
    model_ema: float = 0.0
    dp: bool = False
    l2_norm_clip: float = 0.9
    noise_multiplier: float = 0.9
    adaptive_clipping: bool = False
    target_quantile: float = 0.5
    delta: Optional[float] = None
    secure_agg: str = 'none'
    secagg_bound: Optional[float] = None
    secagg_precision: Optional[int] = None
    secagg_neighbours: Optional[int] = None
    client_sampling: str = 'fixed'
    dp_mode: str = 'central'
    dp_bits: int = 16
    dropout_rate: float = 0.0
    workers: Optional[List[str]] = None
    insecure_workers: bool = False
    seed: Optional[int] = 0
    out: Optional[str] = None
    resume: bool = False
    overwrite: bool = False

    def fingerprint(self) -> Dict[str, object]:
        """Settings a resumed run must share with the checkpointed one."""
        skip = {'rounds', 'out', 'resume', 'overwrite', 'workers', 'insecure_workers'}
        skip.update(k for k in ('secagg_bound', 'secagg_precision', 'secagg_neighbours')
                    if getattr(self, k) is None)
        for option, default in (('client_learning_rate_decay', 1.0), ('model_ema', 0.0),
                                ('client_sampling', 'fixed'), ('dp_mode', 'central'),
                                ('dp_bits', 16), ('dropout_rate', 0.0)):
            if getattr(self, option) == default:  # checkpoints from before the option resume
                skip.add(option)
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


def clients_per_round(fraction: float, num_clients: int) -> int:
    """m = max(1, round(C K))."""
    return max(1, int(round(fraction * num_clients)))


def sample_clients(num_clients: int, per_round: int, rounds: int,
                   rng: RandomSource) -> np.ndarray:
    """(rounds, m) client ids, each row a uniform sample without replacement."""
    return np.stack([partition.permutation(rng, num_clients)[:per_round] for _ in range(rounds)])


def poisson_clients(num_clients: int, fraction: float, rounds: int,
                    rng: RandomSource) -> List[np.ndarray]:
    """Per round, the ids of the clients that join: each independently with probability C.

    Poisson client sampling (McMahan et al. 2018, DP-FedAvg): the count varies
    (Binomial(K, C), mean C K); its accounting is add/remove-one
    (`tfpriv.dp.accounting.poisson_fedavg_event`).
    """
    return [np.flatnonzero(rng.uniform01(num_clients) < fraction) for _ in range(rounds)]


def schedule_clients(config: 'FedConfig', num_clients: int, rng: RandomSource):
    """The client schedule and per-client shuffle seeds of every round (`client_sampling`)."""
    if config.client_sampling == 'poisson':
        schedule = poisson_clients(num_clients, config.client_fraction, config.rounds, rng)
        seeds = [(rng.uint64(len(ids)) % np.uint64(2**31)).astype(np.int64) for ids in schedule]
        return schedule, seeds
    schedule = sample_clients(num_clients, clients_per_round(config.client_fraction, num_clients),
                              config.rounds, rng)
    return schedule, (rng.uint64(schedule.shape) % np.uint64(2**31)).astype(np.int64)


def expected_clients(config: 'FedConfig', num_clients: int) -> float:
    """The clients per round DP divides by: m (fixed-size) or the expected count C K (Poisson)."""
    if config.client_sampling == 'poisson':
        return config.client_fraction * num_clients
    return float(clients_per_round(config.client_fraction, num_clients))


def build_optimizer(name: str, learning_rate: float, momentum: float = 0.9):
    """A `tff.learning.optimizers` optimizer by name."""
    import tensorflow_federated as tff
    opts = tff.learning.optimizers
    builders = {'sgd': lambda: opts.build_sgdm(learning_rate),
                'sgdm': lambda: opts.build_sgdm(learning_rate, momentum=momentum),
                'adam': lambda: opts.build_adam(learning_rate),
                'yogi': lambda: opts.build_yogi(learning_rate),
                'adagrad': lambda: opts.build_adagrad(learning_rate)}
    if name not in builders:
        raise ValueError(f'unknown optimizer {name!r}; choose one of {tuple(builders)}')
    return builders[name]()


def keras_model(config: FedConfig, data: Dataset, compiled: bool = False):
    """The Keras model of the run (compiled for central evaluation if asked).

    With `config.seed` set, Keras is seeded first (`tf.keras.utils.set_random_seed`):
    inside TFF's tracing this fixes the initial weights (Keras initializers draw their
    stateless seeds from it) and the graph-level seed of the Dropout ops, so a run is
    repeatable. The secure aggregators' and TFF's DP noise are not affected.
    """
    import tensorflow as tf
    from tfpriv.model import build_model
    if config.seed is not None:
        tf.keras.utils.set_random_seed(config.seed)
    model = build_model(config.model, data.input_shape, data.num_classes,
                        activation=config.activation, dropout=config.dropout)
    if compiled:
        model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=['accuracy'])
    return model


def make_model_fn(config: FedConfig, data: Dataset, element_spec):
    """A no-argument function returning a fresh `tff.learning` model (TFF requires fresh ones)."""
    import tensorflow as tf
    import tensorflow_federated as tff

    def model_fn():
        return tff.learning.models.from_keras_model(
            keras_model(config, data), input_spec=element_spec,
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')])

    return model_fn


class _LearningProcessRound:
    """Adapter giving a `tff.learning` process the interface of `secure.SecureRound`."""

    def __init__(self, process):
        self._process = process

    def initialize(self):
        return self._process.initialize()

    def get_model_weights(self, state):
        return self._process.get_model_weights(state)

    def next(self, state, client_data, dropped: Optional[Sequence[bool]] = None):
        """One round over the clients that did not drop (TFF never hears from the others)."""
        if dropped is not None:
            client_data = [d for d, gone in zip(client_data, dropped) if not gone]
        output = self._process.next(state, client_data)
        metrics = dict(output.metrics['client_work']['train'])
        metrics.update(_scalars(output.metrics.get('aggregator', {}), 'aggregator'))
        return output.state, metrics, None


def _scalars(nest, prefix: str) -> Dict[str, float]:
    """Flat {path: float} of the scalar leaves of a metrics nest."""
    out = {}
    items = nest.items() if hasattr(nest, 'items') else []
    for key, value in items:
        name = f'{prefix}/{key}'
        if hasattr(value, 'items'):
            out.update(_scalars(value, name))
        elif np.ndim(value) == 0:
            out[name] = float(value)
    return out


def build_round(config: FedConfig, model_fn, element_spec, num_clients: int,
                rng: Optional[RandomSource] = None):
    """The round implementation for the config: plain, DP-FedAvg or secure aggregation.

    `rng` is the secure aggregator's randomness: None (the OS CSPRNG) except in tests.
    """
    import tensorflow as tf
    import tensorflow_federated as tff
    client_optimizer = build_optimizer(config.client_optimizer, config.client_learning_rate)
    server_optimizer = build_optimizer(config.server_optimizer, config.server_learning_rate, config.server_momentum)
    if config.client_learning_rate_decay != 1.0 and (config.dp or config.secure_agg != 'none'):
        raise ValueError('a client learning-rate decay is only supported for plain FedAvg '
                         '(without --dp and --secure-agg)')
    if config.dp and config.dp_mode == 'distributed':
        return secure.SecureRound(model_fn, client_optimizer, server_optimizer,
                                  _distributed_aggregator(config, model_fn, num_clients, rng),
                                  element_spec)
    if config.secure_agg != 'none':
        if config.dp:
            raise ValueError("dp with secure_agg needs dp_mode='distributed' (TFF's central DP "
                             'aggregator cannot run inside a Python secure-aggregation protocol)')
        return secure.SecureRound(model_fn, client_optimizer, server_optimizer,
                                  secure.make_aggregator(
                                      config.secure_agg, rng,
                                      clients_per_round(config.client_fraction, num_clients),
                                      bound=config.secagg_bound, precision=config.secagg_precision,
                                      neighbours=config.secagg_neighbours),
                                  element_spec)
    if config.dp:
        factory = dp_fedavg.aggregator_factory(
            expected_clients(config, num_clients), config.noise_multiplier,
            config.l2_norm_clip, config.adaptive_clipping, config.target_quantile)
        return _LearningProcessRound(tff.learning.algorithms.build_unweighted_fed_avg(
            model_fn, client_optimizer, server_optimizer, model_aggregator=factory))
    if config.client_learning_rate_decay != 1.0:
        # Round r's clients use client_learning_rate * decay^r; the round counter lives in the
        # server state, so a resumed run continues the schedule.
        return _LearningProcessRound(
            tff.learning.algorithms.build_weighted_fed_avg_with_optimizer_schedule(
                model_fn, lambda r: config.client_learning_rate * tf.pow(config.client_learning_rate_decay,
                                                              tf.cast(r, tf.float32)),
                lambda lr: build_optimizer(config.client_optimizer, lr), server_optimizer))
    return _LearningProcessRound(tff.learning.algorithms.build_weighted_fed_avg(
        model_fn, client_optimizer, server_optimizer))


def check_dp(config: FedConfig) -> None:
    """Validates the sampling and DP-mode options (ValueError naming the option)."""
    checks.choice('client_sampling', config.client_sampling, CLIENT_SAMPLINGS)
    checks.choice('dp_mode', config.dp_mode, DP_MODES)
    checks.number('dropout_rate', config.dropout_rate, minimum=0, maximum=1)
    if config.dropout_rate >= 1:
        raise ValueError(f'dropout_rate must be in [0, 1), got {config.dropout_rate}')
    if config.dp and config.dp_mode == 'distributed':
        checks.integer('dp_bits', config.dp_bits, minimum=2, maximum=24)
        if config.client_sampling != 'fixed':
            raise ValueError("dp_mode='distributed' needs client_sampling='fixed': the clients' "
                             'noise shares are sized for a known number of clients per round')
        if config.adaptive_clipping:
            raise ValueError("dp_mode='distributed' does not support adaptive_clipping")


def _distributed_aggregator(config: FedConfig, model_fn, num_clients: int,
                            rng: Optional[RandomSource]) -> distributed_dp.DistributedDpAggregator:
    """DDGauss (`distributed_dp`) over `secure_agg` (`plain` for none), sized for the model."""
    import tensorflow_federated as tff
    weights = tff.learning.models.ModelWeights.from_model(model_fn())
    dim = sum(int(np.prod(w.shape)) for w in weights.trainable)
    return distributed_dp.make_aggregator(
        'plain' if config.secure_agg == 'none' else config.secure_agg, config.l2_norm_clip,
        config.noise_multiplier, clients_per_round(config.client_fraction, num_clients), dim,
        config.dp_bits, rng, rotation_seed=config.seed or 0, neighbours=config.secagg_neighbours)


def _distributed_epsilon(run: 'FedState', contributors: Sequence[int]) -> float:
    """ε after the rounds so far of distributed DP, from the noise shares each round's sum
    actually held (`contributors`: k_r, fewer than m in a round with dropouts)."""
    params, counts = run.rounds.aggregator.params, [int(k) for k in contributors]
    return accounting.ddgauss_fedavg_epsilons(
        run.num_clients, counts, [params.noise_multiplier_with(k) for k in counts], run.delta)[-1]


@dataclasses.dataclass
class FedResult:
    """What `train` returns: scalar, JSON-able metrics and the per-round `history`.

    `model` is the Keras model holding the final global weights (not part of
    `metrics()`); `ema_test_accuracy` is set with `model_ema`, and `epsilon`,
    `delta`, `accounting` with DP.
    """

    history: Dict[str, List[float]]
    rounds_done: int
    num_clients: int
    clients_per_round: int
    test_accuracy: Optional[float]
    ema_test_accuracy: Optional[float] = None
    epsilon: Optional[float] = None
    delta: Optional[float] = None
    accounting: Optional[str] = None
    model: Any = dataclasses.field(default=None, repr=False, compare=False)

    def metrics(self) -> Dict[str, Any]:
        """The JSON-able fields (no model), leaving out the optional ones that are unset."""
        optional = ('ema_test_accuracy', 'epsilon', 'delta', 'accounting')
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != 'model' and not (f.name in optional and getattr(self, f.name) is None)}


@dataclasses.dataclass
class FedState:
    """The state the stages of `train` pass along (one run)."""

    config: FedConfig
    data: Dataset
    parts: List[np.ndarray]
    schedule: Sequence[np.ndarray]  # per round, the client ids (a (rounds, m) array if fixed)
    shuffle_seeds: Sequence[np.ndarray]  # per round, the clients' shuffle seeds
    dropped: Optional[List[np.ndarray]]  # per round, which sampled clients drop (dropout_rate)
    element_spec: Any
    delta: float
    epsilons: Optional[List[float]]
    rounds: Any = None  # the round implementation (`build_round`)
    server: Any = None  # the TFF server state
    evaluator: Any = None  # compiled Keras model holding the global weights
    ema: Optional[List[np.ndarray]] = None
    start: int = 0
    history: Dict[str, list] = dataclasses.field(default_factory=dict)

    @property
    def num_clients(self) -> int:
        return len(self.parts)


def _setup(config: FedConfig, data: Dataset, rng: RandomSource) -> FedState:
    """Stage 1 (no TFF): client split, the whole client schedule and shuffle seeds, DP budget.

    Raises:
      CheckpointExists: `out` holds a checkpoint and neither `resume` nor `overwrite` is set.
      DropoutError: every client sampled for some round drops (`dropout_rate`).
    """
    if config.out and not (config.resume or config.overwrite) and checkpoint.exists(config.out):
        raise CheckpointExists(f'{checkpoint.path(config.out)} exists: set resume=True to continue it '
                               'or overwrite=True to replace it')
    parts = partition.partition(config.partition, data.y_train, config.clients, rng,
                                config.alpha, config.shards_per_client)
    per_round = clients_per_round(config.client_fraction, len(parts))
    schedule, shuffle_seeds = schedule_clients(config, len(parts), rng)
    # Drawn after the schedule, and only with dropouts: runs without them keep their streams.
    dropped = dropouts.draw(schedule, config.dropout_rate, rng) if config.dropout_rate else None
    for r, mask in enumerate(dropped or []):
        if mask.size and mask.all():
            raise DropoutError(f'every client sampled for round {r + 1} drops at dropout_rate='
                             f'{config.dropout_rate}: lower it or sample more clients per round')
    element_spec = partition.client_dataset(data.x_train, data.y_train, parts[0],
                                            config.batch_size).element_spec
    delta = config.delta or dp_fedavg.default_delta(len(parts))
    central = config.dp and config.dp_mode == 'central'
    epsilons = (dp_fedavg.epsilons(len(parts), per_round, config.noise_multiplier, config.rounds,
                                   delta, config.client_sampling, config.client_fraction)
                if central else None)
    return FedState(config, data, parts, schedule, shuffle_seeds, dropped, element_spec, delta,
                    epsilons)


def _initialize(run: FedState) -> None:
    """Stage 2 (inside the TFF context): round implementation, initial server state, evaluator."""
    config = run.config
    # The seeded `rng` fixes the schedule; the protocol's shares and keys come from the
    # OS CSPRNG (build_round's default), never from a reproducible stream.
    run.rounds = build_round(config, make_model_fn(config, run.data, run.element_spec),
                             run.element_spec, run.num_clients)
    run.server = run.rounds.initialize()
    # Built after TFF traced its graphs: a Keras model made before would be invalidated.
    run.evaluator = keras_model(config, run.data, compiled=True)
    run.ema = run.evaluator.get_weights() if config.model_ema else None


def _restore(run: FedState) -> None:
    """Stage 3: with `resume`, continue from the checkpoint in `out` when there is one."""
    config = run.config
    if not (config.out and config.resume):
        return
    restored = checkpoint.load(config.out, _saved(run.server, run.ema), config.fingerprint())
    if restored is not None:
        saved, run.start, run.history = restored
        run.server, run.ema = (saved['state'], saved['ema']) if config.model_ema else (saved, None)
        logging.info('resumed from %s after %d rounds', config.out, run.start)


def _sample(run: FedState, r: int) -> list:
    """Stage 4: the datasets of round r's clients (schedule and shuffle order fixed in `_setup`)."""
    config, data = run.config, run.data
    return [partition.client_dataset(data.x_train, data.y_train, run.parts[k], config.batch_size,
                                     config.local_epochs, int(s))
            for k, s in zip(run.schedule[r], run.shuffle_seeds[r])]


def _round(run: FedState, r: int, datasets: list) -> Dict[str, float]:
    """Stage 5: one round; its row of client metrics, timing, ε and aggregation cost."""
    began = time.perf_counter()
    dropped = None if run.dropped is None else run.dropped[r]
    run.server, train_metrics, stats = run.rounds.next(run.server, datasets, dropped)
    row = {'round': r + 1, 'loss': float(train_metrics.pop('loss')),
           'accuracy': float(train_metrics.pop('accuracy')),
           'seconds': time.perf_counter() - began}
    row.update({k: float(v) for k, v in train_metrics.items()})
    if dropped is not None:
        row['dropped'] = float(np.count_nonzero(dropped))
    if run.epsilons is not None:
        row['epsilon'] = run.epsilons[r]
    if isinstance(stats, AggregationStats):
        row.update(agg_seconds=stats.seconds, bytes_per_client=stats.bytes_per_client)
        if 'contributors' in stats.extra:  # distributed DP: ε of the noise shares summed
            row['contributors'] = stats.extra['contributors']
            summed = run.history.get('contributors', [])
            # rounds checkpointed before contributors were recorded had no dropouts: m each
            summed = [float(run.rounds.aggregator.params.clients_per_round)] * (r - len(summed)) + summed
            row['epsilon'] = _distributed_epsilon(run, summed + [row['contributors']])
    return row


def _evaluate(run: FedState, r: int, row: Dict[str, float]) -> None:
    """Stage 6: central test loss/accuracy of the global model (and of its EMA) into `row`."""
    data, evaluator = run.data, run.evaluator
    run.rounds.get_model_weights(run.server).assign_weights_to(evaluator)
    row['val_loss'], row['val_accuracy'] = map(float, evaluator.evaluate(
        data.x_test, data.y_test, batch_size=1000, verbose=0))
    if run.config.model_ema:
        beta = run.config.model_ema if r else 0.0  # v_1 = w_1
        current = evaluator.get_weights()
        run.ema = [beta * v + (1 - beta) * w for v, w in zip(run.ema, current)]
        evaluator.set_weights(run.ema)
        row['ema_val_loss'], row['ema_val_accuracy'] = map(float, evaluator.evaluate(
            data.x_test, data.y_test, batch_size=1000, verbose=0))
        evaluator.set_weights(current)


def _checkpoint(run: FedState, row: Dict[str, float]) -> None:
    """Stage 7: append `row` to the history and checkpoint the round (atomically) in `out`."""
    for key, value in row.items():
        run.history.setdefault(key, []).append(value)
    if run.config.out:
        checkpoint.save(run.config.out, _saved(run.server, run.ema), int(row['round']),
                        run.history, run.config.fingerprint())


def _finish(run: FedState) -> FedResult:
    """Stage 8: the typed result of the run."""
    config, history = run.config, run.history

    def last(key: str) -> Optional[float]:
        return history[key][-1] if history else None

    result = FedResult(history=history, rounds_done=len(history.get('round', [])),
                       num_clients=run.num_clients,
                       clients_per_round=clients_per_round(config.client_fraction, run.num_clients),
                       test_accuracy=last('val_accuracy'), model=run.evaluator)
    if config.model_ema and history:
        result.ema_test_accuracy = last('ema_val_accuracy')
    if config.dp:
        result.epsilon, result.delta = (last('epsilon') or 0.0), run.delta
        result.accounting = _ACCOUNTING[(config.dp_mode, config.client_sampling)]
    return result


def train(config: FedConfig, data: Dataset, rng: Optional[RandomSource] = None,
          progress: Optional[Progress] = None) -> FedResult:
    """Runs (or resumes) the federated training of `config` on `data`, stage by stage.

    Stages (after Flower's `SecAggPlusWorkflow`): setup, initialize, restore, then per round
    sample, round, evaluate, checkpoint; finish. `history` holds per round: loss, accuracy
    (train, from the clients), val_loss, val_accuracy (central test set), seconds, and epsilon
    for DP or agg_seconds, bytes_per_client for secure aggregation, ema_val_loss,
    ema_val_accuracy with `model_ema`. `rng` (default `RandomSource(config.seed)`) draws the
    client split, schedule and shuffle seeds; `config.seed` also seeds Keras (`keras_model`).
    `progress` (`tfpriv.progress`) hears ('round', rounds done, rounds) with the round's test
    accuracy and ε.
    """
    if not 0.0 <= config.model_ema < 1.0:
        raise ValueError(f'model_ema must be in [0, 1) (0: off), got {config.model_ema}')
    check_dp(config)
    run = _setup(config, data, rng or RandomSource(
        config.seed, "FedAvg's client split and schedule (seed; train.py --seed)"))
    report(progress, 'round', 0, config.rounds)
    with tff_context(config.workers, insecure=config.insecure_workers):
        _initialize(run)
        _restore(run)
        report(progress, 'round', run.start, config.rounds)
        for r in range(run.start, config.rounds):
            row = _round(run, r, _sample(run, r))
            _evaluate(run, r, row)
            _checkpoint(run, row)
            report(progress, 'round', r + 1, config.rounds,
                   {k: row[k] for k in ('loss', 'val_accuracy', 'epsilon') if k in row})
    return _finish(run)


def _saved(state, ema: Optional[List[np.ndarray]]):
    """What a checkpoint holds: the server state, with the model EMA when there is one."""
    return state if ema is None else {'state': state, 'ema': ema}


def rounds_to_accuracy(history: Dict[str, Sequence[float]], target: float,
                       key: str = 'val_accuracy') -> Optional[int]:
    """First round whose central test accuracy (`key`) reaches `target` (None if never)."""
    for r, accuracy in zip(history.get('round', []), history.get(key, [])):
        if accuracy >= target:
            return int(r)
    return None


def default_out(config: FedConfig, dataset: str, root: str = 'runs') -> str:
    """runs/fedavg_<dataset>_<model>_<partition>[_poisson][_dp|_ddp][_<secure>]."""
    tag = f'fedavg_{dataset}_{config.model}_{config.partition}'
    tag += '_poisson' if config.client_sampling == 'poisson' else ''
    tag += ('_ddp' if config.dp_mode == 'distributed' else '_dp') if config.dp else ''
    tag += f'_{config.secure_agg}' if config.secure_agg != 'none' else ''
    return os.path.join(root, tag)
