"""The DP / non-DP training run behind `train.py`: train, checkpoint, resume, record, plot.

A run lives in its output directory: `config.json` (what was asked),
`history.json` (one record per finished epoch, rewritten after each epoch),
`backup/` (Keras `BackupAndRestore` checkpoint of model, optimizer and epoch)
and `metrics.json` (final figures). `resume=True` continues from the last
finished epoch; the ε callback counts absolute epochs, so ε continues correctly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf
from absl import logging

from tfpriv.data import Dataset, load_dataset
from tfpriv.data.scatter import scatter_dataset
from tfpriv.dp.augmult import AugmultModel
from tfpriv.dp.callbacks import WeightAverage
from tfpriv.dp.keras import PrivateTraining, make_private
from tfpriv.model import SCATTERNET_MODELS, build_model
from tfpriv.errors import ResumeMismatch

# Config fields that must match for --resume to continue a run. `epochs` (with num_train
# and batch_size: the planned total steps) is one: σ calibrated for --target-epsilon depends
# on it, and composing steps of two different σ under one σ's formula under-reports ε.
RESUME_KEYS = ('model', 'optimizer', 'learning_rate', 'batch_size', 'epochs', 'dp', 'l2_norm_clip',
               'noise_multiplier', 'delta', 'target_epsilon', 'dataset', 'activation', 'clipping',
               'sampling', 'num_train', 'seed', 'lr_schedule', 'momentum', 'ema_decay', 'augmult')
LR_SCHEDULES = ('constant', 'cosine')


@dataclasses.dataclass
class TrainConfig:
    """One training run (the train.py flags)."""

    model: str = 'mlp'
    optimizer: str = 'sgd'
    learning_rate: float = 0.1
    epochs: int = 15
    batch_size: int = 32
    dp: bool = True
    l2_norm_clip: float = 0.9
    noise_multiplier: float = 0.9
    delta: Optional[float] = None
    target_epsilon: Optional[float] = None
    seed: int = 0
    dataset: str = 'mnist'
    activation: str = 'relu'
    clipping: str = 'auto'
    sampling: str = 'poisson'
    num_train: Optional[int] = None
    num_test: Optional[int] = None
    lr_schedule: str = 'constant'
    momentum: float = 0.0
    ema_decay: Optional[float] = None
    augmult: int = 1
    out: str = 'runs/default'
    resume: bool = False
    verbose: int = 1

    @property
    def tag(self) -> str:
        return f"{self.model}_{'dp' if self.dp else 'no-dp'}"



class _HistoryLog(tf.keras.callbacks.Callback):
    """Writes the per-epoch logs to `history.json` after every epoch (atomic replace)."""

    def __init__(self, path: str, previous: List[Dict[str, float]]):
        super().__init__()
        self.path = path
        self.records = previous

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, float]] = None) -> None:
        record = {'epoch': epoch + 1, 'time': time.time()}
        # TF Privacy's `privatized_loss` is not the training loss; keep Keras's own.
        record.update({k: float(v) for k, v in (logs or {}).items() if k != 'privatized_loss'})
        self.records = [r for r in self.records if r['epoch'] <= epoch] + [record]
        _write_json(self.path, self.records)


def _write_json(path: str, obj: Any) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _read_json(path: str, default: Any) -> Any:
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def _prepare_dir(config: TrainConfig) -> List[Dict[str, float]]:
    """Creates or checks the run directory; returns the epochs already recorded."""
    os.makedirs(config.out, exist_ok=True)
    config_path = os.path.join(config.out, 'config.json')
    wanted = {k: getattr(config, k) for k in RESUME_KEYS}
    if config.resume and os.path.exists(config_path):
        saved = _read_json(config_path, {})
        diff = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
        if diff:
            raise ResumeMismatch(f'--resume: {config.out} holds a run with other settings '
                                 f'(saved, asked): {diff}')
        return _read_json(os.path.join(config.out, 'history.json'), [])
    for stale in ('backup', 'history.json', 'metrics.json'):
        path = os.path.join(config.out, stale)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    _write_json(config_path, wanted)
    return []


def _history(records: List[Dict[str, float]]) -> Dict[str, List[float]]:
    keys = [k for k in records[0] if k not in ('epoch', 'time')] if records else []
    return {k: [r[k] for r in records if k in r] for k in keys}


@dataclasses.dataclass
class PrivacyReport:
    """What the DP-SGD run spent: ε (RDP; PLD for Poisson sampling only) at δ, and how."""

    epsilon: float
    epsilon_pld: Optional[float]
    delta: float
    noise_multiplier: float
    clipping: str
    sampling: str
    sampling_probability: float


@dataclasses.dataclass
class TrainResult:
    """A finished run: JSON-able figures (`metrics()`), and the trained Keras model apart."""

    config: TrainConfig
    model: tf.keras.Model
    num_train: int
    num_test: int
    epochs_completed: int
    history: Dict[str, List[float]]
    test_accuracy: float
    test_loss: float
    train_seconds_this_session: float
    privacy: Optional[PrivacyReport] = None

    def metrics(self) -> Dict[str, Any]:
        """Everything but the model, as written to `metrics.json` (privacy fields at top level)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ('model', 'privacy', 'config')}
        out['config'] = dataclasses.asdict(self.config)
        if self.privacy is not None:
            out.update(dataclasses.asdict(self.privacy))
        return out


