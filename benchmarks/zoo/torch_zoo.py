"""PyTorch side of the zoo: the same architectures as `keras_zoo`, DP-SGD by Opacus 1.6.

    echo '["--model", "convnet", "--mode", "dp", "--data", "zoo.npz"]' |
        .venv-bench/bin/python benchmarks/zoo/torch_zoo.py     # a `worker.serve` server

DP: `PrivacyEngine().make_private(module, optimizer, data_loader, noise_multiplier=1.1,
max_grad_norm=1.0, poisson_sampling=False)`, Opacus's default `grad_sample_mode='hooks'`
(per-sample gradients from module hooks, then flat clipping), Adam lr 1e-3, fixed-size
batches of 256 as on the Keras side. Mode `ghost`: the same with `grad_sample_mode='ghost'`
and the criterion, Opacus's fast gradient clipping (per-sample norms from hooks without
materialising per-sample gradients, then a second backward pass of the reweighted loss). With DP the recurrent layers are Opacus's drop-in
`DPLSTM` / `DPGRU` (Opacus cannot compute per-sample gradients of `nn.LSTM`/`nn.GRU`);
without DP `nn.LSTM` / `nn.GRU`, what a PyTorch user trains. torch runs
with 2 intra-op and 1 inter-op threads. Keras defaults are mirrored where they matter
(channels, kernel sizes, GroupNorm epsilon); weight initialisations differ.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=wrong-import-position
import torch  # pylint: disable=wrong-import-position
from torch import nn  # pylint: disable=wrong-import-position

from zoo import spec, worker  # pylint: disable=wrong-import-position


def conv_stack(c1: int, c2: int, norm: bool = False) -> list:
    """Conv(3x3)-[GroupNorm]-ReLU-MaxPool(2) twice on (N, 1, 28, 28); 5x5xc2 features out."""
    layers = []
    for c_in, c_out in ((1, c1), (c1, c2)):
        layers += [nn.Conv2d(c_in, c_out, 3)] + ([nn.GroupNorm(8, c_out, eps=1e-3)] if norm else [])
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    return layers + [nn.Flatten()]


class TwoOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*conv_stack(32, 64), nn.Linear(1600, 64), nn.ReLU())
        self.digit, self.parity = nn.Linear(64, 10), nn.Linear(64, 1)

    def forward(self, x):
        h = self.body(x)
        return self.digit(h), self.parity(h).squeeze(-1)


class Recurrent(nn.Module):
    """Embedding(32) -> LSTM(64) or bidirectional GRU(32) -> last state -> Linear(10).

    `private`: Opacus's `DPLSTM`/`DPGRU` (the layers Opacus can clip) instead of
    `nn.LSTM`/`nn.GRU` (what a PyTorch user trains without DP).
    """

    def __init__(self, kind: str, private: bool):
        super().__init__()
        from opacus import layers as dp  # pylint: disable=import-outside-toplevel
        lstm, gru = (dp.DPLSTM, dp.DPGRU) if private else (nn.LSTM, nn.GRU)
        self.embedding = nn.Embedding(spec.VOCAB, 32)
        self.rnn = lstm(32, 64, batch_first=True) if kind == 'lstm' else gru(
            32, 32, batch_first=True, bidirectional=True)
        self.out = nn.Linear(64, 10)

    def forward(self, tokens):
        _, state = self.rnn(self.embedding(tokens))
        h = state[0] if isinstance(state, tuple) else state        # (directions, N, hidden)
        return self.out(torch.cat(list(h), dim=-1))


class Text(nn.Module):
    """Embedding -> `body` on (N, T, E) -> Linear(10)."""

    def __init__(self, body: nn.Module, embedding: int, features: int):
        super().__init__()
        self.embedding, self.body = nn.Embedding(spec.VOCAB, embedding), body
        self.out = nn.Linear(features, 10)

    def forward(self, tokens):
        return self.out(self.body(self.embedding(tokens)))


class Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


class Reduce(nn.Module):
    def __init__(self, how: str, dim: int):
        super().__init__()
        self.how, self.dim = how, dim

    def forward(self, x):
        return x.mean(self.dim) if self.how == 'mean' else x.amax(self.dim)


def build_module(name: str, private: bool = False) -> nn.Module:
    """The PyTorch twin of `keras_zoo.build_model(name)` (logits out)."""
    if name == 'mlp':
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    if name in ('convnet', 'convnet_nodrop'):
        head = [nn.Dropout(0.5)] if name == 'convnet' else []
        return nn.Sequential(*conv_stack(32, 64), *head, nn.Linear(1600, 10))
    if name == 'groupnorm_cnn':
        return nn.Sequential(*conv_stack(32, 64, norm=True), nn.Linear(1600, 10))
    if name == 'subclassed_cnn':
        return nn.Sequential(*conv_stack(16, 32), nn.Linear(800, 10))
    if name == 'two_output':
        return TwoOutput()
    if name == 'embedding_gap':
        return Text(nn.Sequential(Reduce('mean', 1), nn.Linear(32, 64), nn.ReLU()), 32, 64)
    if name == 'conv1d_text':
        body = nn.Sequential(nn.Dropout(0.5), Transpose(), nn.Conv1d(64, 64, 5, stride=2), nn.ReLU(),
                             nn.Conv1d(64, 64, 5, stride=2), nn.ReLU(), Reduce('max', 2),
                             nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.5))
        return Text(body, 64, 64)
    if name in ('lstm_text', 'bigru_text'):
        return Recurrent(name[:-5].replace('bi', ''), private)
    width, features = {'binary_credit': ((32,), 42), 'regression_credit': ((64, 64), 41)}[name]
    layers, previous = [], features
    for w in width:
        layers, previous = layers + [nn.Linear(previous, w), nn.ReLU()], w
    return nn.Sequential(*layers, nn.Linear(previous, 1), nn.Flatten(0))


class TwoOutputLoss(nn.Module):
    """CE(digit logits) + BCE(parity logit), with the `reduction` Opacus's ghost mode switches."""

    def __init__(self):
        super().__init__()
        self.reduction = 'mean'

    def forward(self, out, y):
        return (nn.functional.cross_entropy(out[0], y, reduction=self.reduction)
                + nn.functional.binary_cross_entropy_with_logits(out[1], (y % 2).float(),
                                                                 reduction=self.reduction))


