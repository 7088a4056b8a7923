"""Per-round checkpoints of the federated server state, safe against `kill -9`.

One file, `<dir>/server_state.npz`, holds the flattened server state (every
leaf of the TFF state nest as a NumPy array), the number of completed rounds,
the metrics history and a fingerprint of the run's configuration. It is
written to a temporary file, fsync'ed and renamed over the old one
(`os.replace` is atomic on POSIX), so a kill at any instant leaves either the
previous round's checkpoint or the new one, never a torn file. Restoring packs
the leaves back into the structure of a freshly initialized state.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
from tfpriv.errors import ResumeMismatch

FILENAME = 'server_state.npz'



def save(directory: str, state: Any, rounds_done: int, history: Dict[str, list],
         fingerprint: Dict[str, Any]) -> str:
    """Atomically writes the checkpoint after `rounds_done` rounds; returns its path."""
    import tensorflow as tf
    os.makedirs(directory, exist_ok=True)
    leaves = {f'leaf{i}': np.asarray(leaf) for i, leaf in enumerate(tf.nest.flatten(state))}
    meta = json.dumps({'rounds_done': rounds_done, 'history': history,
                       'fingerprint': fingerprint}, default=float)
    path = os.path.join(directory, FILENAME)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        np.savez(f, meta=np.array(meta), **leaves)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_meta(directory: str) -> Dict[str, Any]:
    """The checkpoint's metadata (`rounds_done`, `history`, `fingerprint`), without TensorFlow."""
    path = os.path.join(directory, FILENAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f'no checkpoint {FILENAME} in {directory}')
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f['meta']))


def load(directory: str, template: Any,
         fingerprint: Dict[str, Any]) -> Optional[Tuple[Any, int, Dict[str, list]]]:
    """(state, rounds_done, history) from `directory`, or None when there is no checkpoint.

    Raises:
      ResumeMismatch: the checkpoint was made with another configuration or model.
    """
    import tensorflow as tf
    path = os.path.join(directory, FILENAME)
    if not os.path.exists(path):
        return None
    meta = read_meta(directory)
    with np.load(path, allow_pickle=False) as f:
        leaves = [f[f'leaf{i}'] for i in range(len(f.files) - 1)]
    if meta['fingerprint'] != json.loads(json.dumps(fingerprint, default=float)):
        diff = {k: (meta['fingerprint'].get(k), v) for k, v in fingerprint.items()
                if meta['fingerprint'].get(k) != v}
        raise ResumeMismatch(f'{path} was written by a run with other settings '
                             f'(checkpoint vs now: {diff}); use another --out or drop --resume')
    template_leaves = tf.nest.flatten(template)
    if len(leaves) != len(template_leaves) or any(
            np.shape(a) != np.shape(b) for a, b in zip(leaves, template_leaves)):
        raise ResumeMismatch(f'{path} holds a server state of another shape')
    leaves = [np.asarray(a, dtype=np.asarray(b).dtype) for a, b in zip(leaves, template_leaves)]
    return tf.nest.pack_sequence_as(template, leaves), int(meta['rounds_done']), meta['history']
