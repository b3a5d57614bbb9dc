"""The desktop window end to end, under Xvfb, as a user runs it (`hearth
desktop`), driven through its own buttons by a script (tests/helpers/desktop_driver.py):

- against a real engine serving the default model: load the model, chat in the
  playground, see the request in the log, screenshots of the tabs, unload;
- with no server running (and an API key set): the window starts `hearth
  serve`, adds a model file, saves a setting, restarts the server from its
  Server tab, sees the setting applied, and leaves no process behind when it
  closes;
- as a new user: no server, no model, no config; the window starts the server,
  installs the default model, loads it and runs a prompt."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import psutil
import pytest

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.models import DEFAULT_MODEL_ID
from tests.helpers.servers import EngineProcess, base_env, free_port

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("dearpygui")
pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")

WIDTH, HEIGHT = 1280, 800
WINDOW_TIMEOUT = 240


def run_window(script: dict, tmp_path: Path, env: dict[str, str], *flags: str) -> tuple[dict, str]:
    """Runs `hearth desktop` under a fresh virtual display, driven by the
    script through tests.helpers.desktop_driver, until it quits; (report, log)."""
    script_path = tmp_path / "script.json"
    report_path = tmp_path / "report.json"
    script_path.write_text(json.dumps({"report": str(report_path), "steps": script}))
    env = env | {
        "HEARTH_DESKTOP_SCRIPT": str(script_path),
        # The log of a server the window starts goes under here, not in the user's home.
        "XDG_STATE_HOME": str(tmp_path / "state"),
        # The driver is a module of the test suite, not of the product.
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    }
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {WIDTH}x{HEIGHT}x24"]
    command += [sys.executable, "-m", "tests.helpers.desktop_driver", "desktop", *flags]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=WINDOW_TIMEOUT)
    log = result.stdout + result.stderr
    assert report_path.exists(), f"the window wrote no report (exit {result.returncode}):\n{log[-5000:]}"
    report = json.loads(report_path.read_text())
    assert report["ok"], f"{report['error']}\n{log[-5000:]}"
    assert result.returncode == 0, log[-5000:]
    return report, log


def assert_not_blank(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as image:
        # The window's frame, which fits the screen.
        assert 900 <= image.size[0] <= WIDTH and 600 <= image.size[1] <= HEIGHT, image.size
        pixels = image.size[0] * image.size[1]
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
    assert colours is not None
    # Text, tables and plots, antialiased: hundreds of colours. A blank or black frame has one or two.
    assert len(colours) > 100, f"{png.name} has only {len(colours)} colours"
    background = max(count for count, _ in colours)
    assert background < 0.97 * pixels, f"{png.name} is almost all one colour"


def test_load_chat_and_see_the_request_in_the_log(models_dir, no_config, tmp_path):
    # An engine of its own, whose past is one request made before the window opened: the window shows it at once.
    engine = EngineProcess(models_dir, no_config, tmp_path / "engine.log")
    try:
        with grpc.insecure_channel(engine.address) as channel:
            stub = engine_pb2_grpc.EngineStub(channel)
            before = pb.GenerateRequest(model=DEFAULT_MODEL_ID, prompt="Hello", max_tokens=2, request_id="before-window")
            list(stub.Generate(before, timeout=120))
            stub.UnloadModel(pb.UnloadModelRequest(id=DEFAULT_MODEL_ID), timeout=60)
        report = _load_chat_and_log(engine, models_dir, no_config, tmp_path)
    finally:
        engine.stop()
    assert "before-window" in [row["request_id"] for row in report["requests"]]


def _load_chat_and_log(engine, models_dir, no_config, tmp_path) -> dict:
    shots = {name: tmp_path / f"{name}.png" for name in ("models", "playground", "requests", "performance", "server")}
    script = [
        {"wait": "engine", "timeout": 30},
        {"wait": "model_state", "model": DEFAULT_MODEL_ID, "state": "unloaded", "timeout": 30},
        # The engine's recent past, replayed: no new request was needed for it to show.
        {"tab": "requests"},
        {"wait": "text", "item": "requests.count", "contains": "1 of 1 requests", "timeout": 30},
        {"tab": "performance"},
        {"wait": "text", "item": "performance.summary", "contains": "1 requests, last"},
        # The replayed request has its time to first token plotted too, and each poll a queue depth.
        {"wait": "text", "item": "performance.summary", "contains": "first token: last"},
        {"wait": "text", "item": "performance.queue_summary", "contains": "waiting for a slot", "timeout": 30},
        {"tab": "models"},
        # The window fits the 1280x800 screen: the table's last column, with its Load button, is on it.
        {"wait": "on_screen", "item": f"models.load.{DEFAULT_MODEL_ID}", "timeout": 10},
        {"click": f"models.load.{DEFAULT_MODEL_ID}"},
        {"wait": "model_state", "model": DEFAULT_MODEL_ID, "state": "ready", "timeout": 120},
        {"wait": "no_tasks", "timeout": 30},
        {"screenshot": str(shots["models"])},
        {"tab": "playground"},
        {"set": "playground.model", "value": DEFAULT_MODEL_ID},
        {"set": "playground.max_tokens", "value": 24},
        {"set": "playground.input", "value": "Name three colours."},
        {"click": "playground.send"},
        {"wait": "chat_done", "timeout": 120},
        {"screenshot": str(shots["playground"])},
        {"wait": "request_logged", "model": DEFAULT_MODEL_ID, "timeout": 30},
        {"tab": "requests"},
        {"wait": "text", "item": "requests.count", "contains": "2 of 2 requests"},
        {"set": "requests.filter", "value": "no-such-model"},
        {"wait": "text", "item": "requests.count", "contains": "0 of 2 requests"},
        {"set": "requests.filter", "value": "gemma"},
        {"wait": "text", "item": "requests.count", "contains": "2 of 2 requests"},
        {"screenshot": str(shots["requests"])},
        {"tab": "performance"},
        {"wait": "text", "item": "performance.summary", "contains": "2 requests, last"},
        # Four plots, two by two, all within the window.
        {"wait": "on_screen", "item": "performance.ttft_plot", "timeout": 10},
        {"wait": "on_screen", "item": "performance.queue_plot", "timeout": 10},
        {"screenshot": str(shots["performance"])},
        {"tab": "server"},
        {"wait": "text", "item": "server.value.versions", "contains": "llama-cpp-python"},
        {"click": "server.copy_rest"},
        {"wait": "text", "item": "footer", "contains": "Copied http://"},
        {"screenshot": str(shots["server"])},
        {"tab": "models"},
        {"click": f"models.unload.{DEFAULT_MODEL_ID}"},
        {"wait": "model_state", "model": DEFAULT_MODEL_ID, "state": "unloaded", "timeout": 60},
        {"quit": True},
    ]
    env = base_env(models_dir, no_config, LLM_ENGINE_ADDRESS=engine.address, LLM_SERVER_PORT=str(free_port()))
    report, _ = run_window(script, tmp_path, env, "--no-start-server")

    requests = [row for row in report["requests"] if row["model"] == DEFAULT_MODEL_ID]
    assert len(requests) == 2, report["requests"]
    row = next(row for row in requests if row["request_id"].startswith("desktop-"))
    assert row["outcome"] == "completed"
    assert row["prompt_tokens"] > 0 and 0 < row["completion_tokens"] <= 24
    assert row["tokens_per_second"] > 0
    assert [turn["role"] for turn in report["chat"]] == ["user", "assistant"]
    assert report["chat"][1]["content"].strip(), "the reply streamed into the playground is empty"
    assert "completion tokens" in report["chat_result"]
    assert report["plots"]["tokens_per_second"] == 2 and report["plots"]["engine_memory"] > 0
    assert any(f"Loaded {DEFAULT_MODEL_ID}" in notice for notice in report["notices"])
    models = {model["id"]: model for model in report["models"]}
    assert models[DEFAULT_MODEL_ID]["architecture"] == "gemma3"
    assert models[DEFAULT_MODEL_ID]["quantization"] == "Q4_K_M"
    assert models["broken"]["state"] == "invalid" and models["broken"]["state_reason"]
    assert report["server_starts"] == 0
    viewport = report["viewport"]
    assert viewport["x"] >= 0 and viewport["x"] + viewport["width"] <= WIDTH
    assert viewport["y"] >= 0 and viewport["y"] + viewport["height"] <= HEIGHT
    # Its size is remembered for the next time.
    remembered = json.loads((tmp_path / "state" / "hearth" / "desktop-window.json").read_text())
    assert (remembered["width"], remembered["height"]) == (viewport["width"], viewport["height"])
    for png in shots.values():
        assert_not_blank(png)
    return report


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def test_with_no_server_the_window_starts_one_applies_settings_and_cleans_up(default_model_path, tmp_path):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / default_model_path.name).symlink_to(default_model_path)
    picked = tmp_path / "picked.gguf"
    write_tiny_llama(picked)
    config_file = tmp_path / "config.json"
    declared = [{"id": "declared", "path": "elsewhere.gguf"}]
    config_file.write_text(json.dumps({"models": declared}))
    engine_address = f"127.0.0.1:{free_port()}"
    screenshot = tmp_path / "server.png"
    script = [
        {"wait": "engine", "timeout": 120},
        {"wait": "adapter", "timeout": 60},
        {"wait": "model_field", "model": DEFAULT_MODEL_ID, "field": "context", "value": "32768"},
        {"tab": "server"},
        {"screenshot": str(screenshot)},
        {"tab": "models"},
        {"click": "models.add_file"},
        {"choose_file": "models.file_dialog", "path": str(picked)},
        {"wait": "models", "model": "picked", "timeout": 30},
        {"tab": "settings"},
        {"wait": "text", "item": "settings.running.keep_alive", "contains": "300", "timeout": 10},
        {"set": "settings.context_size", "value": "4096"},
        {"set": "settings.keep_alive", "value": "120"},
        {"click": "settings.save"},
        # Saved, not yet running: the tab says which value a restart applies.
        {"wait": "text", "item": "settings.note.keep_alive", "contains": "differs from the saved value", "timeout": 10},
        {"wait": "text", "item": "settings.running.keep_alive", "contains": "300"},
        {"screenshot": str(tmp_path / "settings.png")},
        {"tab": "server"},
        {"click": "server.stop"},
        {"wait": "server_stopped", "timeout": 60},
        {"wait": "engine_down", "timeout": 30},
        {"click": "server.start"},
        {"wait": "engine", "timeout": 120},
        {"wait": "model_field", "model": DEFAULT_MODEL_ID, "field": "context", "value": "4096 (trained 32768)"},
        {"wait": "adapter", "timeout": 60},
        {"tab": "settings"},
        {"wait": "text", "item": "settings.running.keep_alive", "contains": "120", "timeout": 30},
        {"quit": True},
    ]
    env = base_env(
        models_dir,
        config_file,
        LLM_ENGINE_ADDRESS=engine_address,
        LLM_SERVER_PORT=str(free_port()),
        # The server it starts then refuses calls without the key: the window must send it on every one.
        LLM_API_KEY="sk-desktop-e2e",
    )
    report, log = run_window(script, tmp_path, env)

    assert report["server_starts"] == 2
    assert any(f"No engine answered at {engine_address}; started `hearth serve`" in n for n in report["notices"])
    assert any("Restart the server for context size" in n for n in report["notices"])
    saved = json.loads(config_file.read_text())
    assert saved["models"] == declared
    assert saved["settings"]["context_size"] == 4096
    assert (models_dir / "picked.gguf").read_bytes() == picked.read_bytes()
    assert any("Added picked.gguf" in n for n in report["notices"])
    assert_not_blank(screenshot)
    # Closing the window stopped the server it started: nothing listens, no process is left.
    assert not _listening(engine_address)
    assert _hearth_processes_for(engine_address) == [], log[-3000:]


def _hearth_processes_for(engine_address: str) -> list[str]:
    """Hearth processes serving that address: by flag (the engine) or by environment (`hearth serve`)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "hearth" not in cmdline:
            continue
        try:
            environment = process.environ()
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            environment = {}
        if engine_address in cmdline or environment.get("LLM_ENGINE_ADDRESS") == engine_address:
            found.append(cmdline)
    return found


