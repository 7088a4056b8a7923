"""A TFF worker that only this host can reach: `python -m tfpriv.federated.worker --port N`.

TensorFlow Federated 0.87 runs every computation in its C++ `worker_binary`,
which serves an unauthenticated, unencrypted gRPC executor service on
`[::]:PORT`, i.e. on every network interface (`--port` is its only address
flag), and executes whatever computation it is sent; TensorFlow graphs can
read and write files. This module confines it with the kernel instead of
trusting it:

1. bind the listener in the host's network namespace, on an address only this
   host reaches: a Unix socket (`--unix PATH`, what local runs use; its
   directory is private to the user) or TCP `127.0.0.1:PORT` (`--port`);
2. `unshare(CLONE_NEWUSER | CLONE_NEWNET)`: a new network namespace, owned by
   a new unprivileged user namespace, whose only interface is a loopback
   device with no route anywhere (`man 7 network_namespaces`);
3. start `worker_binary` inside it (it dies with this process,
   `PR_SET_PDEATHSIG`), so its `[::]:PORT` is that namespace's loopback;
4. copy the bytes of every accepted connection to it and back.

The relay runs until SIGTERM or SIGINT (then it stops the worker: SIGINT,
SIGKILL after a grace period, reaped; exit 0) or until the worker exits (exit
1). A worker on another host is reached through an SSH tunnel to its
`127.0.0.1:PORT` (docs/federated.md). Standard library only: a local run
starts this file without importing TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import importlib.util
import ipaddress
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import List, Optional, Sequence

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_PR_SET_PDEATHSIG = 1
_INNER_PORT = 10000  # any port: the private namespace has no other listener
_READY_TIMEOUT_S = 60.0
_KILL_GRACE_S = 5.0
_CHUNK = 1 << 20
EXIT_WORKER_DIED = 1
EXIT_USAGE = 2
EXIT_NO_ISOLATION = 3
READY = 'tfpriv TFF worker ready on'

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)  # resolved here, not after fork()
except OSError:  # not Linux
    _LIBC = None


class _Stop(Exception):
    """SIGTERM or SIGINT reached the relay."""


def binary_path() -> str:
    """Path of TFF's `worker_binary`, found without importing TensorFlow Federated."""
    spec = importlib.util.find_spec('tensorflow_federated')
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError('tensorflow_federated is not installed')
    path = os.path.join(list(spec.submodule_search_locations)[0], 'data', 'worker_binary')
    if not os.path.isfile(path):
        raise RuntimeError(f'TensorFlow Federated worker binary not found at {path}; '
                           'reinstall tensorflow-federated==0.87.0')
    return path


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (no name is resolved)."""
    host = host.strip('[]')
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def die_with_parent() -> None:
    """Runs in a child before exec: SIGKILL it when its parent dies (Linux prctl)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def enter_private_network() -> None:
    """Moves this (single-threaded) process into a new user + network namespace whose
    only interface, loopback, is up.

    Raises:
      OSError: the kernel refused (unprivileged user namespaces disabled, seccomp, ...).
    """
    if _LIBC is None or _LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        errno = ctypes.get_errno() if _LIBC is not None else 38
        raise OSError(errno, f'unshare(CLONE_NEWUSER | CLONE_NEWNET): {os.strerror(errno)}')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack('16sH22x', b'lo', 0)
        flags = struct.unpack('16sH', fcntl.ioctl(sock, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack('16sH22x', b'lo', flags | _IFF_UP))


def listen(port: Optional[int] = None, unix: Optional[str] = None) -> socket.socket:
    """The relay's listener: TCP on 127.0.0.1:`port` or a Unix socket at `unix` (mode 0600)."""
    if unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(unix)
        old = os.umask(0o177)
        try:
            sock.bind(unix)
        finally:
            os.umask(old)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('127.0.0.1', port))
    sock.listen(64)
    return sock


def _start_binary(binary: str) -> subprocess.Popen:
    """`worker_binary` on the private namespace's port; its output goes to our stderr. Its own
    process group: a terminal's Ctrl-C reaches only the relay, which then stops it."""
    return subprocess.Popen([binary, f'--port={_INNER_PORT}'], stdin=subprocess.DEVNULL,
                            stdout=sys.stderr, stderr=sys.stderr, close_fds=True,
                            process_group=0, preexec_fn=die_with_parent)


def _connect_inner() -> socket.socket:
    return socket.create_connection(('127.0.0.1', _INNER_PORT))


