"""TFF execution contexts whose workers only this host can reach and that never outlive us.

TensorFlow Federated 0.87 executes every computation in a C++ `worker_binary`
process reached over gRPC. That binary serves an unauthenticated, plaintext
executor service on `[::]:PORT` (all interfaces; it has no address flag) and
runs any computation it is sent. TFF's default local context starts it
lazily, lets it inherit the parent's stdout/stderr, and kills it only in a
`__del__` that interpreter exit may skip.

`tff_context()` replaces that with workers this module owns:

* Local mode (`workers=None`): `start_worker()` runs `tfpriv.federated.worker`,
  which starts `worker_binary` in a private network namespace (loopback only)
  and relays a Unix socket in a private directory to it; the parent talks gRPC
  to `unix:PATH`. Nothing listens on any network interface of the host. The
  relay's stdin/stdout are `/dev/null`, its stderr (and the worker's) a log
  file; it has its own process group and `PR_SET_PDEATHSIG=SIGKILL`, and so does
  the worker under it, so `kill -9` of Python takes both down. Where the kernel
  refuses the namespace, the run fails (`WorkerIsolationError`) unless
  `insecure=True`, which falls back to a bare `worker_binary` on all interfaces.
* Remote mode (`workers=['host:port', ...]`): TFF's own remote execution. One
  worker gets a `SyncExecutionContext` over a gRPC `RemoteExecutor`; several
  get TFF's `MergeableCompExecutionContext`, which splits the clients of each
  round into one sub-round per worker and merges the partial aggregates.
  Addresses must be loopback (a `python -m tfpriv.federated.worker` here, or an
  SSH tunnel to one elsewhere) unless `insecure=True`: the channel has no
  encryption and no authentication (`InsecureWorkerError`). A worker that does
  not answer within `timeout_s` (5 s) fails with `WorkerUnreachable`.

TFF retries an RPC that fails with UNAVAILABLE forever; the executor factory
here checks its worker before each retry and raises `WorkerLost` (one line,
naming the worker) when it has exited or stopped answering.

On leaving the context (normally, by exception, by `KeyboardInterrupt`, or by
SIGTERM, which is turned into `SystemExit` while the context is active) the
owned workers get SIGINT, then SIGKILL after a grace period, and are reaped;
then every `worker_binary` child of this process (e.g. one started by TFF's
default context outside `tff_context`) is killed too. An `atexit` hook
kills them all as a last safety net. Workers started with `start_worker` are
the caller's: a context does not kill them; `stop_worker` or the atexit hook
does. `leftover_workers()` lists the `worker_binary` descendants still alive.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterable, Iterator, List, Optional, Sequence, Set

import psutil
from absl import logging

from tfpriv.errors import InsecureWorkerError, WorkerIsolationError, WorkerLost, WorkerUnreachable
from tfpriv.federated import worker as worker_main

_READY_TIMEOUT_S = 60.0
_REMOTE_TIMEOUT_S = 5.0
_KILL_GRACE_S = 5.0
_RELAY_MODULE = 'tfpriv.federated.worker'
# pids of workers started by `start_worker` and not yet stopped: a context leaves them alone.
_STARTED: Set[int] = set()
_GRPC_OPTIONS = [('grpc.max_message_length', 2 * 1000 * 1000 * 1000),
                 ('grpc.max_receive_message_length', 2 * 1000 * 1000 * 1000),
                 ('grpc.max_send_message_length', 2 * 1000 * 1000 * 1000)]


def worker_binary_path() -> str:
    """Path of TFF's C++ `worker_binary` shipped inside the installed package."""
    return worker_main.binary_path()


def parse_workers(spec: str | Sequence[str]) -> List[str]:
    """Parses `'host:port,host:port'` (or a list) into validated `host:port` targets
    (`unix:/absolute/path` names a local worker's Unix socket)."""
    items = spec.split(',') if isinstance(spec, str) else list(spec)
    targets = []
    for item in (i.strip() for i in items):
        if item.startswith('unix:/'):
            targets.append(item)
            continue
        host, sep, port = item.rpartition(':')
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f'worker {item!r} is not host:port with a port in 1..65535')
        targets.append(f'{host}:{int(port)}')
    if not targets:
        raise ValueError('expected at least one worker as host:port')
    if len(set(targets)) != len(targets):
        raise ValueError(f'workers must be distinct, got {targets}')
    return targets


