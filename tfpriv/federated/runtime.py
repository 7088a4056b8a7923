"""TFF execution contexts with deterministic shutdown of their `worker_binary` processes.

TensorFlow Federated 0.87 executes every computation in a C++ `worker_binary`
process reached over gRPC. Its default local context starts that process
lazily, lets it inherit the parent's stdout/stderr, and kills it only in a
`__del__` that interpreter exit may skip: the worker can outlive Python and
keep a CI pipe open forever.

`tff_context()` replaces that with workers this module owns:

* Local mode (`workers=None`): one `worker_binary` is started on loopback with
  stdin/stdout on `/dev/null`, stderr to a log file (never the parent's
  pipes), in its own process group, and with `PR_SET_PDEATHSIG=SIGKILL`, so
  the kernel kills it even when Python itself is killed with `kill -9`.
* Remote mode (`workers=['host:port', ...]`): TFF's own remote execution. One
  worker gets a `SyncExecutionContext` over a gRPC `RemoteExecutor`; several
  get TFF's `MergeableCompExecutionContext`, which splits the clients of each
  round into one sub-round per worker and merges the partial aggregates. The
  workers are the same `worker_binary` started elsewhere (`start_worker`
  starts one, e.g. for tests on loopback); they are not ours to kill.

On leaving the context (normally, by exception, by `KeyboardInterrupt`, or by
SIGTERM, which is turned into `SystemExit` while the context is active) the
owned workers get SIGINT, then SIGKILL after a grace period, and are reaped;
then every remaining `worker_binary` descendant of this process (e.g. one
started by TFF's default context outside `tff_context`) is killed too. An
`atexit` hook kills them all as a last safety net. Workers started with
`start_worker` (e.g. remote workers on loopback) are the caller's: a context
does not kill them; `stop_worker` or the atexit hook does. `leftover_workers()` lists
the `worker_binary` descendants still alive.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import tempfile
import threading
import time
from typing import Iterable, Iterator, List, Optional, Sequence, Set

import psutil
from absl import logging

_READY_TIMEOUT_S = 60.0
_KILL_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1
# pids of workers started by `start_worker` and not yet stopped: a context leaves them alone.
_STARTED: Set[int] = set()
_GRPC_OPTIONS = [('grpc.max_message_length', 2 * 1000 * 1000 * 1000),
                 ('grpc.max_receive_message_length', 2 * 1000 * 1000 * 1000),
                 ('grpc.max_send_message_length', 2 * 1000 * 1000 * 1000)]


def worker_binary_path() -> str:
    """Path of TFF's C++ `worker_binary` shipped inside the installed package."""
    import tensorflow_federated
    path = os.path.join(os.path.dirname(tensorflow_federated.__file__), 'data', 'worker_binary')
    if not os.path.isfile(path):
        raise RuntimeError(f'TensorFlow Federated worker binary not found at {path}; '
                           'reinstall tensorflow-federated==0.87.0')
    return path


def parse_workers(spec: str | Sequence[str]) -> List[str]:
    """Parses `'host:port,host:port'` (or a list) into validated `host:port` targets."""
    items = spec.split(',') if isinstance(spec, str) else list(spec)
    targets = []
    for item in (i.strip() for i in items):
        host, sep, port = item.rpartition(':')
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f'worker {item!r} is not host:port with a port in 1..65535')
        targets.append(f'{host}:{int(port)}')
    if not targets:
        raise ValueError('expected at least one worker as host:port')
    if len(set(targets)) != len(targets):
        raise ValueError(f'workers must be distinct, got {targets}')
    return targets


try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not after fork()
except (OSError, AttributeError):  # not Linux: no parent-death signal
    _PRCTL = None


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the parent dies (Linux prctl)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclasses.dataclass
class Worker:
    """A `worker_binary` process started by this module."""

    process: subprocess.Popen
    port: int
    log_path: str

    @property
    def target(self) -> str:
        return f'localhost:{self.port}'