def test_a_new_user_installs_the_default_model_from_the_window_and_chats(tmp_path):
    """A fresh home: no server, no models, no config. Everything from the window's buttons."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "XDG_"))}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        # Only the ports are not the defaults, so that this test never meets a real Hearth.
        LLM_ENGINE_ADDRESS=f"127.0.0.1:{free_port()}",
        LLM_SERVER_PORT=str(free_port()),
        no_proxy="127.0.0.1,localhost",
        NO_PROXY="127.0.0.1,localhost",
    )
    empty = tmp_path / "empty.png"
    chat = tmp_path / "chat.png"
    script = [
        {"wait": "engine", "timeout": 120},
        {"wait": "adapter", "timeout": 60},
        {"tab": "models"},
        {"wait": "text", "item": "models.empty", "contains": "No models yet", "timeout": 30},
        {"screenshot": str(empty)},
        {"click": "models.install_default"},
        {"wait": "models", "model": DEFAULT_MODEL_ID, "timeout": 180},
        {"wait": "no_tasks", "timeout": 60},
        {"click": f"models.load.{DEFAULT_MODEL_ID}"},
        {"wait": "model_state", "model": DEFAULT_MODEL_ID, "state": "ready", "timeout": 120},
        {"tab": "playground"},
        {"set": "playground.raw_prompt", "value": True},
        {"set": "playground.temperature", "value": 0.0},
        {"set": "playground.max_tokens", "value": 16},
        {"set": "playground.input", "value": "Monday, Tuesday, Wednesday,"},
        {"click": "playground.send"},
        {"wait": "chat_done", "timeout": 120},
        {"wait": "request_logged", "model": DEFAULT_MODEL_ID, "timeout": 30},
        {"screenshot": str(chat)},
        {"quit": True},
    ]
    report, _ = run_window(script, tmp_path, env)

    installed = home / ".local" / "share" / "hearth" / "models" / f"{DEFAULT_MODEL_ID}.gguf"
    assert installed.is_file()
    assert any("No engine answered" in notice for notice in report["notices"])
    assert any("Default model installed" in notice for notice in report["notices"])
    assert report["chat"][1]["content"].strip()
    assert report["requests"][0]["outcome"] == "completed"
    assert_not_blank(empty)
    assert_not_blank(chat)


def test_a_reasoning_models_thinking_shows_apart_with_its_token_count(no_config, tmp_path):
    from hearth.engine.llama.tiny_model import write_tiny_llama as write_marked_llama

    # A tiny think-tag model whose template opens the reasoning (DeepSeek-R1's way): greedy decoding thinks on.
    models = tmp_path / "models"
    models.mkdir()
    template = (
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant><think>\n{% endif %}"
    )
    write_marked_llama(models / "thinker.gguf", seed=3, chat_template=template, added_tokens=("<think>", "</think>"))
    engine = EngineProcess(models, no_config, tmp_path / "engine.log")
    try:
        script = [
            {"wait": "engine", "timeout": 30},
            {"tab": "playground"},
            {"set": "playground.model", "value": "thinker"},
            {"set": "playground.temperature", "value": 0.0},
            {"set": "playground.max_tokens", "value": 16},
            {"set": "playground.input", "value": "Why is the sky blue?"},
            {"click": "playground.send"},
            {"wait": "chat_done", "timeout": 120},
            {"wait": "label", "item": "playground.thinking.1", "contains": "Thought for 16 tokens", "timeout": 10},
            {"screenshot": str(tmp_path / "thinking.png")},
            {"quit": True},
        ]
        env = base_env(models, no_config, LLM_ENGINE_ADDRESS=engine.address, LLM_SERVER_PORT=str(free_port()))
        report, _ = run_window(script, tmp_path, env, "--no-start-server")
    finally:
        engine.stop()
    reply = report["chat"][1]
    assert reply["reasoning"] and reply["reasoning_tokens"] == 16
    assert "<think>" not in reply["reasoning"] + reply["content"]
    assert "(16 thinking)" in report["chat_result"]
    assert_not_blank(tmp_path / "thinking.png")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_the_playground_answers_in_json_mode_and_shows_a_tool_call(no_config, tmp_path):
    from tests.helpers.instruct_model import install_instruct_model
    from tests.helpers.models import INSTRUCT_MODEL_ID

    models = tmp_path / "models"
    models.mkdir()
    path = install_instruct_model(REPO / ".cache" / "models")
    (models / path.name).symlink_to(path)
    engine = EngineProcess(models, no_config, tmp_path / "engine.log")
    try:
        script = [
            {"wait": "engine", "timeout": 30},
            {"tab": "playground"},
            {"set": "playground.model", "value": INSTRUCT_MODEL_ID},
            {"set": "playground.temperature", "value": 0.0},
            {"set": "playground.max_tokens", "value": 64},
            {"set": "playground.json_mode", "value": True},
            {"set": "playground.input", "value": "Describe the sky as JSON with the keys colour and mood."},
            {"click": "playground.send"},
            {"wait": "chat_done", "timeout": 120},
            # The answer is JSON: a grammar held the model to an object.
            {"wait": "text", "item": "playground.turn.1", "contains": '{"colour"', "timeout": 10},
            {"click": "playground.clear"},
            {"set": "playground.json_mode", "value": False},
            {"set": "playground.tools", "value": json.dumps([WEATHER_TOOL])},
            {"set": "playground.input", "value": "What is the weather in Paris right now?"},
            {"click": "playground.send"},
            {"wait": "chat_done", "timeout": 120},
            {"wait": "text", "item": "playground.tool_call.1.0", "contains": "calls get_weather(", "timeout": 10},
            {"screenshot": str(tmp_path / "tool_call.png")},
            # The conversation goes on: the turn of calls alone is sent back with its call.
            {"set": "playground.tools", "value": ""},
            {"set": "playground.input", "value": "Which city did you ask about? Answer with its name only."},
            {"click": "playground.send"},
            {"wait": "chat_done", "timeout": 120},
            {"quit": True},
        ]
        env = base_env(models, no_config, LLM_ENGINE_ADDRESS=engine.address, LLM_SERVER_PORT=str(free_port()))
        report, log = run_window(script, tmp_path, env, "--no-start-server")
    finally:
        engine.stop()
    [_, reply, _, follow_up] = report["chat"]
    [(name, arguments)] = reply["tool_calls"]
    assert name == "get_weather" and "paris" in json.loads(arguments)["city"].lower()
    # The engine takes the turn of calls back (its calls, no tool result) and the chat goes on.
    assert "paris" in follow_up["content"].lower() and not follow_up["tool_calls"]
    assert "error" not in report["chat_result"]
    assert_not_blank(tmp_path / "tool_call.png")
