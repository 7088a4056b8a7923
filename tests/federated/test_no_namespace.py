"""Where the kernel refuses user namespaces: one line without --insecure-workers, the
documented unconfined worker with it, and never a fallback the user did not ask for.

The refusal is simulated exactly where the kernel would refuse: the relay is started through
a wrapper interpreter (the runtime spawns `sys.executable -m tfpriv.federated.worker`) whose
libc `unshare` fails with EPERM, as under `kernel.unprivileged_userns_clone=0` or AppArmor's
`apparmor_restrict_unprivileged_userns`. Everything after that (the relay's message and exit
status, the runtime's error or fallback, the CLI's one line) is the real code. Listening
sockets are read with psutil; nothing connects to a non-loopback address.
"""

import os
import stat
import subprocess
import sys
import textwrap

import portpicker
import pytest

from tfpriv.federated import worker as worker_main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MESSAGE = ('tfpriv worker: cannot confine worker_binary to a private network namespace: '
           'unshare(CLONE_NEWUSER | CLONE_NEWNET): Operation not permitted')

_WRAPPER = '''#!{python}
"""`python -m tfpriv.federated.worker ARGS` whose libc refuses unshare() with EPERM."""
import ctypes, errno, sys
import tfpriv.federated.worker as worker


class RefusingLibc:
    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def unshare(self, flags):
        ctypes.set_errno(errno.EPERM)
        return -1


worker._LIBC = RefusingLibc(worker._LIBC)
assert sys.argv[1:3] == ['-m', 'tfpriv.federated.worker'], sys.argv
sys.exit(worker.main(sys.argv[3:]))
'''


@pytest.fixture(scope='module')
def refusing_python(tmp_path_factory):
    path = tmp_path_factory.mktemp('nonamespace') / 'python'
    path.write_text(_WRAPPER.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _env():
    return {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3',
            'PYTHONPATH': os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')]))}


def test_long_lived_worker_without_namespaces_is_one_line_and_exit_3(refusing_python):
    port = portpicker.pick_unused_port()
    result = subprocess.run([refusing_python, '-m', 'tfpriv.federated.worker', '--port', str(port)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == worker_main.EXIT_NO_ISOLATION == 3
    assert result.stderr.strip().splitlines() == [MESSAGE]
    assert worker_main.READY not in result.stdout  # it never served


_CHILD = textwrap.dedent('''
    import sys
    import numpy as np
    import psutil, socket
    import tensorflow_federated as tff
    from tfpriv.federated import runtime
    sys.executable = {wrapper!r}  # the relay is spawned through it
    started = []
    real_start = runtime.start_worker
    def start_worker(*args, **kwargs):
        started.append(kwargs.get('isolate', True))
        return real_start(*args, **kwargs)
    runtime.start_worker = start_worker

    @tff.federated_computation(tff.FederatedType(np.int32, tff.CLIENTS))
    def total(x):
        return tff.federated_sum(x)

    def listening():
        tree = [psutil.Process()] + psutil.Process().children(recursive=True)
        pids = {{p.pid for p in tree}}
        return sorted((c.laddr.ip, c.laddr.port) for c in psutil.net_connections('inet')
                      if c.pid in pids and c.status == psutil.CONN_LISTEN)
''')


def _child(wrapper: str, body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', _CHILD.format(wrapper=wrapper) + textwrap.dedent(body)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env())


def test_local_run_without_namespaces_fails_in_one_line_and_starts_no_unconfined_worker(
        refusing_python):
    result = _child(refusing_python, '''
        from tfpriv.errors import WorkerIsolationError
        try:
            with runtime.tff_context():
                total([1])
        except WorkerIsolationError as error:
            print('ERROR', error)
        print('STARTED', started)
        print('LISTENING', listening())
        print('LEFT', runtime.leftover_workers())
    ''')
    lines = dict(line.split(' ', 1) for line in result.stdout.strip().splitlines())
    assert result.returncode == 0, result.stderr[-2000:]
    assert lines['ERROR'] == MESSAGE + ' (pass --insecure-workers / insecure=True to run it ' \
                                       'unconfined, on all interfaces)'
    assert lines['STARTED'] == '[True]'  # the confined relay only: no fallback unasked
    assert lines['LISTENING'] == '[]' and lines['LEFT'] == '[]'


def test_insecure_workers_fall_back_to_the_documented_unconfined_worker(refusing_python):
    """--insecure-workers: TFF's bare worker_binary, on [::]:PORT as docs/federated.md says,
    with a warning; its listener is the only one of the run and it is gone afterwards."""
    result = _child(refusing_python, '''
        with runtime.tff_context(insecure=True):
            assert total([1, 2]) == 3
            (worker,) = runtime.leftover_workers()
            print('WORKER', worker.name())
            print('LISTENING', listening())
        print('STARTED', started)
        print('AFTER', listening())
    ''')
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(' ', 1) for line in result.stdout.strip().splitlines())
    assert lines['WORKER'] == 'worker_binary'
    assert lines['STARTED'] == '[True, False]'  # confined first; unconfined only after refusal
    listeners = eval(lines['LISTENING'])  # pylint: disable=eval-used
    assert len(listeners) == 1 and listeners[0][0] == '::'  # documented: every interface
    assert lines['AFTER'] == '[]'
    assert 'running an unconfined worker_binary (insecure=True)' in result.stderr
    assert MESSAGE in result.stderr


def test_train_py_without_namespaces_is_one_line_exit_1(refusing_python, tmp_path):
    argv = ['--federated', '--no-dp', '--dataset', 'credit', '--clients', '4', '--rounds', '1',
            '--client-fraction', '0.5', '--verbose', '0', '--out', str(tmp_path / 'runs'),
            '--images', str(tmp_path / 'images')]
    code = (f'import sys\nsys.executable = {refusing_python!r}\n'
            f'from tfpriv.experiments.cli import main\nsys.exit(main({argv!r}))')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env=_env())
    assert result.returncode == 1, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f'train.py: error: {MESSAGE} (pass --insecure-workers / insecure=True to ' \
                   'run it unconfined, on all interfaces)'
