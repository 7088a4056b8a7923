"""`python -m tfpriv.federated.worker`: a long-lived TFF worker on 127.0.0.1 only, stopped cleanly
by SIGTERM/SIGINT; a worker that is not there, or dies, fails in one line naming it."""

import os
import signal
import subprocess
import sys

import numpy as np
import portpicker
import psutil
import pytest

from tfpriv.errors import WorkerUnreachable
from tfpriv.federated import worker as worker_main
from tfpriv.federated.runtime import tff_context

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _total(values):
    import tensorflow_federated as tff

    @tff.federated_computation(tff.FederatedType(np.int32, tff.CLIENTS))
    def total(x):
        return tff.federated_sum(x)

    return total(values)


def _start(port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'tfpriv.federated.worker', '--port', str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize('stop_signal', [signal.SIGTERM, signal.SIGINT])
def test_long_lived_worker_serves_on_loopback_and_stops_cleanly(stop_signal):
    port = portpicker.pick_unused_port()
    proc = _start(port)
    try:
        ready = proc.stdout.readline()  # blocks until the worker accepts connections
        assert ready.startswith(f'{worker_main.READY} 127.0.0.1:{port} '), ready
        binary = [p for p in psutil.Process(proc.pid).children()
                  if p.name() == 'worker_binary']
        assert len(binary) == 1
        listening = [c for c in psutil.net_connections('inet') if c.status == psutil.CONN_LISTEN
                     and c.pid in (proc.pid, binary[0].pid)]
        assert [(c.laddr.ip, c.laddr.port) for c in listening] == [('127.0.0.1', port)]
        with tff_context([f'localhost:{port}']):
            assert _total([1, 2, 3]) == 6
            assert _total([4]) == 4  # a second computation on the same worker
        assert proc.poll() is None  # a remote worker outlives the run that used it
        proc.send_signal(stop_signal)
        assert proc.wait(30) == 0
        binary[0].wait(10)
        assert not binary[0].is_running()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_worker_exits_when_its_worker_binary_dies():
    proc = _start(portpicker.pick_unused_port())
    try:
        assert proc.stdout.readline().startswith(worker_main.READY)
        (binary,) = psutil.Process(proc.pid).children()
        binary.kill()
        assert proc.wait(30) == worker_main.EXIT_WORKER_DIED
        assert 'worker_binary exited with code -9' in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize('argv, error', [(['--port', '0'], '--port must be in 1..65535'),
                                         ([], 'one of the arguments --port --unix is required')])
def test_worker_cli_usage_errors(argv, error):
    proc = subprocess.run([sys.executable, '-m', 'tfpriv.federated.worker', *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and error in proc.stderr


def test_unreachable_worker_names_its_address():
    port = portpicker.pick_unused_port()  # nothing listens there
    with pytest.raises(WorkerUnreachable, match=f'TFF worker localhost:{port} not reachable after 5 s'):
        with tff_context([f'localhost:{port}']):
            pass