def start_worker(port: Optional[int] = None, log_dir: Optional[str] = None) -> Worker:
    """Starts a `worker_binary` serving TFF's executor service on `port` (picked if None).

    The process never holds this process's stdout/stderr: its output goes to a
    log file in `log_dir` (a temporary directory by default).
    """
    import portpicker
    port = port or portpicker.pick_unused_port()
    log_dir = log_dir or tempfile.gettempdir()
    log_path = os.path.join(log_dir, f'tfpriv_tff_worker_{os.getpid()}_{port}.log')
    with open(log_path, 'ab') as log:
        process = subprocess.Popen([worker_binary_path(), f'--port={port}'],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=log, close_fds=True, process_group=0,
                                   preexec_fn=_die_with_parent)
    _STARTED.add(process.pid)
    logging.info('started TFF worker_binary pid %d on port %d (log %s)', process.pid, port,
                 log_path)
    return Worker(process, port, log_path)


def stop_worker(worker: Worker, grace_s: float = _KILL_GRACE_S) -> None:
    """SIGINT, then SIGKILL after `grace_s`; always reaps the process."""
    process = worker.process
    _STARTED.discard(process.pid)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    logging.info('TFF worker_binary pid %d stopped (exit %s)', process.pid, process.returncode)


def leftover_workers(parent_pid: Optional[int] = None) -> List[psutil.Process]:
    """`worker_binary` processes still alive among the descendants of `parent_pid` (default: us)."""
    try:
        children = psutil.Process(parent_pid or os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and any(
                    'worker_binary' in part for part in child.cmdline()):
                found.append(child)
    return found


def kill_leftover_workers(grace_s: float = _KILL_GRACE_S, keep: Iterable[int] = ()) -> int:
    """Kills and reaps every `worker_binary` descendant of this process except the pids in
    `keep`; returns how many it killed."""
    keep = set(keep)
    procs = [p for p in leftover_workers() if p.pid not in keep]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGINT)
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    if procs:
        logging.info('killed %d leftover TFF worker_binary process(es)', len(procs))
    return len(procs)


def _wait_ready(stub, target: str, timeout_s: float, worker: Optional[Worker] = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not stub.is_ready:
        if worker is not None and worker.process.poll() is not None:
            raise RuntimeError(f'TFF worker_binary on {target} exited with code '
                               f'{worker.process.returncode}; see {worker.log_path}')
        if time.monotonic() > deadline:
            raise RuntimeError(f'TFF worker {target} not reachable after {timeout_s:.0f} s')
        time.sleep(0.2)


def _executor_factory(target: str, timeout_s: float, worker: Optional[Worker] = None):
    """A TFF executor factory whose stacks are `RemoteExecutor`s on `target`."""
    import grpc
    import tensorflow_federated as tff
    stub = tff.framework.RemoteExecutorGrpcStub(grpc.insecure_channel(target, _GRPC_OPTIONS))
    _wait_ready(stub, target, timeout_s, worker)

    def stack_fn(cardinalities):
        cardinalities.setdefault(tff.CLIENTS, 0)
        executor = tff.framework.RemoteExecutor(stub)
        executor.set_cardinalities(cardinalities)
        return executor

    return tff.framework.ResourceManagingExecutorFactory(executor_stack_fn=stack_fn)


def create_context(targets: Sequence[str], timeout_s: float = _READY_TIMEOUT_S,
                   owned: Sequence[Worker] = ()):
    """A TFF sync context executing on the `worker_binary` services at `targets`."""
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
def tff_context(workers: Optional[Sequence[str]] = None,
                timeout_s: float = _READY_TIMEOUT_S) -> Iterator[object]:
    """Installs a TFF execution context for the block and tears it down deterministically.

    Args:
      workers: `host:port` of remote TFF workers; None starts one local worker.
      timeout_s: how long to wait for each worker to answer.

    Yields:
      The installed TFF context.
    """
    import tensorflow_federated as tff
    owned: List[Worker] = []
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        if workers:
            targets = parse_workers(workers)
        else:
            owned.append(start_worker())
            targets = [owned[0].target]
        context = create_context(targets, timeout_s, owned)
        tff.framework.get_context_stack().set_default_context(context)
        yield context
    finally:
        # Back to TFF's lazy default: it starts no process until a computation runs.
        tff.backends.native.set_sync_local_cpp_execution_context()
        for worker in owned:
            stop_worker(worker)
        kill_leftover_workers(keep=_STARTED)
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


atexit.register(kill_leftover_workers)