def check_secure_workers(targets: Sequence[str], insecure: bool = False) -> None:
    """Refuses non-loopback worker addresses unless `insecure`.

    Raises:
      InsecureWorkerError: a `host:port` whose host is not localhost, 127.0.0.0/8 or ::1.
    """
    remote = [t for t in targets if not (t.startswith('unix:/')
                                         or worker_main.is_loopback(t.rpartition(':')[0]))]
    if remote and not insecure:
        raise InsecureWorkerError(
            f'worker {remote[0]} is not on loopback: TFF\'s worker channel is plaintext and '
            'unauthenticated, and the worker runs any computation it is sent; reach it through '
            'an SSH tunnel (ssh -L PORT:127.0.0.1:PORT host, then --workers localhost:PORT; see '
            'docs/federated.md) or pass --insecure-workers on a network you trust')


@dataclasses.dataclass
class Worker:
    """A worker process started by this module: the confining relay (`isolated`) or a bare
    `worker_binary`."""

    process: subprocess.Popen
    target: str
    log_path: str
    isolated: bool = True
    socket_dir: Optional[str] = None


def _spawn(argv: List[str], log_path: str, relay: bool) -> subprocess.Popen:
    """`argv` detached from our stdio (log file), own process group, dies with us.

    The relay sets its own `PR_SET_PDEATHSIG` (`--parent-pid`): no `preexec_fn`, so Python can
    spawn without running gRPC's fork handlers in the child (with gRPC threads alive in this
    process those handlers can abort the child before its exec).
    """
    if relay:
        argv = argv + [f'--parent-pid={os.getpid()}']
    with open(log_path, 'ab') as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, close_fds=True, process_group=0,
                                preexec_fn=None if relay else worker_main.die_with_parent,
                                env={**os.environ, 'PYTHONPATH': os.pathsep.join(
                                    filter(None, [_package_root(), os.environ.get('PYTHONPATH')]))})


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_worker(port: Optional[int] = None, log_dir: Optional[str] = None,
                 isolate: bool = True) -> Worker:
    """Starts a TFF worker (see the module docstring); returns it once its process runs.

    Args:
      port: `isolate`: listen on 127.0.0.1:port instead of a private Unix socket;
        not `isolate`: the bare `worker_binary`'s port on all interfaces (picked if None).
      log_dir: where its log file goes (a temporary directory by default).
      isolate: confine it to a private network namespace (the default).
    """
    import portpicker
    log_dir = log_dir or tempfile.gettempdir()
    tag = port or portpicker.pick_unused_port()
    log_path = os.path.join(log_dir, f'tfpriv_tff_worker_{os.getpid()}_{tag}.log')
    socket_dir = None
    if not isolate:
        argv, target = [worker_binary_path(), f'--port={tag}'], f'localhost:{tag}'
    elif port:
        argv, target = [sys.executable, '-m', _RELAY_MODULE, f'--port={port}'], f'127.0.0.1:{port}'
    else:
        socket_dir = tempfile.mkdtemp(prefix='tfpriv-worker-')  # mode 0700
        path = os.path.join(socket_dir, 'worker.sock')
        argv, target = [sys.executable, '-m', _RELAY_MODULE, f'--unix={path}'], f'unix:{path}'
    if isolate:
        argv.append(f'--binary={worker_binary_path()}')
    process = _spawn(argv, log_path, relay=isolate)
    _STARTED.add(process.pid)
    logging.info('started TFF worker pid %d on %s (log %s)', process.pid, target, log_path)
    return Worker(process, target, log_path, isolate, socket_dir)


def stop_worker(worker: Worker, grace_s: float = _KILL_GRACE_S) -> None:
    """SIGINT, then SIGKILL after `grace_s`; always reaps the process."""
    _STARTED.discard(worker.process.pid)
    worker_main.stop(worker.process, grace_s)
    if worker.socket_dir:
        shutil.rmtree(worker.socket_dir, ignore_errors=True)
    logging.info('TFF worker pid %d stopped (exit %s)', worker.process.pid,
                 worker.process.returncode)


