"""No `worker_binary` outlives the Python process that started it, however it ends."""

import errno
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from tfpriv.errors import InsecureWorkerError
from tfpriv.federated.runtime import check_secure_workers, parse_workers

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
    assert parse_workers('unix:/tmp/w.sock') == ['unix:/tmp/w.sock']


@pytest.mark.parametrize('target', ['10.0.0.2:8000', 'example.org:8000', '0.0.0.0:8000',
                                    '[2001:db8::1]:8000', '128.0.0.1:8000'])
def test_plain_remote_worker_is_refused_unless_insecure(target):
    with pytest.raises(InsecureWorkerError, match='SSH tunnel'):
        check_secure_workers(['localhost:8000', target])
    check_secure_workers([target], insecure=True)  # the explicit opt-out


@pytest.mark.parametrize('target', ['localhost:8000', '127.0.0.1:8000', '127.5.0.1:8000',
                                    '[::1]:8000', 'unix:/tmp/w.sock'])
def test_loopback_workers_are_allowed(target):
    check_secure_workers([target])


def _netns(pid: int) -> int:
    return os.stat(f'/proc/{pid}/ns/net').st_ino


def _interfaces(pid: int):
    with open(f'/proc/{pid}/net/dev') as f:
        return {line.split(':')[0].strip() for line in f.readlines()[2:]}


def _tcp_listen_ports(pid: int):
    """Listening TCP ports in `pid`'s network namespace (state 0A in /proc/PID/net/tcp*)."""
    ports = set()
    for name in ('tcp', 'tcp6'):
        with open(f'/proc/{pid}/net/{name}') as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == '0A':
                    ports.add(int(fields[1].rsplit(':', 1)[1], 16))
    return ports


