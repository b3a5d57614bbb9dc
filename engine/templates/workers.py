"""Worker processes for work that must be stoppable: a Python thread cannot be
killed, so untrusted chat templates (which may loop for ever, or compute for
ever inside one C call) run in child processes. A worker that runs past its
deadline is killed and replaced; one that exhausts its memory limit fails that
call only. Requests and replies are length-prefixed JSON frames over pipes."""

import contextlib
import json
import os
import selectors
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable

# Address space of a worker process (Linux): a template that allocates more fails.
WORKER_MEMORY_BYTES = 1 << 30
_LENGTH = struct.Struct(">I")


class WorkerFailed(Exception):
    """A render could not be done by a worker process."""


class WorkerTimeout(WorkerFailed):
    pass


class WorkerGone(WorkerFailed):
    """The worker exited (killed by its memory limit, say) or answered nonsense."""


class WorkersBusy(WorkerFailed):
    pass


class PoolClosed(WorkerFailed):
    pass


def _frame(payload: dict) -> bytes:
    # Values JSON has no type for (a set, bytes) travel as their text rather than fail the call.
    data = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    return _LENGTH.pack(len(data)) + data


def _parse_frame(data: bytes) -> dict:
    return json.loads(data.decode("utf-8", "surrogatepass"))


# The worker's command line names it for what it is; the module to run comes
# through the environment (tools that find "the engine" by its command line
# must not mistake a worker for it).
_WORKER_BOOTSTRAP = (
    "import importlib, os, sys; "
    "sys.exit(importlib.import_module(os.environ.pop('HEARTH_TEMPLATE_WORKER')).run_worker(int(sys.argv[2])))"
)


class _Worker:
    def __init__(self, worker_module: str):
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOTSTRAP, "hearth-template-worker", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env={**os.environ, "HEARTH_TEMPLATE_WORKER": worker_module},
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._out = self.process.stdin.fileno()
        self._in = self.process.stdout.fileno()
        os.set_blocking(self._out, False)
        os.set_blocking(self._in, False)

    def _wait(self, fd: int, event: int, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkerTimeout()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, event)
            if not selector.select(remaining):
                raise WorkerTimeout()

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            self._wait(self._out, selectors.EVENT_WRITE, deadline)
            try:
                written = os.write(self._out, view)
            except BlockingIOError:
                continue
            except OSError as exc:  # the worker is gone
                raise WorkerGone() from exc
            view = view[written:]

    def _receive(self, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while n:
            self._wait(self._in, selectors.EVENT_READ, deadline)
            try:
                chunk = os.read(self._in, min(n, 1 << 20))
            except BlockingIOError:
                continue
            if not chunk:
                raise WorkerGone()
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def call(self, request: dict, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        self._send(_frame(request), deadline)
        (length,) = _LENGTH.unpack(self._receive(_LENGTH.size, deadline))
        try:
            reply = _parse_frame(self._receive(length, deadline))
        except ValueError as exc:
            raise WorkerGone() from exc
        if not isinstance(reply, dict):
            raise WorkerGone()
        return reply

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


class WorkerPool:
    """At most ``size`` worker processes running ``worker_module``.run_worker, reused between calls."""

    def __init__(self, size: int, worker_module: str):
        self._size = size
        self._worker_module = worker_module
        self._idle: list[_Worker] = []
        self._count = 0
        self._closed = False
        self._cond = threading.Condition()

    def _take(self, deadline: float) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed()
                if self._idle:
                    return self._idle.pop()
                if self._count < self._size:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkersBusy()
                self._cond.wait(remaining)
        try:
            return _Worker(self._worker_module)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def call(self, request: dict, timeout: float) -> dict:
        worker = self._take(time.monotonic() + timeout)
        healthy = False
        try:
            reply = worker.call(request, timeout)
            healthy = True
            return reply
        finally:
            with self._cond:
                if healthy and not self._closed:
                    self._idle.append(worker)
                else:
                    self._count -= 1
                self._cond.notify()
            if not healthy or self._closed:
                worker.kill()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()



# The worker process side.


def _exit_with_parent(parent_pid: int) -> None:
    """A worker outlives no engine: it exits once its parent is gone, even mid-render.
    (Not PR_SET_PDEATHSIG: that fires when the spawning thread ends, not the process.)"""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _limit_resources() -> None:
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        if sys.platform.startswith("linux"):
            resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _read_exactly(stream, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data



def serve_requests(handle: Callable[[dict], dict], parent_pid: int) -> int:
    """A worker's main loop: frames in on stdin, ``handle``'s replies out on stdout, until stdin closes."""
    _exit_with_parent(parent_pid)
    _limit_resources()
    # The protocol owns stdout; anything printed goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    incoming = sys.stdin.buffer
    while True:
        header = _read_exactly(incoming, _LENGTH.size)
        if header is None:
            return 0  # the engine closed the pipe: it is stopping
        body = _read_exactly(incoming, _LENGTH.unpack(header)[0])
        if body is None:
            return 0
        try:
            reply = handle(_parse_frame(body))
        except MemoryError:
            reply = {"ok": False, "error": "the model's chat template used too much memory"}
        try:
            frame = _frame(reply)
        except MemoryError:
            frame = _frame({"ok": False, "error": "the model's chat template used too much memory"})
        out.write(frame)
        out.flush()