def load_data(model: str, dataset: str = 'mnist', num_train: Optional[int] = None,
              num_test: Optional[int] = None) -> Dataset:
    """The data `model` trains on: the first `num_train` / `num_test` examples of `dataset`, as
    scattering features for the ScatterNet models (`tfpriv.data.scatter`, cached)."""
    data = load_dataset(dataset).subset(num_train, num_test)
    return scatter_dataset(data) if model in SCATTERNET_MODELS else data


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> tf.keras.optimizers.Optimizer:
    """SGD (with `config.momentum`) or Adam at `config.learning_rate`, constant or cosine-decayed.

    `cosine`: η_t = η (1 + cos(π t / T)) / 2 over the T = epochs x steps_per_epoch steps
    (Loshchilov & Hutter 2017, no restarts), the schedule large-batch DP-SGD uses
    (De et al. 2022; Sander et al. 2023). The schedule is data-independent, so it
    costs no privacy.
    """
    learning_rate = config.learning_rate
    if config.lr_schedule == 'cosine':
        learning_rate = tf.keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
    if config.optimizer == 'sgd':
        return tf.keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum)
    return tf.keras.optimizers.Adam(learning_rate=learning_rate)


def _build(config: TrainConfig, data: Dataset) -> Tuple[tf.keras.Model, Optional[PrivateTraining]]:
    """The model (wrapped by make_private under DP), compiled."""
    # DP on the fast path needs a model without Dropout (see tfpriv.dp.clipping); the
    # noise of DP-SGD already regularizes, so models drop it under DP.
    dropout = 0.0 if config.dp and config.clipping in ('auto', 'fast') else None
    model = build_model(config.model, data.input_shape, data.num_classes,
                        activation=config.activation, dropout=dropout)
    if not config.dp:
        model.compile(optimizer=make_optimizer(config, math.ceil(data.num_train / config.batch_size)),
                      metrics=['accuracy'],
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model, None
    private = make_private(
        model, num_examples=data.num_train, batch_size=config.batch_size,
        l2_norm_clip=config.l2_norm_clip,
        noise_multiplier=None if config.target_epsilon else config.noise_multiplier,
        target_epsilon=config.target_epsilon, epochs=config.epochs, delta=config.delta,
        optimizer=config.optimizer, learning_rate=config.learning_rate,
        clipping='vectorized' if config.augmult > 1 and config.clipping == 'auto' else config.clipping,
        sampling=config.sampling)
    if config.augmult > 1:  # K shifted views per example, averaged before clipping
        private = dataclasses.replace(private, model=AugmultModel.wrap(private.model, config.augmult))
    private.model.compile(optimizer=make_optimizer(config, private.steps_per_epoch),
                          loss=private.loss, metrics=['accuracy'])
    logging.info('DP-SGD: clipping path %s, %s sampling, noise multiplier %.4f, q = %.5f',
                 private.clipping, private.sampling, private.noise_multiplier,
                 private.sampling_probability)
    return private.model, private


def _privacy(private: PrivateTraining, epochs_done: int) -> PrivacyReport:
    pld = private.epsilon(epochs_done, 'pld') if private.sampling == 'poisson' else None
    return PrivacyReport(private.epsilon(epochs_done), pld, private.delta, private.noise_multiplier,
                         private.clipping, private.sampling, private.sampling_probability)


def run_seed(seed: int, epochs_done: int) -> int:
    """The global seed of a run that starts after `epochs_done` completed epochs.

    `seed` itself for a fresh run. TensorFlow's random streams (the DP noise, the Poisson
    batches, dropout) restart with the process, so a resumed run seeded alike would replay
    the noise and batches of the first epochs in the epochs it adds: noise used twice, and
    samples repeated, where DP-SGD's analysis needs fresh ones at every step. A resumed run
    is seeded with SHA-256(seed, epochs_done) instead: reproducible, and distinct per resume
    point (a run killed twice at the same epoch redraws what it had drawn after that epoch,
    but those steps never reached the saved model).
    """
    if epochs_done == 0:
        return seed
    digest = hashlib.sha256(f'tfpriv resume {seed} {epochs_done}'.encode()).digest()
    return int.from_bytes(digest[:4], 'little') & 0x7FFFFFFF


def train(config: TrainConfig, data: Dataset, extra_callbacks=()) -> TrainResult:
    """Trains `config.model` on `data` (with DP-SGD when `config.dp`); writes `metrics.json`.

    Under DP the batches come from `PrivateTraining.dataset` (Poisson by
    default, `config.sampling`), so ε describes what was trained.
    """
    previous = _prepare_dir(config)
    tf.keras.utils.set_random_seed(run_seed(config.seed, len(previous)))
    model, private = _build(config, data)
    history_path = os.path.join(config.out, 'history.json')
    callbacks = [private.epsilon_callback] if private else []
    callbacks += [tf.keras.callbacks.BackupAndRestore(os.path.join(config.out, 'backup'),
                                                      delete_checkpoint=False),
                  _HistoryLog(history_path, previous), *extra_callbacks]
    if config.ema_decay:  # last, so the model ends with the averaged weights
        callbacks.append(WeightAverage(config.ema_decay))
    if private:
        feed = {'x': private.dataset(data.x_train, data.y_train)}
    else:
        feed = {'x': data.x_train, 'y': data.y_train, 'batch_size': config.batch_size}
    start = time.time()
    model.fit(**feed, epochs=config.epochs, validation_data=(data.x_test, data.y_test),
              callbacks=callbacks, verbose=config.verbose)
    seconds = time.time() - start
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0)
    records = _read_json(history_path, [])
    result = TrainResult(config, model, data.num_train, len(data.x_test), len(records),
                         _history(records), float(test_accuracy), float(test_loss), seconds,
                         _privacy(private, len(records)) if private else None)
    _write_json(os.path.join(config.out, 'metrics.json'), result.metrics())
    return result