def criterion(model: spec.ZooModel) -> nn.Module:
    """The loss on (module output, integer or float labels)."""
    if model.task == 'two_output':
        return TwoOutputLoss()
    if model.task == 'binary':
        return nn.BCEWithLogitsLoss()
    return nn.MSELoss() if model.task == 'regression' else nn.CrossEntropyLoss()


def to_tensor(model: spec.ZooModel, x: np.ndarray) -> torch.Tensor:
    if model.data == 'mnist':
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))   # NHWC -> NCHW
    return torch.from_numpy(x).long() if model.data == 'tokens' else torch.from_numpy(x)


def build(model: spec.ZooModel, mode: str, num_examples: int):
    """(train step, predict, path) for `model` without DP or through Opacus's make_private."""
    module, loss_fn = build_module(model.name, mode != 'nodp'), criterion(model)
    optimizer, path = torch.optim.Adam(module.parameters(), lr=spec.LEARNING_RATE), 'non-DP'
    if mode != 'nodp':
        from opacus import PrivacyEngine  # pylint: disable=import-outside-toplevel
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
            torch.zeros(num_examples, 1)), batch_size=spec.BATCH_SIZE)
        ghost = {'criterion': loss_fn, 'grad_sample_mode': 'ghost'} if mode == 'ghost' else {}
        made = PrivacyEngine().make_private(
            module=module, optimizer=optimizer, data_loader=loader, poisson_sampling=False,
            noise_multiplier=spec.NOISE_MULTIPLIER, max_grad_norm=spec.L2_NORM_CLIP, **ghost)
        module, optimizer = made[0], made[1]
        loss_fn = made[2] if ghost else loss_fn
        path = f"opacus {'ghost' if ghost else 'hooks'}"
    labels = (lambda y: torch.from_numpy(y)) if model.task in ('binary', 'regression') else (
        lambda y: torch.from_numpy(y).long())

    def step(x, y):
        module.train()
        optimizer.zero_grad()
        loss_fn(module(to_tensor(model, x)), labels(y)).backward()
        optimizer.step()

    def predict(x):
        module.eval()
        with torch.no_grad():
            out = module(to_tensor(model, x))
        out = out[0] if isinstance(out, tuple) else out
        return torch.sigmoid(out).numpy() if model.task == 'binary' else out.numpy()

    return worker.Built(step, predict, path,
                        lambda: sum(p.numel() for p in module.parameters() if p.requires_grad))


def setup() -> None:
    """In each forked child, before any torch op: threads and seeds."""
    torch.set_num_threads(spec.TORCH_THREADS)
    torch.set_num_interop_threads(spec.TORCH_INTEROP_THREADS)
    torch.manual_seed(0)


def main() -> None:
    import opacus  # pylint: disable=import-outside-toplevel,unused-import
    worker.serve('opacus', build, setup)


if __name__ == '__main__':
    main()
