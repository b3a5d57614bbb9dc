"""The desktop window's actions, without a display or an engine: starting the
server when none answers, the playground request, the file actions, saving
settings."""

import json
import sys
import time
from pathlib import Path

import pytest

from hearth.desktop import messages as msg
from hearth.desktop.config import DesktopConfig, desktop_config, rest_url
from hearth.desktop.controller import DesktopController
from hearth.desktop.settings_form import SettingsValues
from hearth.engine.v1 import engine_pb2 as pb

# Stands in for `hearth serve`: runs until it is sent SIGTERM.
SLEEPER = (sys.executable, "-c", "import time; time.sleep(60)")


class FakeLink:
    def __init__(self, engine_address, rest_url, outbox, api_key="", tls=None):
        self.outbox = outbox
        self.api_key = api_key
        self.rest_url = rest_url
        self.calls: list[tuple] = []

    def start(self):
        self.calls.append(("start",))

    def close(self):
        self.calls.append(("close",))

    def refresh(self):
        self.calls.append(("refresh",))

    def set_api_key(self, key):
        self.api_key = key

    def set_rest_url(self, url):
        self.rest_url = url

    def load_model(self, model_id):
        self.calls.append(("load", model_id))

    def unload_model(self, model_id):
        self.calls.append(("unload", model_id))

    def generate(self, chat_id, request):
        self.calls.append(("generate", chat_id, request))

    def cancel_generation(self, chat_id):
        self.calls.append(("cancel", chat_id))


def make_config(tmp_path: Path, **overrides) -> DesktopConfig:
    values = dict(
        engine_address="127.0.0.1:1",
        rest_url="http://127.0.0.1:2",
        models_dir=tmp_path / "models",
        config_file=tmp_path / "config.json",
        serve_command=SLEEPER,
        server_log=tmp_path / "serve.log",
    )
    values.update(overrides)
    return DesktopConfig(**values)


@pytest.fixture
def controller(tmp_path):
    made = DesktopController(make_config(tmp_path), link_factory=FakeLink)
    yield made
    made.server.stop_and_wait(5)


