"""Encrypted inference of a trained Keras model: neither the weights nor the images are seen.

The model owner secret-shares the weights once, the data owner secret-shares
each batch of images, the n computing parties evaluate the network on shares
with the trusted dealer's help, and only the data owner receives the predicted
labels (the argmax of the logits is computed under SMPC, so even the logits
stay hidden). This is what the seed notebooks did with PySyft 0.2
(`model.fix_prec().share(alice, bob, crypto_provider=...)`).

Supported layers, walked in order from `model.layers` (a linear chain):
InputLayer, Flatten, Reshape, Dropout (identity at inference), Dense,
Conv2D (channels last, no dilation or groups), MaxPooling2D ('valid'),
ReLU / Activation('relu'), and the activations 'linear' and 'relu' inside
Dense and Conv2D. Every non-linearity is exact (bit-decomposition
comparison), so predictions differ from Keras only through fixed-point
rounding (16 fractional bits by default). `tanh`, `sigmoid` and other smooth
activations are refused with `UnsupportedLayerError` rather than approximated:
train the model with `activation='relu'` to evaluate it here.

A ReLU directly followed by a max-pool is evaluated after the pool
(max(relu(a), relu(b)) = relu(max(a, b)) exactly), which compares fewer values.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
from absl import logging

from tfpriv import checks
from tfpriv.crypto.smpc.party import Cluster, Party, Traffic
from tfpriv.crypto.smpc.ring import Encoding
from tfpriv.crypto.smpc.tensor import SharedTensor
from tfpriv.rng import RandomSource
from tfpriv.errors import UnsupportedLayerError
from tfpriv.progress import Progress, report

SUPPORTED_LAYERS = ('InputLayer', 'Flatten', 'Reshape', 'Dropout', 'Dense', 'Conv2D',
                    'MaxPooling2D', 'ReLU', 'Activation')



@dataclasses.dataclass
class Step:
    """One operation of the compiled network; `weights` are plaintext until shared."""

    kind: str  # dense, conv2d, max_pool2d, relu, reshape
    layer: str
    weights: Tuple[np.ndarray, ...] = ()
    options: Dict = dataclasses.field(default_factory=dict)


def _activation(layer) -> Optional[str]:
    """'relu' or None for the layer's activation; raises for anything else."""
    name = getattr(layer.activation, '__name__', str(layer.activation))
    if name == 'linear':
        return None
    if name == 'relu':
        return 'relu'
    raise UnsupportedLayerError(
        f'layer {layer.name!r} uses activation {name!r}, which has no exact SMPC evaluation '
        f'(only relu and linear are supported; retrain with activation="relu")')


def _weights(layer) -> Tuple[np.ndarray, ...]:
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
    return kernel, bias


def _layer_steps(layer) -> List[Step]:
    kind = type(layer).__name__
    config = layer.get_config()
    if kind in ('InputLayer', 'Dropout'):
        return []
    if kind == 'Flatten':
        return [Step('reshape', layer.name, options={'shape': (-1,)})]
    if kind == 'Reshape':
        return [Step('reshape', layer.name, options={'shape': tuple(config['target_shape'])})]
    if kind == 'Dense':
        steps = [Step('dense', layer.name, _weights(layer))]
    elif kind == 'Conv2D':
        if config.get('data_format', 'channels_last') != 'channels_last':
            raise UnsupportedLayerError(f'Conv2D {layer.name!r}: only channels_last is supported')
        if tuple(config['dilation_rate']) != (1, 1) or config.get('groups', 1) != 1:
            raise UnsupportedLayerError(f'Conv2D {layer.name!r}: dilation and groups are not '
                                        f'supported')
        steps = [Step('conv2d', layer.name, _weights(layer),
                      {'strides': tuple(config['strides']), 'padding': config['padding']})]
    elif kind == 'MaxPooling2D':
        if config['padding'] != 'valid' or config.get('data_format') == 'channels_first':
            raise UnsupportedLayerError(f'MaxPooling2D {layer.name!r}: only valid padding and '
                                        f'channels_last are supported')
        return [Step('max_pool2d', layer.name, options={'pool_size': tuple(config['pool_size']),
                                                        'strides': tuple(config['strides'])})]
    elif kind == 'ReLU':
        if config.get('max_value') is not None or config.get('negative_slope', 0) or \
                config.get('threshold', 0):
            raise UnsupportedLayerError(f'ReLU {layer.name!r}: only the plain max(x, 0) is '
                                        f'supported')
        return [Step('relu', layer.name)]
    elif kind == 'Activation':
        return [Step('relu', layer.name)] if _activation(layer) else []
    else:
        raise UnsupportedLayerError(
            f'layer {layer.name!r} of type {kind} is not supported under SMPC; supported '
            f'layers: {", ".join(SUPPORTED_LAYERS)}')
    if _activation(layer):
        steps.append(Step('relu', layer.name))
    return steps


