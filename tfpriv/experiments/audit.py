"""`train.py --audit`: the empirical privacy audit of the run's configuration.

Trains the configuration of the DP-SGD (or plain) run once more on a random
member subset plus canaries (`tfpriv.dp.audit.audit_training`: membership
inference with unused training images as non-members, and the one-run canary
ε lower bound of Steinke, Nasr and Jagielski 2023), so the proven upper bound
and the measured lower bound can be read side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from typing import Callable

from tfpriv.data import Dataset
from tfpriv.dp.audit import AuditReport, audit_training

DEFAULT_CANARIES = 200


def add_arguments(group) -> None:
    """The audit flags (in the DP-SGD group)."""
    group.add_argument('--audit', action='store_true',
                       help='after training, audit the configuration: membership inference AUC / '
                            'advantage and a canary ε lower bound from one extra training run')
    group.add_argument('--audit-canaries', type=int, default=DEFAULT_CANARIES,
                       help=f'canaries of the audit run (default {DEFAULT_CANARIES})')


def validate(args: argparse.Namespace, num_train: int) -> list:
    """Problems with the audit flags (the audit splits the `num_train` training examples)."""
    if not args.audit:
        return []
    if args.audit_canaries < 2:
        return [f'--audit-canaries must be >= 2, got {args.audit_canaries}']
    if num_train < args.audit_canaries + 2:
        return [f'--audit needs more training examples than --audit-canaries + 2 '
                f'({num_train} < {args.audit_canaries + 2})']
    return []


def audit_run(train: Callable[[Dataset, str], object], data: Dataset, *, canaries: int,
              seed: int, delta: float) -> AuditReport:
    """Audits `train(dataset, out_dir) -> model` on `data`: members are half of what is left
    after the canaries, non-members the other half (unused training images)."""
    members = (data.num_train - canaries) // 2

    def train_fn(x, y):
        with tempfile.TemporaryDirectory(prefix='tfpriv-audit-') as out:
            return train(dataclasses.replace(data, x_train=x, y_train=y), out)

    return audit_training(train_fn, data, num_train=members, num_canaries=canaries, seed=seed,
                          delta=delta)
