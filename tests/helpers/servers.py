"""Real Hearth processes for tests: `hearth serve` and `hearth engine` started
as a user would start them, on free loopback ports."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc

HEARTH = [sys.executable, "-m", "hearth"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def responses_db_beside(config_file: Path) -> Path:
    return config_file.parent / "responses.sqlite3"


def base_env(models_dir: Path, config_file: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_")}
    env.update(
        LLM_MODELS_DIR=str(models_dir),
        LLM_CONFIG_FILE=str(config_file),
        # Stored Responses API responses beside the config file, not in the user's data folder.
        LLM_RESPONSES_DB=str(responses_db_beside(config_file)),
        PYTHONUNBUFFERED="1",
        # Tests must not reach for the network through a proxy.
        no_proxy="127.0.0.1,localhost",
        NO_PROXY="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


def wait_for_grpc(address: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise TimeoutError(f"engine at {address} did not become healthy")


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 20.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                for child in self.descendants():
                    child.kill()
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


class EngineProcess(Process):
    def __init__(self, models_dir: Path, config_file: Path, log_path: Path, **env: str):
        self.address = f"127.0.0.1:{free_port()}"
        super().__init__(
            HEARTH + ["engine", "--engine-address", self.address],
            base_env(models_dir, config_file, **env),
            log_path,
        )
        try:
            wait_for_grpc(self.address)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"engine did not start:\n{self.log()}")


class HearthServer(Process):
    """`hearth serve` with its own ports."""

    def __init__(self, models_dir: Path, config_file: Path, log_path: Path, **env: str):
        self.port = free_port()
        self.engine_address = f"127.0.0.1:{free_port()}"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.responses_db = responses_db_beside(config_file)
        super().__init__(
            HEARTH + ["serve", "--port", str(self.port), "--engine-address", self.engine_address],
            base_env(models_dir, config_file, **env),
            log_path,
        )
        try:
            self.wait_healthy()
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"hearth serve did not start:\n{self.log()}")

    def health_status(self) -> int | None:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=5).status_code
        except httpx.TransportError:
            return None

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise TimeoutError("hearth serve exited")
            if self.health_status() == 200:
                return
            time.sleep(0.2)
        raise TimeoutError("hearth serve did not become healthy")

    def engine_pid(self) -> int:
        children = [p for p in self.descendants() if p.cmdline()[1:4] == ["-m", "hearth", "engine"]]
        assert len(children) == 1, children
        return children[0].pid


def watch_events_during(address: str, action, settle: float = 1.0) -> list[pb.WatchEventsResponse]:
    """The engine's WatchEvents messages received while ``action`` runs (and ``settle`` seconds after)."""
    events: list[pb.WatchEventsResponse] = []
    with grpc.insecure_channel(address) as channel:
        call = engine_pb2_grpc.EngineStub(channel).WatchEvents(pb.WatchEventsRequest())

        def read():
            try:
                for event in call:
                    if not event.replayed:  # the engine's past, from before the action
                        events.append(event)
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.3)
        action()
        time.sleep(settle)
        call.cancel()
        reader.join(5)
    return events


def finished_requests(events: list[pb.WatchEventsResponse]) -> list[pb.RequestFinished]:
    return [e.request_finished for e in events if e.HasField("request_finished")]


def cancelled_during(engine_address: str, action, settle: float = 2.0) -> list:
    """The requests the engine recorded as cancelled while ``action`` ran (at least one)."""
    events = watch_events_during(engine_address, action, settle=settle)
    cancelled = [f for f in finished_requests(events) if f.outcome == pb.REQUEST_OUTCOME_CANCELLED]
    assert cancelled, [str(e) for e in events]
    return cancelled