def test_local_worker_is_unreachable_from_the_network():
    """The local worker_binary listens only inside a namespace whose one interface is
    loopback; in the host's namespace the only listener of its process tree is a Unix socket
    in a private directory (TFF's own worker listens on [::]:PORT, every interface)."""
    proc = subprocess.Popen([sys.executable, '-c', _PRELUDE + textwrap.dedent('''
        with runtime.tff_context():
            assert total([1, 2]) == 3
            relays = [p.pid for p in runtime.leftover_workers(relays=True)
                      if p.name() != 'worker_binary']
            report()
            print('RELAYS', *relays, flush=True)
            sys.stdin.read()  # until the test closes our stdin
    ''')], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    try:
        lines = {}
        while 'RELAYS' not in lines:
            line = proc.stdout.readline()
            assert line, 'child exited early'
            lines[line.split()[0]] = [int(p) for p in line.split()[1:]]
        (worker,), (relay,) = lines['WORKERS'], lines['RELAYS']
        tree = {proc.pid, relay, worker}
        host = [c for c in psutil.net_connections('all')
                if c.pid in tree and c.family != socket.AF_UNIX and c.status == psutil.CONN_LISTEN]
        assert host == []  # no TCP listener of the tree on any host interface, loopback included
        unix = {c.laddr for c in psutil.net_connections('unix') if c.pid == relay and c.laddr}
        assert len(unix) == 1  # the listener (and the parent's connection to it)
        directory = os.path.dirname(unix.pop())
        assert os.stat(directory).st_mode & 0o777 == 0o700
        assert os.stat(directory).st_uid == os.getuid()
        assert _netns(worker) == _netns(relay) != _netns(os.getpid())  # the relay moved in after listening
        assert _interfaces(worker) == {'lo'}
        assert _tcp_listen_ports(worker) == {10000}  # it does listen, inside its namespace
    finally:
        proc.stdin.close()
        proc.wait(60)
    assert proc.returncode == 0



def test_worker_lost_during_a_run_is_one_error_naming_it():
    """TFF retries UNAVAILABLE forever; the runtime turns a dead worker into WorkerLost."""
    code, out, _, _ = _run('''
        from tfpriv.errors import WorkerLost
        with runtime.tff_context():
            assert total([1]) == 1
            (worker,) = runtime.leftover_workers()
            worker.kill()
            worker.wait(30)
            try:
                total([2])
            except WorkerLost as error:
                print('LOST', error, flush=True)
    ''')
    assert code == 0
    (line,) = [l for l in out.splitlines() if l.startswith('LOST')]
    assert 'TFF worker unix:/' in line and 'exited with code 1 during the run' in line


# --- train.py --federated: every failure a user can cause is one line and an exit status ---

_TINY = ['--federated', '--no-dp', '--dataset', 'credit', '--clients', '4', '--rounds', '1',
         '--client-fraction', '0.5', '--verbose', '0']


@pytest.fixture
def train_here(capsys):
    """train.py's `cli.main` with `_TINY` + flags in this process (a fresh one first spent 9 s
    importing TensorFlow Federated); (exit status, stdout, stderr) as a CompletedProcess."""
    from tfpriv.experiments.cli import main  # pylint: disable=import-outside-toplevel

    def train(tmp_path, *flags):
        argv = _TINY + ['--out', str(tmp_path / 'runs'), '--images', str(tmp_path / 'images')]
        try:
            status = main(argv + list(flags))
        except SystemExit as stopped:
            status = stopped.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(argv, status, out, err)
    return train


def _one_line_error(result, status, *fragments):
    assert result.returncode == status, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('train.py: error: '), last
    for fragment in fragments:
        assert fragment in last, last


def test_unreachable_worker_is_one_line_naming_it(tmp_path, train_here):
    import portpicker
    port = portpicker.pick_unused_port()  # nothing listens there
    result = train_here(tmp_path, '--workers', f'localhost:{port}')
    _one_line_error(result, 1, f'TFF worker localhost:{port} not reachable after 5 s')


@pytest.mark.parametrize('flags, fragments', [
    (['--secure-agg', 'shamir', '--secagg-bound', '1e-6'],
     ['--secure-agg shamir', 'above the public bound 1e-06',
      'raise --secagg-bound above that magnitude (now 1e-06)']),
    # RLWE checks that the weighted sum fits its plaintext modulus when it aggregates
    (['--secure-agg', 'rlwe', '--secagg-precision', '40'],
     ['--secure-agg rlwe', 'the weighted sum could reach',
      'lower --secagg-precision (now 40) so the sum fits']),
])
def test_update_outside_the_secure_aggregation_range_says_which_flag(tmp_path, flags, fragments,
                                                                    train_here):
    _one_line_error(train_here(tmp_path, *flags), 1, *fragments)


def test_missing_mnist_is_one_line(tmp_path):
    """A Keras cache whose mnist.npz is not MNIST (no download is attempted for it)."""
    cache = tmp_path / 'keras' / 'datasets'
    cache.mkdir(parents=True)
    (cache / 'mnist.npz').write_bytes(b'not an npz')
    flags = [f for f in _TINY if f not in ('--dataset', 'credit')]
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'train.py')] + flags
                            + ['--out', str(tmp_path / 'runs')], cwd=ROOT, capture_output=True,
                            text=True, timeout=600,
                            env={**os.environ, 'KERAS_HOME': str(tmp_path / 'keras')})
    _one_line_error(result, 1, str(cache / 'mnist.npz'))