def compile_model(model) -> List[Step]:
    """The steps that evaluate a single-input, single-output chain of supported layers."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedLayerError('only models with one input and one output are supported')
    steps: List[Step] = []
    for layer in model.layers:
        if isinstance(layer.input, (list, tuple)):
            raise UnsupportedLayerError(f'layer {layer.name!r} has several inputs; only a chain '
                                        f'of layers is supported')
        steps.extend(_layer_steps(layer))
    for i in range(len(steps) - 1):  # relu then max-pool == max-pool then relu, on fewer values
        if steps[i].kind == 'relu' and steps[i + 1].kind == 'max_pool2d':
            steps[i], steps[i + 1] = steps[i + 1], steps[i]
    return steps


class EncryptedModel:
    """A Keras model whose weights are secret-shared among a cluster's parties.

    Args:
      model: a trained `tf.keras.Model` (see the module docstring for the layers).
      cluster: the computing parties and dealer.
      model_owner: the party that shares the weights (default a new client).
    """

    def __init__(self, model, cluster: Cluster, model_owner: Optional[Party] = None):
        self.cluster = cluster
        self.input_shape = tuple(model.input_shape[1:])
        self.steps = compile_model(model)
        owner = model_owner or cluster.client('model owner')
        self._shared: List[Tuple[SharedTensor, ...]] = [
            tuple(SharedTensor.share(cluster, w, owner=owner) for w in step.weights)
            for step in self.steps]

    def logits(self, images: SharedTensor) -> SharedTensor:
        """The network's logits on shared images, still shared."""
        x = images
        for step, weights in zip(self.steps, self._shared):
            if step.kind == 'reshape':
                x = x.reshape((x.shape[0],) + step.options['shape'])
            elif step.kind == 'dense':
                x = x @ weights[0] + weights[1]
            elif step.kind == 'conv2d':
                x = x.conv2d(weights[0], **step.options) + weights[1]
            elif step.kind == 'max_pool2d':
                x = x.max_pool2d(**step.options)
            else:
                x = x.relu()
        return x

    def predict(self, images: np.ndarray, data_owner: Party) -> np.ndarray:
        """Labels for a batch of `images`, shared by and revealed to `data_owner` only."""
        images = np.asarray(images)
        if images.shape[1:] != self.input_shape:
            raise ValueError(f'the model expects images of shape {self.input_shape}, '
                             f'got a batch of shape {images.shape}')
        shared = SharedTensor.share(self.cluster, images, owner=data_owner)
        return self.logits(shared).argmax(-1).reveal(to=data_owner)


@dataclasses.dataclass
class EncryptedEvaluation:
    """Accuracy and cost of encrypted inference compared with plaintext Keras.

    Online traffic is between the parties (input sharing, computation, revealing
    the labels); offline traffic is the dealer's; model sharing happens once.
    """

    num_images: int
    num_parties: int
    precision: int
    batch_size: int
    accuracy: float
    plaintext_accuracy: float
    disagreements: int
    seconds: float
    plaintext_seconds: float
    bytes_per_image: float
    offline_bytes_per_image: float
    model_sharing_bytes: int
    rounds_per_batch: float
    by_operation: Dict[str, Traffic]
    predictions: np.ndarray = dataclasses.field(repr=False)
    plaintext_predictions: np.ndarray = dataclasses.field(repr=False)

    @property
    def images_per_second(self) -> float:
        return self.num_images / self.seconds

    @property
    def slowdown(self) -> float:
        """Encrypted time over plaintext Keras time, same images, same run."""
        return self.seconds / self.plaintext_seconds


