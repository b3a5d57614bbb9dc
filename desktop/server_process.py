"""The `hearth serve` the window starts when no engine answers, and stops again.

Only a server this window started is ever stopped by it: one the user runs in a
terminal is theirs. Start and stop never wait: the render loop polls ``check``."""

import logging
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

# `hearth serve` stops its adapter and then its engine on SIGTERM; give it time to.
STOP_GRACE_SECONDS = 15.0


class ServerProcess:
    def __init__(self, command: tuple[str, ...], log_path: Path):
        self.command = command
        self.log_path = log_path
        self._popen: subprocess.Popen | None = None
        self._stop_deadline: float | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def stopping(self) -> bool:
        return self.running and self._stop_deadline is not None

    def start(self) -> int:
        """Starts the server; returns its pid. Raises OSError when it cannot be run."""
        if self.running:
            assert self._popen is not None
            return self._popen.pid
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._popen = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C in the terminal that ran `hearth desktop` reaches the
                # window, which then stops the server in order, instead of killing both at once.
                start_new_session=True,
                # No preexec_fn (such as PR_SET_PDEATHSIG): it forces a real fork(), which
                # gRPC's fork handlers, busy on the link's thread, log errors about. Should the
                # window be killed outright, the server keeps serving, and the next window uses it.
            )
        self._stop_deadline = None
        self.starts += 1
        log.info("started `%s` (pid %d), log in %s", " ".join(self.command[2:]), self._popen.pid, self.log_path)
        return self._popen.pid

    def request_stop(self) -> None:
        """SIGTERM without waiting; ``check`` kills it if it outlives the grace period."""
        if self.running:
            assert self._popen is not None
            self._popen.terminate()
            self._stop_deadline = time.monotonic() + STOP_GRACE_SECONDS

    def check(self) -> int | None:
        """The exit code once the process has ended (once per start), else None. Cheap; call it often."""
        if self._popen is None:
            return None
        code = self._popen.poll()
        if code is None:
            if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
                log.warning("the server did not stop in %.0fs; killing it", STOP_GRACE_SECONDS)
                self._popen.kill()
            return None
        self._popen = None
        self._stop_deadline = None
        return code

    def stop_and_wait(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """For the window closing: stop the server and wait for it to be gone."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("the server did not stop in %.0fs; killing it", timeout)
                self._popen.kill()
                self._popen.wait()
        log.info("stopped the server this window started")
        self._popen = None
