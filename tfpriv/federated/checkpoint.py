"""Per-round checkpoints of the federated server state, safe against `kill -9`.

One file, `<dir>/server_state.npz`, holds the flattened server state (every
leaf of the TFF state nest as a NumPy array), the number of completed rounds,
the metrics history and a fingerprint of the run's configuration. It is
written to a temporary file, fsync'ed and renamed over the old one
(`os.replace` is atomic on POSIX), so a kill at any instant leaves either the
previous round's checkpoint or the new one, never a torn file. Restoring packs
the leaves back into the structure of a freshly initialized state. Nests are
flattened by dm-tree (a dependency of dp-accounting), whose leaf order is
tf.nest's (sorted mapping keys, attrs fields in order), without importing
TensorFlow.

This is library code (like Keras' `BackupAndRestore`): `fedavg.train` and the
benchmarks resume through it without `train.py`. What only the command line
needs (refusing `--resume` without a checkpoint, before TensorFlow starts)
lives in `tfpriv.experiments.federated` on top of `read_meta` / `check_fingerprint`.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tree
from tfpriv.errors import CorruptCheckpoint, ResumeMismatch

FILENAME = 'server_state.npz'


def path(directory: str) -> str:
    """The checkpoint file of the run directory `directory`."""
    return os.path.join(directory, FILENAME)


def exists(directory: str) -> bool:
    """Whether `directory` holds a checkpoint (possibly a corrupt one)."""
    return os.path.exists(path(directory))


def save(directory: str, state: Any, rounds_done: int, history: Dict[str, list],
         fingerprint: Dict[str, Any]) -> str:
    """Atomically writes the checkpoint after `rounds_done` rounds; returns its path."""
    os.makedirs(directory, exist_ok=True)
    leaves = {f'leaf{i}': np.asarray(leaf) for i, leaf in enumerate(tree.flatten(state))}
    meta = json.dumps({'rounds_done': rounds_done, 'history': history,
                       'fingerprint': fingerprint}, default=float)
    target = path(directory)
    tmp = target + '.tmp'
    with open(tmp, 'wb') as f:
        np.savez(f, meta=np.array(meta), **leaves)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def _read(directory: str) -> Tuple[Dict[str, Any], list]:
    """(metadata, leaves) of the checkpoint in `directory`.

    Raises:
      FileNotFoundError: there is no checkpoint.
      CorruptCheckpoint: the file is truncated or holds no checkpoint.
    """
    target = path(directory)
    if not os.path.exists(target):
        raise FileNotFoundError(f'no checkpoint {FILENAME} in {directory}')
    try:
        with np.load(target, allow_pickle=False) as f:
            meta = json.loads(str(f['meta']))
            leaves = [f[f'leaf{i}'] for i in range(len(f.files) - 1)]
        meta['rounds_done'] = int(meta['rounds_done'])
        meta['history'], meta['fingerprint'] = dict(meta['history']), dict(meta['fingerprint'])
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise CorruptCheckpoint(f'{target} is truncated or not a checkpoint '
                                f'({type(error).__name__}); delete it or use another --out') from error
    return meta, leaves


def read_meta(directory: str) -> Dict[str, Any]:
    """The checkpoint's metadata (`rounds_done`, `history`, `fingerprint`), without TensorFlow.

    Every leaf is read too, so a truncated file is reported here (`CorruptCheckpoint`).
    """
    return _read(directory)[0]


def check_fingerprint(directory: str, meta: Dict[str, Any], fingerprint: Dict[str, Any]) -> None:
    """Raises `ResumeMismatch` unless the checkpoint was written with the settings `fingerprint`."""
    now = json.loads(json.dumps(fingerprint, default=float))
    if meta['fingerprint'] != now:
        diff = {k: (meta['fingerprint'].get(k), v) for k, v in now.items()
                if meta['fingerprint'].get(k) != v}
        raise ResumeMismatch(f'{path(directory)} was written by a run with other settings '
                             f'(checkpoint vs now: {diff}); use another --out or drop --resume')


def load(directory: str, template: Any,
         fingerprint: Dict[str, Any]) -> Optional[Tuple[Any, int, Dict[str, list]]]:
    """(state, rounds_done, history) from `directory`, or None when there is no checkpoint.

    Raises:
      ResumeMismatch: the checkpoint was made with another configuration or model.
      CorruptCheckpoint: the file is truncated or holds no checkpoint.
    """
    if not exists(directory):
        return None
    meta, leaves = _read(directory)
    check_fingerprint(directory, meta, fingerprint)
    template_leaves = tree.flatten(template)
    if len(leaves) != len(template_leaves) or any(
            np.shape(a) != np.shape(b) for a, b in zip(leaves, template_leaves)):
        raise ResumeMismatch(f'{path(directory)} holds a server state of another shape')
    leaves = [np.asarray(a, dtype=np.asarray(b).dtype) for a, b in zip(leaves, template_leaves)]
    return tree.unflatten_as(template, leaves), meta['rounds_done'], meta['history']
