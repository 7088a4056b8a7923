"""No `worker_binary` outlives the Python process that started it, however it ends."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from tfpriv.federated.runtime import parse_workers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PRELUDE = textwrap.dedent('''
    import os, sys, time
    import numpy as np
    import tensorflow_federated as tff
    from tfpriv.federated import runtime

    @tff.federated_computation(tff.FederatedType(np.int32, tff.CLIENTS))
    def total(x):
        return tff.federated_sum(x)

    def report():
        pids = [p.pid for p in runtime.leftover_workers()]
        print('WORKERS', ' '.join(map(str, pids)), flush=True)
''')


def _run(body: str, timeout: float = 120.0):
    """Runs `body` in a fresh Python; returns (returncode, stdout, seconds) once stdout closes."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, '-c', _PRELUDE + textwrap.dedent(body)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    # communicate() returns only at EOF: every holder of the pipe (workers included) is gone.
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out, time.monotonic() - start, proc.pid


def _worker_pids(out: str):
    line = [l for l in out.splitlines() if l.startswith('WORKERS')][-1]
    return [int(p) for p in line.split()[1:]]


def _gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.2)
    return False


def _no_worker_children(pid: int) -> bool:
    return not [p for p in psutil.process_iter(['ppid', 'cmdline'])
                if p.info['ppid'] == pid and 'worker_binary' in ' '.join(p.info['cmdline'] or [])]


def test_context_exit_stops_its_worker_normally_and_on_interrupt():
    code, out, seconds, pid = _run('''
        with runtime.tff_context():
            assert total([1, 2, 3]) == 6
            report()
        report()
        try:
            with runtime.tff_context():
                total([1])
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            report()
        # outside tff_context TFF starts its own worker, inheriting stdout; atexit kills it
        assert total([4, 5]) == 9
        report()
    ''')
    assert code == 0
    lines = [l.split()[1:] for l in out.splitlines() if l.startswith('WORKERS')]
    assert len(lines[0]) == 1, out  # one worker while the context is open
    assert lines[1] == [] and lines[2] == []  # none after a normal exit or an interrupt
    assert len(lines[3]) == 1  # TFF's own
    assert _gone([int(p) for p in lines[0] + lines[3]]) and _no_worker_children(pid)
    assert seconds < 100  # and communicate() saw EOF: no worker held the stdout pipe


def test_kill_9_of_python_takes_the_worker_down():
    proc = subprocess.Popen([sys.executable, '-c', _PRELUDE + textwrap.dedent('''
        with runtime.tff_context():
            total([1])
            report()
            time.sleep(300)
    ''')], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = ''
        while not line.startswith('WORKERS'):
            line = proc.stdout.readline()
            assert line, 'child exited early'
        workers = [int(p) for p in line.split()[1:]]
        assert len(workers) == 1
        proc.send_signal(signal.SIGKILL)
        assert proc.stdout.read() == ''  # EOF: nobody holds the pipe
        proc.wait(10)
        assert _gone(workers)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize('spec, error', [('localhost', 'host:port'), ('a:0', 'port'),
                                         ('a:1,a:1', 'distinct'), ('', 'host:port')])
def test_parse_workers_rejects(spec, error):
    with pytest.raises(ValueError, match=error):
        parse_workers(spec)


def test_parse_workers_accepts_list():
    assert parse_workers('localhost:8000, 10.0.0.2:8001') == ['localhost:8000', '10.0.0.2:8001']
