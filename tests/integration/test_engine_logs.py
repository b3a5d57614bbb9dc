"""WatchLogs: the engine's own log lines as a watcher (the desktop's log view)
gets them — live as they are written, the recent past replayed to a new
watcher, each with its level and logger."""

import threading
import time

from hearth.client import EngineCallError, EngineClient
from hearth.engine.llama.tiny_model import write_tiny_llama
from hearth.engine.v1 import engine_pb2 as pb
from tests.helpers.servers import EngineProcess


def collect(client: EngineClient, lines: list):
    """Starts a watch whose lines land in ``lines``; the call, to cancel."""
    call = client.watch_logs()

    def read() -> None:
        try:
            for line in call:
                lines.append(line)
        except EngineCallError:
            pass  # cancelled by the test

    threading.Thread(target=read, daemon=True).start()
    return call


def wait_for(lines: list, predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in list(lines) if predicate(line)]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no such log line among {[line.message for line in lines][-20:]}")


def test_log_lines_arrive_live_and_a_new_watcher_gets_the_recent_ones(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / "tiny.gguf", seed=1)
    (models / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00 not a model")
    engine = EngineProcess(models, tmp_path / "config.json", tmp_path / "engine.log")
    try:
        with EngineClient(engine.address) as client:
            lines: list[pb.LogLine] = []
            first = collect(client, lines)
            # The start-up lines were written before this watch: replayed, oldest first.
            listening = wait_for(lines, lambda line: "engine listening on" in line.message)
            assert listening.replayed and listening.level == pb.LOG_LEVEL_INFO
            assert listening.logger == "hearth.engine.rpc.server" and listening.timestamp > 0
            client.load_model("tiny", timeout=60)
            loaded = wait_for(lines, lambda line: line.message.startswith("loaded tiny"))
            assert not loaded.replayed and loaded.logger == "hearth.engine.runtime.runtime"
            client.list_models(timeout=30)
            warned = wait_for(lines, lambda line: "broken.gguf" in line.message)
            assert warned.level == pb.LOG_LEVEL_WARNING
            first.cancel()
            # A second watcher gets the load's line from the past.
            again: list[pb.LogLine] = []
            second = collect(client, again)
            assert wait_for(again, lambda line: line.message.startswith("loaded tiny")).replayed
            second.cancel()
    finally:
        engine.stop()
    # The engine's own log file has the same lines.
    assert "loaded tiny" in engine.log()
