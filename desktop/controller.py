"""The window's actions and its one inbox, with no Dear PyGui in sight.

Panels call these methods from their callbacks (and the scripted test driver
calls the same callbacks). Each method returns at once: network work goes to
the EngineLink, file work to worker threads, and their results come back as
messages that ``pump`` applies to the DesktopState on the render thread."""

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hearth.desktop import file_tasks, settings_form
from hearth.desktop import messages as msg
from hearth.desktop.chat_session import ChatTurn
from hearth.desktop.config import DesktopConfig
from hearth.desktop.engine_link import EngineLink
from hearth.desktop.model_settings_form import ModelSettingsValues, read_form
from hearth.desktop.server_process import ServerProcess
from hearth.desktop.state import DesktopState
from hearth.engine.v1 import engine_pb2 as pb

log = logging.getLogger(__name__)

# Messages applied per frame at most, so a burst (a fast stream) never stalls a frame.
MAX_MESSAGES_PER_FRAME = 2000
SERVER_CHECK_SECONDS = 0.5


class DesktopController:
    def __init__(
        self,
        config: DesktopConfig,
        *,
        reload_config: Callable[[], DesktopConfig] | None = None,
        link_factory: Callable[..., EngineLink] = EngineLink,
    ):
        self.config = config
        self._reload_config = reload_config
        self.inbox: queue.Queue[msg.Message] = queue.Queue()
        self.state = DesktopState(config.engine_address, config.rest_url)
        self.api_key = config.api_key
        self.link = link_factory(
            config.engine_address, config.rest_url, self.inbox, api_key=config.api_key, tls=config.engine_tls
        )
        self.server = ServerProcess(config.serve_command, config.server_log)
        self._file_tasks: dict[str, threading.Thread] = {}
        self._auto_start_checked = False
        self._next_server_check = 0.0

    # ---------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.link.start()

    def shutdown(self) -> None:
        """The window is closing: stop the stream, the link, and the server this window started."""
        if self.state.chat.active_id is not None:
            self.link.cancel_generation(self.state.chat.active_id)
        self.link.close()
        if self.server.running:
            self.state.notify("Stopping the server this window started")
            self.server.stop_and_wait()

    def pump(self) -> int:
        """Applies waiting messages to the state; returns how many. Render thread only."""
        applied = 0
        while applied < MAX_MESSAGES_PER_FRAME:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                break
            self.state.apply(message)
            applied += 1
            if isinstance(message, msg.EngineUnavailable):
                self._maybe_start_server(message)
        now = time.monotonic()
        # While it stops, look every frame: the Start button should come back the moment it can.
        if now >= self._next_server_check or self.server.stopping:
            self._next_server_check = now + SERVER_CHECK_SECONDS
            self._check_server()
        return applied

    # ---------------------------------------------------------- the server process

    def _maybe_start_server(self, unavailable: msg.EngineUnavailable) -> None:
        """On the first failed poll only: when no engine answers, start `hearth serve`."""
        if self._auto_start_checked:
            return
        self._auto_start_checked = True
        if not unavailable.nothing_listening:
            return  # an engine answers, with an error (a wrong API key, say): not ours to replace
        if not self.config.start_server:
            self.state.notify(
                f"No engine answers at {self.config.engine_address}; start one with `hearth serve`", "warning"
            )
            return
        self.start_server(reason=f"No engine answered at {self.config.engine_address}; ")

    def start_server(self, reason: str = "") -> None:
        if self.server.running:
            self.state.notify(f"The server this window started is already running (pid {self.server.pid})")
            return
        if self.state.engine_reachable:
            self.state.notify(f"An engine already answers at {self.config.engine_address}", "warning")
            return
        if self._reload_config is not None:
            # Pick up what the Settings panel saved since the window opened (the REST port, say).
            self.config = self._reload_config()
            self.server.command = self.config.serve_command
            self.state.rest_url = self.config.rest_url
            self.link.set_rest_url(self.config.rest_url)
        try:
            pid = self.server.start()
        except OSError as exc:
            self.state.notify(f"Could not start `hearth serve`: {exc}", "error")
            return
        self.state.server_version += 1
        self.state.notify(
            f"{reason}started `hearth serve` in the background (pid {pid}); its log is {self.server.log_path}"
        )
        self.link.refresh()

    def stop_server(self) -> None:
        if not self.server.running:
            self.state.notify("This window did not start the running server; stop it where it runs", "warning")
            return
        self.server.request_stop()
        self.state.server_version += 1
        self.state.notify(f"Stopping the server (pid {self.server.pid})")

    @property
    def owns_server(self) -> bool:
        return self.server.running

    def _check_server(self) -> None:
        code = self.server.check()
        if code is None:
            return
        self.state.server_version += 1
        if code in (0, -15):
            self.state.notify("The server this window started has stopped")
        else:
            self.state.notify(f"`hearth serve` exited with code {code}; see {self.server.log_path}", "error")

    # ---------------------------------------------------------- models

    @property
    def models_dir(self) -> Path:
        """The engine's folder when it answers (it may differ from ours), else the configured one."""
        return Path(self.state.models_dir) if self.state.models_dir else self.config.models_dir

    def refresh(self) -> None:
        self.link.refresh()

    def load_model(self, model_id: str) -> None:
        self.link.load_model(model_id)

    def unload_model(self, model_id: str) -> None:
        self.link.unload_model(model_id)

    def save_model_settings(self, model_id: str, values: ModelSettingsValues) -> dict[str, str]:
        """Sends the form's settings for the model; what is wrong in each field when it cannot."""
        settings, errors = read_form(values)
        if settings is not None:
            self.link.update_model_settings(model_id, settings)
        return errors

    def pull_model(self, reference: str) -> bool:
        """Starts a pull from Hugging Face through the engine; False (with a notice) when it cannot start."""
        reference = reference.strip()
        if not reference:
            self.state.notify("Name a Hugging Face repository to pull, e.g. owner/name:Q4_K_M", "warning")
            return False
        if f"pull:{reference}" in self.state.tasks:
            self.state.notify(f"{reference} is already being pulled", "warning")
            return False
        self.link.pull_model(reference)
        return True

    def open_models_folder(self) -> None:
        problem = file_tasks.open_folder(self.models_dir)
        if problem:
            self.state.notify(problem, "warning")
        else:
            self.state.notify(f"Opened {self.models_dir}")

    def add_model_file(self, source: Path) -> None:
        if self._file_task_running(f"copy:{source.name}", f"{source.name} is already being added"):
            return
        self._file_tasks[f"copy:{source.name}"] = file_tasks.copy_model_file(source, self.models_dir, self.inbox)

    def install_default_model(self) -> None:
        if self._file_task_running("install-default", "The default model is already being installed"):
            return
        self._file_tasks["install-default"] = file_tasks.install_default_model(self.models_dir, self.inbox)

    def _file_task_running(self, key: str, notice: str) -> bool:
        """Two workers writing the same file would corrupt it: a second click waits its turn."""
        thread = self._file_tasks.get(key)
        if thread is not None and thread.is_alive():
            self.state.notify(notice, "warning")
            return True
        return False

    # ---------------------------------------------------------- playground

    def send_chat(
        self,
        model_id: str,
        text: str,
        *,
        system_prompt: str = "",
        max_tokens: int | None = None,
        temperature: float | None = None,
        raw_prompt: bool = False,
        json_mode: bool = False,
        tools_json: str = "",
    ) -> bool:
        """Starts a streamed reply; False (with a notice) when it cannot start.

        ``raw_prompt``: send the text alone as a prompt, without the chat template
        or the conversation so far, for base models that continue text.
        ``json_mode``: the answer is a JSON object. ``tools_json``: tools the
        model may call, as a JSON array in OpenAI's shape."""
        text = text.strip()
        try:
            tools = chat_tools(tools_json)
        except ValueError as exc:
            self.state.notify(f"Tools: {exc}", "error")
            return False
        if self.state.chat.streaming:
            self.state.notify("A reply is still streaming; stop it first", "warning")
            return False
        if not model_id:
            self.state.notify("Choose a model for the playground", "warning")
            return False
        if not text:
            return False
        chat_id = self.state.begin_chat(text)
        if raw_prompt:
            request = pb.GenerateRequest(model=model_id, prompt=text)
        else:
            turns = [pb.ChatMessage(role="system", content=system_prompt.strip())] if system_prompt.strip() else []
            turns += history_messages(self.state.chat.history())
            request = pb.GenerateRequest(model=model_id, messages=turns)
        if max_tokens:
            request.max_tokens = max_tokens
        if temperature is not None:
            request.temperature = temperature
        if json_mode:
            request.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
        request.tools.extend(tools)
        self.link.generate(chat_id, request)
        return True

    def stop_chat(self) -> None:
        if self.state.chat.active_id is not None:
            self.link.cancel_generation(self.state.chat.active_id)

    def clear_chat(self) -> None:
        self.stop_chat()
        self.state.chat.clear()

    # ---------------------------------------------------------- settings

    def save_settings(
        self, before: settings_form.SettingsValues, raw: dict
    ) -> tuple[settings_form.SettingsValues | None, dict[str, str], str]:
        """Validates and saves; returns (saved values or None, errors per field, report line)."""
        values, errors = settings_form.validate(raw)
        if values is None:
            return None, errors, "Not saved: fix the fields marked in red."
        try:
            settings_form.save(self.config.config_file, values)
        except (OSError, ValueError) as exc:
            return None, {}, f"Not saved: {exc}"
        # LLM_API_KEY, when set, wins over the file at the server too: keep sending it.
        if values.api_key != self.api_key and not os.environ.get("LLM_API_KEY"):
            self.api_key = values.api_key
            self.link.set_api_key(values.api_key)
        report = settings_form.save_report(self.config.config_file, settings_form.changed_fields(before, values))
        self.state.notify(report)
        return values, {}, report


def history_messages(turns: list[ChatTurn]) -> list[pb.ChatMessage]:
    """The conversation so far as the engine's messages: each assistant turn
    with its thinking and the calls it made (a turn of calls alone is not empty)."""
    messages = []
    for number, turn in enumerate(turns):
        calls = [
            pb.ToolCall(id=f"call_{number}_{index}", name=name, arguments=arguments)
            for index, (name, arguments) in enumerate(turn.tool_calls)
        ]
        messages.append(
            pb.ChatMessage(role=turn.role, content=turn.content, reasoning=turn.reasoning, tool_calls=calls)
        )
    return messages


def chat_tools(text: str) -> list[pb.Tool]:
    """The Playground's tools: a JSON array of {"type": "function", "function": {...}}
    or of the function objects alone; ValueError saying what is wrong."""
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg}, line {exc.lineno})") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("give a JSON array of tools")
    tools = []
    for index, item in enumerate(value):
        function = item.get("function", item) if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ValueError(f"tool {index} has no name")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        tools.append(
            pb.Tool(
                name=function["name"],
                description=str(function.get("description") or ""),
                parameters_json=json.dumps(parameters),
            )
        )
    return tools