def _wait_listening(worker: subprocess.Popen, timeout_s: float) -> None:
    """Returns once `worker` accepts TCP connections (it exits or times out: RuntimeError)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if worker.poll() is not None:
            raise RuntimeError(f'worker_binary exited with code {worker.returncode} at start')
        try:
            _connect_inner().close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f'worker_binary not listening after {timeout_s:.0f} s') from None
            time.sleep(0.1)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copies `source` to `sink` until either side closes."""
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with contextlib.suppress(OSError):
        while True:
            size = source.recv_into(buffer)
            if not size:
                break
            sink.sendall(view[:size])
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _relay(client: socket.socket) -> None:
    """One connection: client <-> worker, both directions, then both sockets closed."""
    try:
        inner = _connect_inner()
    except OSError:
        client.close()
        return
    back = threading.Thread(target=_pump, args=(inner, client), daemon=True)
    back.start()
    _pump(client, inner)
    back.join()
    client.close()
    inner.close()


def stop(worker: subprocess.Popen, grace_s: float = _KILL_GRACE_S) -> None:
    """SIGINT, then SIGKILL after `grace_s`; always reaps."""
    if worker.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGINT)
        try:
            worker.wait(grace_s)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _raise_stop(signum, frame) -> None:
    raise _Stop(signum)


def _serve_loop(listener: socket.socket, worker: subprocess.Popen) -> int:
    """Accepts and relays until a signal (0) or the worker's exit (EXIT_WORKER_DIED)."""
    wake_read, wake_write = os.pipe()
    threading.Thread(target=lambda: (worker.wait(), os.write(wake_write, b'x')),
                     daemon=True).start()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    try:
        while worker.poll() is None:
            for key, _ in selector.select():
                if key.fileobj is listener:
                    client, _ = listener.accept()
                    threading.Thread(target=_relay, args=(client,), daemon=True).start()
    except _Stop:
        return 0
    finally:
        stop(worker)
    sys.stderr.write(f'tfpriv worker: worker_binary exited with code {worker.returncode}\n')
    return EXIT_WORKER_DIED


def serve(port: Optional[int] = None, unix: Optional[str] = None,
          binary: Optional[str] = None) -> int:
    """Runs the confined worker (module docstring) until stopped; returns the exit status."""
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        listener = listen(port, unix)
    except OSError as error:
        sys.stderr.write(f'tfpriv worker: cannot listen on {unix or f"127.0.0.1:{port}"}: '
                         f'{error.strerror or error}\n')
        return EXIT_USAGE
    try:
        enter_private_network()
    except OSError as error:
        sys.stderr.write(f'tfpriv worker: cannot confine worker_binary to a private network '
                         f'namespace: {error.strerror}\n')
        return EXIT_NO_ISOLATION
    worker = _start_binary(binary or binary_path())
    try:
        _wait_listening(worker, _READY_TIMEOUT_S)
    except (RuntimeError, _Stop) as error:
        stop(worker)
        sys.stderr.write(f'tfpriv worker: {error}\n' if isinstance(error, RuntimeError) else '')
        return EXIT_WORKER_DIED if isinstance(error, RuntimeError) else 0
    sys.stdout.write(f'{READY} {"unix:" + unix if unix else f"127.0.0.1:{port}"} '
                     f'(pid {os.getpid()}, worker_binary pid {worker.pid})\n')
    sys.stdout.flush()
    return _serve_loop(listener, worker)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m tfpriv.federated.worker (--port N | --unix PATH) [--binary PATH]`."""
    parser = argparse.ArgumentParser(
        prog='python -m tfpriv.federated.worker',
        description='A long-lived TFF worker reachable only from this host (127.0.0.1:PORT or '
                    'a Unix socket); stop it with SIGTERM or Ctrl-C. Reach it from another '
                    'host through an SSH tunnel (docs/federated.md).')
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument('--port', type=int, help='listen on 127.0.0.1:PORT (1..65535)')
    where.add_argument('--unix', help='listen on this Unix socket path (created mode 0600)')
    parser.add_argument('--binary', help='worker_binary to run (default: the installed TFF one)')
    parser.add_argument('--parent-pid', type=int, default=None,
                        help='die with this process (set by tfpriv for the workers it owns)')
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent()
        if os.getppid() != args.parent_pid:  # the parent died before the prctl took effect
            return EXIT_WORKER_DIED
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f'--port must be in 1..65535, got {args.port}')
    try:
        binary = args.binary or binary_path()
    except RuntimeError as error:
        parser.error(str(error))
    return serve(args.port, args.unix, binary)


if __name__ == '__main__':
    sys.exit(main())
