"""Server-state checkpoints: round trip, corrupt files refused, atomic against crashes and kill -9."""

import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfpriv.errors import CorruptCheckpoint, ResumeMismatch
from tfpriv.federated import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATE = {'weights': [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)],
         'round': np.int64(0)}
FINGERPRINT = {'model': 'mlp', 'seed': 0}


def _state(value: float):
    return {'weights': [np.full((2, 3), value, np.float32), np.full(3, value, np.float32)],
            'round': np.int64(value)}


def test_round_trip_and_fingerprint(tmp_path):
    directory = str(tmp_path)
    checkpoint.save(directory, _state(2.0), 2, {'round': [1, 2]}, FINGERPRINT)
    state, done, history = checkpoint.load(directory, STATE, FINGERPRINT)
    assert done == 2 and history == {'round': [1, 2]}
    np.testing.assert_array_equal(state['weights'][0], np.full((2, 3), 2.0))
    assert state['round'].dtype == np.int64
    with pytest.raises(ResumeMismatch, match='other settings'):
        checkpoint.load(directory, STATE, dict(FINGERPRINT, seed=1))
    with pytest.raises(ResumeMismatch, match='another shape'):
        checkpoint.load(directory, {'weights': [np.zeros((3, 3))]}, FINGERPRINT)
    assert checkpoint.load(str(tmp_path / 'empty'), STATE, FINGERPRINT) is None


@pytest.mark.parametrize('keep', [0, 10, 200, -40])
def test_truncated_or_foreign_file_is_corrupt(tmp_path, keep):
    """Cut after `keep` bytes (negative: all but the last 40): one clear error, no zipfile traceback."""
    directory = str(tmp_path)
    path = checkpoint.save(directory, _state(1.0), 1, {'round': [1]}, FINGERPRINT)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:keep])
    with pytest.raises(CorruptCheckpoint, match='truncated or not a checkpoint'):
        checkpoint.read_meta(directory)
    with pytest.raises(CorruptCheckpoint):
        checkpoint.load(directory, STATE, FINGERPRINT)


def test_crash_during_write_keeps_the_previous_round(tmp_path, monkeypatch):
    """A write that dies half-way (here: an exception after half the bytes) never replaces the file."""
    directory = str(tmp_path)
    checkpoint.save(directory, _state(1.0), 1, {'round': [1]}, FINGERPRINT)
    real_savez = np.savez

    def half_then_die(f, **arrays):
        real_savez(f, **arrays)
        f.truncate(f.tell() // 2)
        raise OSError('disk died')

    monkeypatch.setattr(checkpoint.np, 'savez', half_then_die)
    with pytest.raises(OSError, match='disk died'):
        checkpoint.save(directory, _state(2.0), 2, {'round': [1, 2]}, FINGERPRINT)
    monkeypatch.undo()
    state, done, _ = checkpoint.load(directory, STATE, FINGERPRINT)
    assert done == 1 and float(state['weights'][1][0]) == 1.0


_WRITER = textwrap.dedent('''
    import io
    import os
    import sys
    import numpy as np
    from tfpriv.federated import checkpoint
    real_savez = np.savez

    def chunked_savez(f, **arrays):  # 4 KB writes: a kill lands inside the file most of the time
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        data = buffer.getvalue()
        for i in range(0, len(data), 4096):
            f.write(data[i:i + 4096])
            f.flush()

    np.savez = chunked_savez
    os.fsync = lambda fd: None  # fsync guards against power loss, not kill: skip its wait
    rounds = 0
    while True:
        rounds += 1
        state = {'weights': [np.full((500, 500), rounds, np.float32)], 'round': np.int64(rounds)}
        checkpoint.save(sys.argv[1], state, rounds, {'round': list(range(1, rounds + 1))}, {'seed': 0})
        print(rounds, flush=True)
''')


@pytest.mark.slow
def test_kill_9_at_random_points_leaves_a_whole_checkpoint(tmp_path):
    """A writer saving as fast as it can is killed with SIGKILL at random points, 30 times.

    The writer spends nearly all its time writing the file (1 MB in 4 KB writes, no fsync
    wait), so a non-atomic save (writing in place) leaves a torn file and fails here.

    After each kill the checkpoint reads back whole and its leaves match its round count;
    the next writer starts from a directory that may hold a stale `.tmp` file.
    """
    directory = str(tmp_path)
    env = dict(os.environ, PYTHONPATH=ROOT)
    chooser = random.Random(0)
    for _ in range(30):
        proc = subprocess.Popen([sys.executable, '-c', _WRITER, directory], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            # Wait for a random number of finished saves, then kill it wherever it is by then:
            # inside the next save (writing, fsync, rename) or between two.
            for _ in range(chooser.randrange(1, 30)):
                assert proc.stdout.readline().strip().isdigit()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        meta = checkpoint.read_meta(directory)
        state, done, history = checkpoint.load(
            directory, {'weights': [np.zeros((500, 500), np.float32)], 'round': np.int64(0)},
            {'seed': 0})
        assert done == meta['rounds_done'] >= 1 and history['round'][-1] == done
        assert int(state['round']) == done and float(state['weights'][0][0, 0]) == done