def auto_batch_size(model, words: int = 2**20, largest: int = 1000) -> int:
    """Images per batch so that the largest per-layer tensor (a conv's im2col patch
    matrix, or an activation) has about `words` words per share: big enough to
    amortize Python and round overheads, small enough to stay cache- and memory-friendly.
    """
    per_image = int(np.prod(model.input_shape[1:]))
    for layer in model.layers:
        size = int(np.prod(layer.output_shape[1:]))
        if type(layer).__name__ == 'Conv2D':
            size = int(np.prod(layer.output_shape[1:3])) * int(np.prod(layer.kernel.shape[:3]))
        per_image = max(per_image, size)
    return int(np.clip(words // per_image, 1, largest))


def _plaintext_predictions(model, images: np.ndarray, batch_size: int) -> Tuple[np.ndarray, float]:
    """Keras's labels for `images` and the seconds they took (after a tracing warm-up)."""
    model.predict(images[:batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    labels = np.argmax(model.predict(images, batch_size=batch_size, verbose=0), axis=-1)
    return labels, time.perf_counter() - start


def _encrypted_predictions(encrypted: EncryptedModel, images: np.ndarray, batch_size: int,
                           progress: Optional[Progress] = None) -> Tuple[np.ndarray, float]:
    """SMPC labels for `images`, batch by batch, revealed to a data owner; and the seconds."""
    data_owner = encrypted.cluster.client('data owner')
    start, labels = time.perf_counter(), []
    report(progress, 'encrypted evaluation', 0, len(images))
    for i in range(0, len(images), batch_size):
        labels.append(encrypted.predict(images[i:i + batch_size], data_owner))
        report(progress, 'encrypted evaluation', min(i + batch_size, len(images)), len(images))
    return np.concatenate(labels), time.perf_counter() - start


def evaluate_encrypted(model, images: np.ndarray, labels: np.ndarray, num_parties: int = 3,
                       batch_size: Optional[int] = None, precision: int = 16,
                       rng: Optional[RandomSource] = None,
                       plaintext_batch_size: int = 1024,
                       progress: Optional[Progress] = None) -> EncryptedEvaluation:
    """Evaluates `model` on `images` under SMPC and in plaintext, and compares the two.

    Args:
      model: a trained Keras model of supported layers, logits out (a softmax is refused).
      images: test inputs, shape (N,) + model input shape.
      labels: integer labels, shape (N,).
      num_parties: computing parties (>= 2).
      batch_size: images per encrypted batch (memory grows linearly with it);
        default `auto_batch_size(model)` (1000 for the MLP, 83 for the CNN).
      precision: fixed-point fractional bits.
      rng: randomness (default the OS CSPRNG).
      plaintext_batch_size: batch size of the plaintext Keras reference run.
      progress: hears ('encrypted evaluation', images done, images) per batch (`tfpriv.progress`).

    Raises:
      UnsupportedLayerError: a layer or activation that cannot be evaluated exactly.
      ValueError: inputs of the wrong shape or a bad batch size.
    """
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f'need as many labels as images (at least one), got {len(images)} '
                         f'images and {len(labels)} labels')
    batch_size = auto_batch_size(model) if batch_size is None else batch_size
    batch_size = checks.integer('batch_size', batch_size, minimum=1)
    cluster = Cluster(num_parties, Encoding(precision), rng)
    encrypted = EncryptedModel(model, cluster)
    network = cluster.network
    model_bytes, online, offline = network.online.bytes, dataclasses.replace(network.online), \
        network.offline.bytes
    network.by_operation.clear()
    plain, plaintext_seconds = _plaintext_predictions(model, images, plaintext_batch_size)
    predicted, seconds = _encrypted_predictions(encrypted, images, batch_size, progress)
    result = EncryptedEvaluation(
        num_images=len(images), num_parties=num_parties, precision=precision,
        batch_size=batch_size, accuracy=float(np.mean(predicted == labels)),
        plaintext_accuracy=float(np.mean(plain == labels)),
        disagreements=int(np.sum(predicted != plain)), seconds=seconds,
        plaintext_seconds=plaintext_seconds,
        bytes_per_image=(network.online.bytes - online.bytes) / len(images),
        offline_bytes_per_image=(network.offline.bytes - offline) / len(images),
        model_sharing_bytes=model_bytes,
        rounds_per_batch=(network.online.rounds - online.rounds) / -(-len(images) // batch_size),
        by_operation=dict(network.by_operation), predictions=predicted,
        plaintext_predictions=plain)
    logging.info('encrypted inference: %d images, accuracy %.4f (plaintext %.4f), %d '
                 'disagreements, %.1f s (%.1fx plaintext)', result.num_images, result.accuracy,
                 result.plaintext_accuracy, result.disagreements, seconds, result.slowdown)
    return result