def pump_until(controller: DesktopController, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        controller.pump()
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_no_engine_starts_a_server_once_and_says_so(controller):
    controller.inbox.put(msg.EngineUnavailable("unavailable: connection refused", nothing_listening=True))
    controller.pump()
    assert controller.server.running and controller.owns_server
    assert "No engine answered at 127.0.0.1:1; started `hearth serve` in the background" in (
        controller.state.notices.latest.text
    )
    pid = controller.server.pid
    controller.inbox.put(msg.EngineUnavailable("unavailable: connection refused", nothing_listening=True))
    controller.pump()
    assert controller.server.pid == pid and controller.server.starts == 1

    controller.stop_server()
    pump_until(controller, lambda: not controller.server.running)
    pump_until(controller, lambda: "has stopped" in controller.state.notices.latest.text)


def test_an_engine_answering_with_an_error_is_not_replaced(controller):
    controller.inbox.put(msg.EngineUnavailable("unauthenticated: bad key", nothing_listening=False))
    controller.pump()
    assert not controller.server.running


def test_no_start_server_only_says_how_to_start_one(tmp_path):
    controller = DesktopController(make_config(tmp_path, start_server=False), link_factory=FakeLink)
    controller.inbox.put(msg.EngineUnavailable("unavailable", nothing_listening=True))
    controller.pump()
    assert not controller.server.running
    assert controller.state.notices.latest.level == "warning"


def test_a_server_that_dies_is_reported(tmp_path):
    failing = (sys.executable, "-c", "raise SystemExit(3)")
    controller = DesktopController(make_config(tmp_path, serve_command=failing), link_factory=FakeLink)
    controller.start_server()
    pump_until(controller, lambda: "exited with code 3" in controller.state.notices.latest.text)
    assert controller.state.notices.latest.level == "error"


def test_the_window_does_not_stop_a_server_it_did_not_start(controller):
    controller.stop_server()
    assert "did not start" in controller.state.notices.latest.text


def test_shutdown_stops_the_server_it_started(controller):
    controller.start_server()
    process = controller.server._popen
    controller.shutdown()
    assert process.poll() is not None
    assert ("close",) in controller.link.calls


def test_start_server_picks_up_saved_settings(tmp_path):
    reloaded = make_config(tmp_path, rest_url="http://127.0.0.1:9999")
    controller = DesktopController(make_config(tmp_path), reload_config=lambda: reloaded, link_factory=FakeLink)
    try:
        controller.start_server()
        assert controller.state.rest_url == "http://127.0.0.1:9999"
        assert controller.link.rest_url == "http://127.0.0.1:9999"
    finally:
        controller.server.stop_and_wait(5)


def test_a_chat_sends_the_history_with_system_prompt_and_options(controller):
    assert controller.send_chat("m", "  Hello  ", system_prompt="Be brief.", max_tokens=32, temperature=0.5)
    _, chat_id, request = controller.link.calls[-1]
    assert request.model == "m"
    assert [(m.role, m.content) for m in request.messages] == [("system", "Be brief."), ("user", "Hello")]
    assert request.max_tokens == 32 and request.temperature == pytest.approx(0.5)
    assert not controller.send_chat("m", "again")  # one stream at a time
    controller.inbox.put(msg.ChatDelta(chat_id, "Hi."))
    controller.inbox.put(msg.ChatEnded(chat_id, finish_reason="stop", prompt_tokens=5, completion_tokens=2))
    controller.pump()
    assert controller.send_chat("m", "More?")
    _, _, second = controller.link.calls[-1]
    assert [(m.role, m.content) for m in second.messages] == [("user", "Hello"), ("assistant", "Hi."), ("user", "More?")]
    assert not second.HasField("max_tokens")


def test_a_reasoning_reply_keeps_its_thinking_apart_and_sends_it_back(controller):
    controller.send_chat("m", "Hello")
    chat_id = controller.state.chat.active_id
    controller.inbox.put(msg.ChatDelta(chat_id, "", reasoning="They greet me."))
    controller.inbox.put(msg.ChatDelta(chat_id, "Hi."))
    ended = msg.ChatEnded(chat_id, finish_reason="stop", prompt_tokens=5, completion_tokens=6, reasoning_tokens=4)
    controller.inbox.put(ended)
    controller.pump()
    reply = controller.state.chat.turns[-1]
    assert (reply.reasoning, reply.content, reply.reasoning_tokens) == ("They greet me.", "Hi.", 4)
    assert "(4 thinking)" in controller.state.chat.last_result
    controller.send_chat("m", "More?")
    _, _, second = controller.link.calls[-1]
    # The template decides whether earlier thinking is kept: the engine gets it.
    assert [m.reasoning for m in second.messages] == ["", "They greet me.", ""]


def test_a_raw_prompt_is_sent_alone_without_the_template(controller):
    controller.send_chat("m", "Hello", system_prompt="ignored")
    controller.inbox.put(msg.ChatEnded(controller.state.chat.active_id, finish_reason="stop"))
    controller.pump()
    assert controller.send_chat("m", "Monday, Tuesday,", raw_prompt=True, max_tokens=8)
    _, _, request = controller.link.calls[-1]
    assert request.prompt == "Monday, Tuesday," and not request.messages and request.max_tokens == 8


def test_a_chat_needs_a_model_and_text(controller):
    assert not controller.send_chat("", "Hello")
    assert not controller.send_chat("m", "   ")
    assert not any(call[0] == "generate" for call in controller.link.calls)


def test_stop_cancels_the_stream_in_progress(controller):
    controller.send_chat("m", "Hello")
    chat_id = controller.state.chat.active_id
    controller.stop_chat()
    assert controller.link.calls[-1] == ("cancel", chat_id)


def test_adding_a_model_file_copies_it_with_progress(controller, tmp_path):
    source = tmp_path / "new-model.gguf"
    source.write_bytes(b"GGUF" + bytes(3 << 20))
    controller.add_model_file(source)
    pump_until(controller, lambda: not controller.state.tasks and controller.state.notices.items)
    assert (tmp_path / "models" / "new-model.gguf").read_bytes() == source.read_bytes()
    assert "Added new-model.gguf" in controller.state.notices.latest.text
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["new-model.gguf"]
    # Never over a file already there, and only GGUF files.
    controller.add_model_file(source)
    pump_until(controller, lambda: "already exists" in controller.state.notices.latest.text)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("x")
    controller.add_model_file(text_file)
    pump_until(controller, lambda: "not a .gguf file" in controller.state.notices.latest.text)


def test_the_models_folder_is_the_engines_once_it_answers(controller, tmp_path):
    assert controller.models_dir == tmp_path / "models"
    controller.inbox.put(msg.StatusReceived(pb.GetStatusResponse(models_dir="/srv/models")))
    controller.pump()
    assert controller.models_dir == Path("/srv/models")


def test_saving_settings_writes_the_file_and_switches_the_key(controller, tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_API_KEY", raising=False)
    raw = {
        "server_port": "8080",
        "models_dir": str(tmp_path / "m"),
        "use_gpu": True,
        "context_size": "0",
        "keep_alive": "300",
        "api_key": "sk-new",
        "cors_origins": "",
    }
    values, errors, report = controller.save_settings(SettingsValues(models_dir=str(tmp_path / "m")), raw)
    assert errors == {} and values.server_port == 8080
    assert "Restart the server for rest port, api key" in report
    assert json.loads((tmp_path / "config.json").read_text())["settings"]["api_key"] == "sk-new"
    assert controller.link.api_key == "sk-new"
    values, errors, report = controller.save_settings(values, raw | {"server_port": "0"})
    assert values is None and "server_port" in errors and report.startswith("Not saved")


def test_config_follows_the_settings(tmp_path, monkeypatch):
    from hearth.settings.adapter import AdapterSettings
    from hearth.settings.engine import EngineSettings

    monkeypatch.setenv("LLM_CONFIG_FILE", str(tmp_path / "config.json"))
    monkeypatch.setenv("LLM_API_KEY", "sk-env")
    config = desktop_config(
        EngineSettings(engine_address="127.0.0.1:6000"),
        AdapterSettings(server_host="0.0.0.0", server_port=8000),
        serve_flags=("--port", "8000"),
    )
    assert config.engine_address == "127.0.0.1:6000"
    assert config.rest_url == "http://127.0.0.1:8000"
    assert config.api_key == "sk-env"
    assert config.serve_command[1:] == ("-m", "hearth", "serve", "--port", "8000")
    assert rest_url(AdapterSettings(server_host="::1", server_port=1)) == "http://[::1]:1"


def test_installing_the_default_model_reports_its_progress(tmp_path, default_model_path):
    import queue

    from hearth.desktop import file_tasks

    outbox: queue.Queue = queue.Queue()
    file_tasks.install_default_model(tmp_path / "fresh", outbox).join(120)
    messages = list(outbox.queue)
    progress = [m for m in messages if isinstance(m, msg.TaskProgress) and m.total]
    assert progress, messages
    assert progress[-1].done == progress[-1].total == default_model_path.stat().st_size
    assert [m.done for m in progress] == sorted(m.done for m in progress)
    ended = messages[-1]
    assert isinstance(ended, msg.TaskEnded) and ended.ok, ended
    installed = tmp_path / "fresh" / default_model_path.name
    assert installed.stat().st_size == default_model_path.stat().st_size
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == [installed.name]


def test_opening_the_folder_without_an_opener_says_where_it_is(controller, tmp_path, monkeypatch):
    from hearth.desktop import file_tasks

    monkeypatch.setattr(file_tasks.sys, "platform", "linux")
    monkeypatch.setattr(file_tasks.shutil, "which", lambda name: None)
    controller.open_models_folder()
    notice = controller.state.notices.latest
    assert notice.level == "warning"
    assert "xdg-open is not installed" in notice.text and str(tmp_path / "models") in notice.text
    assert (tmp_path / "models").is_dir()


def test_a_second_click_does_not_start_a_second_copy_of_the_same_file(controller, tmp_path, monkeypatch):
    import threading

    from hearth.desktop import file_tasks

    release = threading.Event()
    started = []

    def slow_copy(source, models_dir, outbox):
        started.append(source)
        thread = threading.Thread(target=release.wait, daemon=True)
        thread.start()
        return thread

    monkeypatch.setattr(file_tasks, "copy_model_file", slow_copy)
    controller.add_model_file(tmp_path / "a.gguf")
    controller.add_model_file(tmp_path / "a.gguf")
    assert len(started) == 1
    assert "already being added" in controller.state.notices.latest.text
    release.set()
    controller._file_tasks["copy:a.gguf"].join(5)
    controller.add_model_file(tmp_path / "a.gguf")
    assert len(started) == 2