def _is_worker_binary(proc: psutil.Process) -> bool:
    cmdline = proc.cmdline()
    return bool(cmdline) and os.path.basename(cmdline[0]) == 'worker_binary'


def leftover_workers(parent_pid: Optional[int] = None, relays: bool = False) -> List[psutil.Process]:
    """`worker_binary` processes (and, with `relays`, `tfpriv.federated.worker` relays) still
    alive among the descendants of `parent_pid` (default: us)."""
    try:
        children = psutil.Process(parent_pid or os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and (
                    _is_worker_binary(child) or (relays and _RELAY_MODULE in child.cmdline())):
                found.append(child)
    return found


def _ours() -> List[psutil.Process]:
    """Our children that are workers: TFF's own `worker_binary`s and the processes
    `start_worker` started (a worker some other code started is not ours)."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.pid in _STARTED or _is_worker_binary(child):
                found.append(child)
    return found


def kill_leftover_workers(grace_s: float = _KILL_GRACE_S, keep: Iterable[int] = ()) -> int:
    """Kills and reaps our worker children (see `_ours`; a relay takes its `worker_binary`
    with it) except the pids in `keep`; returns how many it killed."""
    keep = set(keep)
    procs = [p for p in _ours() if p.pid not in keep]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGINT)
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    if procs:
        logging.info('killed %d leftover TFF worker process(es)', len(procs))
    return len(procs)


def _last_log_line(worker: Worker) -> str:
    with contextlib.suppress(OSError), open(worker.log_path, errors='replace') as log:
        lines = [line.strip() for line in log if line.strip()]
        return lines[-1] if lines else ''
    return ''


def _exited(worker: Worker, when: str) -> RuntimeError:
    """The error for an owned worker whose process has exited."""
    code = worker.process.returncode
    if code == worker_main.EXIT_NO_ISOLATION:
        return WorkerIsolationError(f'{_last_log_line(worker)} (pass --insecure-workers / '
                                    'insecure=True to run it unconfined, on all interfaces)')
    error = WorkerLost if when == 'run' else WorkerUnreachable
    phase = 'during the run' if when == 'run' else 'at start'
    return error(f'TFF worker {worker.target} exited with code {code} {phase}; see {worker.log_path}')


def _wait_ready(channel, target: str, timeout_s: float, worker: Optional[Worker] = None) -> None:
    """Returns once `channel` is connected (an idle one is asked to reconnect)."""
    import grpc
    ready = grpc.channel_ready_future(channel)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                return ready.result(timeout=0.2)
            except grpc.FutureTimeoutError:
                if worker is not None and worker.process.poll() is not None:
                    raise _exited(worker, 'start') from None
                if time.monotonic() > deadline:
                    raise WorkerUnreachable(
                        f'TFF worker {target} not reachable after {timeout_s:g} s') from None
    finally:
        ready.cancel()


def _check_alive(channel, target: str, timeout_s: float, worker: Optional[Worker]) -> None:
    """Before TFF (re)builds an executor: a dead or silent worker is `WorkerLost`, which TFF
    does not retry (it retries UNAVAILABLE forever)."""
    if worker is not None and worker.process.poll() is not None:
        raise _exited(worker, 'run')
    try:
        _wait_ready(channel, target, timeout_s, worker)
    except WorkerUnreachable as error:
        if worker is not None and worker.process.poll() is not None:
            raise _exited(worker, 'run') from error
        raise WorkerLost(f'TFF worker {target} stopped answering during the run '
                         f'({timeout_s:g} s)') from error


def _lenient_dispose_stub(tff, channel):
    """TFF's gRPC stub, except that disposing values on a worker that is gone is a no-op.

    TFF's `RemoteValue`s dispose themselves from `weakref.finalize` hooks, at garbage
    collection or at interpreter exit; after an interrupt that is once the context has
    stopped the worker, whose memory went with it. TFF's stub raises UNAVAILABLE there and
    the hook prints a traceback; every other call still raises.
    """
    from tensorflow_federated.python.core.impl.executors import executors_errors

    class LenientDisposeStub(tff.framework.RemoteExecutorGrpcStub):
        """Dispose and DisposeExecutor succeed when the worker is gone."""

        def dispose(self, request):
            return self._release(super().dispose, request)

        def dispose_executor(self, request):
            return self._release(super().dispose_executor, request)

        @staticmethod
        def _release(rpc, request):
            try:
                return rpc(request)
            except executors_errors.RetryableGRPCError:  # UNAVAILABLE: the worker is gone
                logging.debug('worker gone; nothing to release')
                return None

    return LenientDisposeStub(channel)


def _executor_factory(target: str, timeout_s: float, worker: Optional[Worker] = None):
    """A TFF executor factory whose stacks are `RemoteExecutor`s on `target`."""
    import grpc
    import tensorflow_federated as tff
    channel = grpc.insecure_channel(target, _GRPC_OPTIONS)
    stub = _lenient_dispose_stub(tff, channel)
    _wait_ready(channel, target, timeout_s, worker)

    def stack_fn(cardinalities):
        _check_alive(channel, target, timeout_s, worker)
        cardinalities.setdefault(tff.CLIENTS, 0)
        executor = tff.framework.RemoteExecutor(stub)
        executor.set_cardinalities(cardinalities)
        return executor

    return tff.framework.ResourceManagingExecutorFactory(executor_stack_fn=stack_fn)


def create_context(targets: Sequence[str], timeout_s: float = _REMOTE_TIMEOUT_S,
                   owned: Sequence[Worker] = ()):
    """A TFF sync context executing on the worker services at `targets`."""
    import tensorflow_federated as tff
    by_target = {w.target: w for w in owned}
    factories = [_executor_factory(t, timeout_s, by_target.get(t)) for t in targets]
    kwargs = dict(transform_args=tff.tensorflow.transform_args,
                  transform_result=tff.tensorflow.transform_result)
    if len(factories) == 1:
        return tff.framework.SyncExecutionContext(
            executor_fn=factories[0], compiler_fn=tff.backends.native.desugar_and_transform_to_native,
            **kwargs)
    contexts = [tff.framework.AsyncExecutionContext(
        executor_fn=f, compiler_fn=tff.backends.native.desugar_and_transform_to_native, **kwargs)
        for f in factories]
    return tff.framework.MergeableCompExecutionContext(
        contexts, compiler_fn=tff.backends.native.compile_to_mergeable_comp_form, **kwargs)


def _raise_system_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def tff_context(workers: Optional[Sequence[str]] = None, timeout_s: Optional[float] = None,
                insecure: bool = False) -> Iterator[object]:
    """Installs a TFF execution context for the block and tears it down deterministically.

    Args:
      workers: `host:port` of remote TFF workers; None starts one confined local worker.
      timeout_s: how long to wait for a worker to answer (60 s local, 5 s remote).
      insecure: allow non-loopback workers, and an unconfined local worker where the
        kernel refuses the private network namespace.

    Yields:
      The installed TFF context.
    """
    import tensorflow_federated as tff
    owned: List[Worker] = []
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        yield _install(tff, workers, timeout_s, insecure, owned)
    finally:
        # Back to TFF's lazy default: it starts no process until a computation runs.
        tff.backends.native.set_sync_local_cpp_execution_context()
        for worker in owned:
            stop_worker(worker)
        kill_leftover_workers(keep=_STARTED)
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _install(tff, workers: Optional[Sequence[str]], timeout_s: Optional[float], insecure: bool,
             owned: List[Worker]):
    """Starts (into `owned`) or checks the workers and sets the TFF default context."""
    if workers:
        targets = parse_workers(workers)
        check_secure_workers(targets, insecure)
        context = create_context(targets, timeout_s or _REMOTE_TIMEOUT_S)
    else:
        owned.append(start_worker())
        try:
            context = create_context([owned[0].target], timeout_s or _READY_TIMEOUT_S, owned)
        except WorkerIsolationError as error:
            if not insecure:
                raise
            logging.warning('%s; running an unconfined worker_binary (insecure=True)', error)
            stop_worker(owned.pop())
            owned.append(start_worker(isolate=False))
            context = create_context([owned[0].target], timeout_s or _READY_TIMEOUT_S, owned)
    tff.framework.get_context_stack().set_default_context(context)
    return context


atexit.register(kill_leftover_workers)