def test_disk_full_while_checkpointing_is_one_line(tmp_path, train_here, monkeypatch):
    from tfpriv.federated import checkpoint  # pylint: disable=import-outside-toplevel

    def full(directory, *args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device', directory)
    monkeypatch.setattr(checkpoint, 'save', full)
    result = train_here(tmp_path)
    _one_line_error(result, 1, 'No space left on device', str(tmp_path / 'runs'))


@pytest.mark.parametrize('flags, message', [
    (['--workers', '10.0.0.2:8000'], 'worker 10.0.0.2:8000 is not on loopback'),
    (['--workers', 'localhost:8000,example.org:8000'], 'worker example.org:8000 is not on loopback'),
    (['--secagg-bound', '4'], '--secagg-bound and --secagg-precision need --secure-agg'),
    (['--secure-agg', 'shamir', '--secagg-bound', '0'], '--secagg-bound must be a positive number'),
    (['--secure-agg', 'smpc', '--secagg-bound', '4'], 'smpc has no --secagg-bound'),
    (['--secure-agg', 'smpc', '--secagg-precision', '62'], 'precision must be <= 40, got 62'),
    (['--secure-agg', 'shamir', '--secagg-precision', '50'], 'use precision <= 20 bits'),
    (['--secagg-neighbours', '4'], '--secagg-neighbours needs --secure-agg secagg'),
    (['--secure-agg', 'shamir', '--secagg-neighbours', '4'],
     '--secagg-neighbours needs --secure-agg secagg'),
    (['--secure-agg', 'secagg', '--clients', '20', '--secagg-neighbours', '1'],
     '--secure-agg secagg with --secagg-neighbours 1: neighbours must be >= 2'),
    (['--secure-agg', 'secagg', '--clients', '20', '--secagg-neighbours', '5'],
     '--secure-agg secagg with --secagg-neighbours 5: neighbours must be even'),
])
def test_runtime_flag_problems_exit_2_before_training(flags, message, capsys):
    from tfpriv.experiments.cli import main
    with pytest.raises(SystemExit) as info:
        main(_TINY + flags)
    assert info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize('dp', [[], ['--dp']])
def test_secagg_neighbours_reach_the_round_s_graph(dp):
    """--secagg-neighbours k builds SecAgg+ with k neighbours (also inside distributed DP);
    without it the graph has the default degree 2 ceil(log2 m): 8 for the m = 10 here."""
    from tfpriv.experiments.cli import build_parser, resolve_defaults
    from tfpriv.experiments.federated import config_from_args, validate
    from tfpriv.federated import distributed_dp, secure
    base = _TINY + dp + ['--secure-agg', 'secagg', '--clients', '20']
    for flags, degree in (([], 8), (['--secagg-neighbours', '4'], 4)):
        args = resolve_defaults(build_parser().parse_args(base + flags))
        assert validate(args) == []
        config = config_from_args(args, 'iid')
        if dp:
            inner = distributed_dp.make_aggregator('secagg', 1.0, 1.0, 10, 64,
                                                   neighbours=config.secagg_neighbours).inner
        else:
            inner = secure.make_aggregator('secagg', None, 10, neighbours=config.secagg_neighbours)
        assert inner.config.neighbours == degree
    with pytest.raises(ValueError, match="neighbours is a setting of .*'secagg'.*not of 'shamir'"):
        distributed_dp.inner_aggregator('shamir', 16, 10, neighbours=4)
    with pytest.raises(ValueError, match="'shamir' has no neighbours to set"):
        secure.make_aggregator('shamir', None, 10, neighbours=4)


def test_out_under_a_file_exits_2(tmp_path, capsys):
    from tfpriv.experiments.cli import main
    (tmp_path / 'file').write_text('x')
    with pytest.raises(SystemExit) as info:
        main(_TINY + ['--out', str(tmp_path / 'file' / 'runs')])
    assert info.value.code == 2
    assert f'{tmp_path / "file"} is not a directory' in capsys.readouterr().err


def test_insecure_workers_lets_a_remote_address_through_validation():
    from tfpriv.experiments.cli import build_parser, resolve_defaults
    from tfpriv.experiments.federated import validate
    args = resolve_defaults(build_parser().parse_args(
        _TINY + ["--workers", "10.0.0.2:8000", "--insecure-workers"]))
    assert validate(args) == []  # validated only: the test never connects to it


def test_disposing_on_a_gone_worker_is_quiet_and_other_calls_still_fail():
    """After Ctrl-C the context stops the worker before TFF's `RemoteValue` finalizers run;
    their Dispose must not print a traceback, while real calls to a gone worker still raise."""
    import grpc
    import tensorflow_federated as tff
    from tensorflow_federated.proto.v0 import executor_pb2
    from tensorflow_federated.python.core.impl.executors import executors_errors
    from tfpriv.federated import runtime
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]  # closed below: nothing listens there
    channel = grpc.insecure_channel(f'127.0.0.1:{port}')
    stub = runtime._lenient_dispose_stub(tff, channel)
    plain = tff.framework.RemoteExecutorGrpcStub(channel)
    dispose = executor_pb2.DisposeRequest(value_ref=[executor_pb2.ValueRef(id='1')])
    with pytest.raises(executors_errors.RetryableGRPCError):
        plain.dispose(dispose)
    assert stub.dispose(dispose) is None
    assert stub.dispose_executor(executor_pb2.DisposeExecutorRequest()) is None
    with pytest.raises(executors_errors.RetryableGRPCError):
        stub.get_executor(executor_pb2.GetExecutorRequest())
