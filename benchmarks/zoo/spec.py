"""What the zoo benchmark runs: model names, their data, loss and the shared DP settings.

NumPy only (imported by both the Keras worker in .venv and the Opacus worker in
.venv-bench). `prepare_data` is called once by the runner (it needs tfpriv's data
loaders) and writes every array both frameworks train on to one .npz file, so the two
sides see the same examples in the same order.

Data:
- `mnist`: real MNIST (`tfpriv.data.load_dataset('mnist')`), (28, 28, 1) floats in [0, 1].
- `tokens`: a deterministic synthetic text task derived from MNIST: each pixel row is
  cut into 7 groups of 4 pixels, a group is "on" when its mean exceeds 0.25, and the 7
  bits are one token (vocabulary 128); 28 tokens per image, the label is the digit.
  Not natural language: a token task of the same shape.
- `credit`: UCI Credit Approval (`tfpriv.data.load_credit`), 42 features; labels
  approved yes/no for the binary model. The regression target is the standardized
  age column (feature 1, A2), predicted from the 41 others (MSE).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Dict, Iterator, Tuple

import numpy as np

BATCH_SIZE = 256
L2_NORM_CLIP = 1.0
NOISE_MULTIPLIER = 1.1
LEARNING_RATE = 1e-3          # Adam, both frameworks, DP and non-DP
NUM_TEST = 2000               # test examples the accuracy / MSE is measured on
TF_INTRA_OP_THREADS, TF_INTER_OP_THREADS = 2, 1
TORCH_THREADS, TORCH_INTEROP_THREADS = 2, 1
VOCAB, SEQUENCE_LENGTH = 128, 28
AGE_COLUMN = 1


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """One zoo entry: its data set, task and a one-line description for the table."""

    name: str
    data: str           # 'mnist' | 'tokens' | 'credit'
    task: str           # 'multiclass' | 'two_output' | 'binary' | 'regression'
    description: str


MODELS: Dict[str, ZooModel] = {m.name: m for m in (
    ZooModel('mlp', 'mnist', 'multiclass', 'Flatten-Dense(128)-Dense(10), sparse CE'),
    ZooModel('convnet', 'mnist', 'multiclass',
             'keras.io MNIST convnet + Dropout(0.5), softmax, one-hot CE'),
    ZooModel('convnet_nodrop', 'mnist', 'multiclass', 'keras.io MNIST convnet, no Dropout'),
    ZooModel('groupnorm_cnn', 'mnist', 'multiclass', 'Conv-GroupNorm(8) x2, sparse CE'),
    ZooModel('subclassed_cnn', 'mnist', 'multiclass', 'subclassed tf.keras.Model CNN'),
    ZooModel('two_output', 'mnist', 'two_output',
             'CNN, heads digit (CE) + parity (sigmoid BCE), dict labels'),
    ZooModel('embedding_gap', 'tokens', 'multiclass', 'Embedding(32)-GlobalAvgPool-Dense'),
    ZooModel('conv1d_text', 'tokens', 'multiclass',
             'Embedding-Dropout-Conv1D(64,7,s3) x2-GlobalMaxPool'),
    ZooModel('lstm_text', 'tokens', 'multiclass', 'Embedding(32)-LSTM(64)-Dense'),
    ZooModel('bigru_text', 'tokens', 'multiclass', 'Embedding(32)-Bidirectional(GRU(32))'),
    ZooModel('binary_credit', 'credit', 'binary', "Dense(32)-Dense(1,'sigmoid'), BCE"),
    ZooModel('regression_credit', 'credit', 'regression', 'Dense(64)x2-Dense(1), MSE'),
)}


def tokens_from_images(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28[, 1]) images in [0, 1] -> (N, 28) int tokens (see the module docstring)."""
    on = images.reshape(len(images), 28, 7, 4).mean(axis=-1) > 0.25   # (N, row, group)
    return (on * (1 << np.arange(7))).sum(axis=-1).astype(np.int32)


def _credit_arrays(x: np.ndarray, y: np.ndarray, prefix: str) -> Dict[str, np.ndarray]:
    others = np.delete(x, AGE_COLUMN, axis=1)
    return {f'{prefix}_x': x, f'{prefix}_y': y.astype(np.float32),
            f'{prefix}_xr': others, f'{prefix}_yr': x[:, AGE_COLUMN].astype(np.float32)}


def prepare_data(path: str, num_train: int) -> None:
    """Writes the zoo's arrays (first `num_train` MNIST training images) to `path` (.npz)."""
    from tfpriv.data import load_dataset  # pylint: disable=import-outside-toplevel
    mnist, credit = load_dataset('mnist'), load_dataset('credit')
    arrays = {'mnist_train_x': mnist.x_train[:num_train], 'mnist_train_y': mnist.y_train[:num_train],
              'mnist_test_x': mnist.x_test[:NUM_TEST], 'mnist_test_y': mnist.y_test[:NUM_TEST]}
    arrays['tokens_train_x'] = tokens_from_images(arrays['mnist_train_x'])
    arrays['tokens_test_x'] = tokens_from_images(arrays['mnist_test_x'])
    arrays.update(_credit_arrays(credit.x_train, credit.y_train, 'credit_train'))
    arrays.update(_credit_arrays(credit.x_test, credit.y_test, 'credit_test'))
    np.savez(path, **arrays)


def split(arrays, model: ZooModel, part: str) -> Tuple[np.ndarray, np.ndarray]:
    """(x, y) of `part` ('train' or 'test') for `model`; y are integer classes or floats."""
    if model.data == 'credit':
        suffix = 'r' if model.task == 'regression' else ''
        return arrays[f'credit_{part}_x{suffix}'], arrays[f'credit_{part}_y{suffix}']
    x = arrays[f'{model.data}_{part}_x'] if model.data == 'tokens' else arrays[f'mnist_{part}_x']
    return x, arrays[f'mnist_{part}_y']


def cycle(x: np.ndarray, y: np.ndarray) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Consecutive fixed-size batches, cycling over the training set forever."""
    for i in itertools.count():
        start = (i * BATCH_SIZE) % max(1, len(x) - BATCH_SIZE + 1)
        yield x[start:start + BATCH_SIZE], y[start:start + BATCH_SIZE]


def epoch_size(model: ZooModel, arrays) -> int:
    """Examples in one epoch: all 60,000 MNIST training images, or the credit training split."""
    return len(arrays['credit_train_y']) if model.data == 'credit' else 60000


def score(model: ZooModel, predictions: np.ndarray, y: np.ndarray) -> float:
    """Accuracy (class scores argmax, or probability > 0.5 for binary), or MSE for regression."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if model.task == 'regression':
        return float(np.mean((predictions.reshape(-1) - y) ** 2))
    if model.task == 'binary':
        return float(np.mean((predictions.reshape(-1) > 0.5) == (y > 0.5)))
    return float(np.mean(np.argmax(predictions, axis=-1) == y))


def one_line(error: BaseException, limit: int = 240) -> str:
    """`Type: first line of the message`, cut to `limit` characters (for the table)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or ['']
    # TensorFlow's graph errors open with "in user code:" and end with the actual message.
    line = lines[-1] if lines[0] == 'in user code:' else lines[0]
    prefix = f'{type(error).__name__}: '
    text = line if line.startswith(prefix) else prefix + line
    return text if len(text) <= limit else text[:limit - 3] + '...'
