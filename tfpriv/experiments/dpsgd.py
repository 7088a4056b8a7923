"""The DP / non-DP training run behind `train.py`: train, checkpoint, resume, record, plot.

A run lives in its output directory: `config.json` (what was asked),
`history.json` (one record per finished epoch, rewritten after each epoch),
`backup/` (Keras `BackupAndRestore` checkpoint of model, optimizer and epoch)
and `metrics.json` (final figures). `resume=True` continues from the last
finished epoch; the ε callback counts absolute epochs, so ε continues correctly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from typing import Any, Dict, List, Optional

import tensorflow as tf
from absl import logging

from tfpriv.data import Dataset
from tfpriv.dp.keras import default_delta, make_private
from tfpriv.model import build_model
from tfpriv.errors import ResumeMismatch

# Config fields that must match for --resume to continue a run.
RESUME_KEYS = ('model', 'optimizer', 'learning_rate', 'batch_size', 'dp', 'l2_norm_clip', 'noise_multiplier', 'delta',
               'target_epsilon', 'dataset', 'activation', 'clipping', 'num_train', 'seed')


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
    num_train: Optional[int] = None
    num_test: Optional[int] = None
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


def train(config: TrainConfig, data: Dataset, extra_callbacks=()) -> Dict[str, Any]:
    """Trains `config.model` on `data` (with DP-SGD when `config.dp`); returns the metrics.

    The metrics dict holds the config, the per-epoch history, final test
    accuracy/loss, ε (RDP and PLD) and δ when DP, the clipping path and time.
    """
    previous = _prepare_dir(config)
    tf.keras.utils.set_random_seed(config.seed)
    n = data.num_train
    delta = config.delta if config.delta is not None else default_delta(n)
    # DP on the fast path needs a model without Dropout (see make_private); the
    # noise of DP-SGD already regularizes, so models drop it under DP.
    dropout = 0.0 if config.dp and config.clipping in ('auto', 'fast') else None
    model = build_model(config.model, data.input_shape, data.num_classes,
                        activation=config.activation, dropout=dropout)
    callbacks: List[tf.keras.callbacks.Callback] = []
    private = None
    if config.dp:
        private = make_private(
            model, num_examples=n, batch_size=config.batch_size, l2_norm_clip=config.l2_norm_clip,
            noise_multiplier=None if config.target_epsilon else config.noise_multiplier,
            target_epsilon=config.target_epsilon, epochs=config.epochs, delta=delta,
            optimizer=config.optimizer, learning_rate=config.learning_rate, clipping=config.clipping)
        model, optimizer, loss = private.model, private.optimizer, private.loss
        callbacks.append(private.epsilon_callback)
        logging.info('DP-SGD: clipping path %s, noise multiplier %.4f, q = %.5f',
                     private.clipping, private.noise_multiplier, private.sampling_probability)
    else:
        optimizer = {'sgd': tf.keras.optimizers.SGD, 'adam': tf.keras.optimizers.Adam}[config.optimizer](
            learning_rate=config.learning_rate)
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss, metrics=['accuracy'])
    history_path = os.path.join(config.out, 'history.json')
    callbacks += [
        tf.keras.callbacks.BackupAndRestore(os.path.join(config.out, 'backup'),
                                            delete_checkpoint=False),
        _HistoryLog(history_path, previous),
    ]
    callbacks += list(extra_callbacks)
    start = time.time()
    model.fit(data.x_train, data.y_train, batch_size=config.batch_size, epochs=config.epochs,
              validation_data=(data.x_test, data.y_test), callbacks=callbacks,
              verbose=config.verbose)
    seconds = time.time() - start
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0)
    records = _read_json(history_path, [])
    metrics: Dict[str, Any] = {
        'config': dataclasses.asdict(config), 'num_train': n, 'num_test': len(data.x_test),
        'epochs_completed': len(records), 'history': _history(records),
        'test_accuracy': float(test_accuracy), 'test_loss': float(test_loss),
        'train_seconds_this_session': seconds, 'model': model,
    }
    if private is not None:
        epochs_done = len(records)
        metrics.update({
            'epsilon': private.epsilon(epochs_done), 'epsilon_pld': private.epsilon(epochs_done, 'pld'),
            'delta': delta, 'noise_multiplier': private.noise_multiplier,
            'clipping': private.clipping, 'sampling_probability': private.sampling_probability,
        })
    _write_json(os.path.join(config.out, 'metrics.json'),
                {k: v for k, v in metrics.items() if k != 'model' and _jsonable(v)})
    return metrics


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
