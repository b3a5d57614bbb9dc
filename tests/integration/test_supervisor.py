"""`hearth serve` as a process: engine crashes are survived, SIGTERM and Ctrl-C leave nothing behind."""

import os
import signal
import time

import httpx
import psutil
import pytest

from tests.helpers.models import TINY_MODEL_ID
from tests.helpers.servers import HearthServer


@pytest.fixture
def tiny_only(tmp_path, models_dir):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / f"{TINY_MODEL_ID}.gguf").symlink_to(models_dir / f"{TINY_MODEL_ID}.gguf")
    return folder


def chat(server: HearthServer) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/chat/completions",
        json={"model": TINY_MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        timeout=30,
    )


def test_engine_crash_gives_503_then_recovers(tiny_only, tmp_path):
    server = HearthServer(tiny_only, tmp_path / "config.json", tmp_path / "serve.log")
    try:
        assert chat(server).status_code == 200
        first_engine = server.engine_pid()
        os.kill(first_engine, signal.SIGKILL)
        # While the engine is down the adapter answers 503 in the OpenAI shape.
        saw_503 = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not saw_503:
            response = chat(server)
            if response.status_code == 503:
                saw_503 = True
                assert response.json()["error"]["code"] == "engine_unavailable"
            time.sleep(0.05)
        assert saw_503
        assert server.health_status() in (503, 200)
        # ...and then it is back, with a new engine process.
        server.wait_healthy(timeout=30)
        assert chat(server).status_code == 200
        assert server.engine_pid() != first_engine
        assert "restarting" in server.log()
    finally:
        server.stop()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_leaves_no_process(tiny_only, tmp_path, stop_signal):
    server = HearthServer(tiny_only, tmp_path / "config.json", tmp_path / "serve.log")
    assert chat(server).status_code == 200
    processes = [psutil.Process(server.pid), *server.descendants()]
    assert len(processes) >= 2
    server.popen.send_signal(stop_signal)
    assert server.popen.wait(30) == 0
    gone, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, alive
    assert server.health_status() is None
    server.stop()
