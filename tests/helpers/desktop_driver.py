"""A scripted run of the window, for the end-to-end test (and for taking the
README's screenshot): `python -m tests.helpers.desktop_driver desktop [flags]`
runs `hearth desktop [flags]` with this driver, and HEARTH_DESKTOP_SCRIPT
names a JSON file

    {"report": "/tmp/report.json",
     "steps": [{"wait": "engine"},
               {"click": "models.load.gemma-3-270m-q4_k_m"},
               {"wait": "model_state", "model": "gemma-3-270m-q4_k_m", "state": "ready"},
               {"tab": "playground"},
               {"set": "playground.input", "value": "Hello"},
               {"click": "playground.send"},
               {"wait": "request_logged", "model": "gemma-3-270m-q4_k_m"},
               {"tab": "requests"},
               {"screenshot": "/tmp/window.png"},
               {"quit": true}]}

Steps run one after another, one check per frame, on the render thread. A
"click" calls the callback Dear PyGui would call for that item, with the same
arguments, so the script exercises the window's own wiring; "choose_file"
does what a file dialog's OK button does with a file selected. The report (what
the tables showed, and whether every step passed) is written when the script
ends, and the window exits 0 on success, 1 otherwise."""

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

from hearth.desktop import panel_server
from hearth.desktop.controller import DesktopController

log = logging.getLogger(__name__)

SCRIPT_ENV = "HEARTH_DESKTOP_SCRIPT"
DEFAULT_TIMEOUT = 120.0
# Frames to keep rendering after asking for a screenshot, before giving up on the file.
SCREENSHOT_FRAMES = 120


class ScriptFailed(Exception):
    pass


def script_from_environment() -> dict[str, Any] | None:
    path = os.environ.get(SCRIPT_ENV)
    if not path:
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


class ScriptDriver:
    def __init__(self, controller: DesktopController, script: dict[str, Any], tab_bar: str):
        self.controller = controller
        self.steps: list[dict[str, Any]] = list(script.get("steps", []))
        self.report_path = Path(script["report"]) if script.get("report") else None
        self.tab_bar = tab_bar
        self.index = 0
        self.done = False
        self.ok = True
        self.error = ""
        self._step_started: float | None = None
        self._frames_in_step = 0

    # ---------------------------------------------------------- called once per frame

    def step(self) -> None:
        if self.done:
            return
        if self.index >= len(self.steps):
            self._finish()
            return
        step = self.steps[self.index]
        if self._step_started is None:
            self._step_started = time.monotonic()
            self._frames_in_step = 0
            log.info("script step %d: %s", self.index, step)
        self._frames_in_step += 1
        try:
            finished = self._run(step)
        except ScriptFailed as exc:
            self._fail(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - any failure ends the script with a report
            log.exception("script step %d failed", self.index)
            self._fail(f"{type(exc).__name__}: {exc}")
            return
        if finished:
            self.index += 1
            self._step_started = None
        elif time.monotonic() - self._step_started > float(step.get("timeout", DEFAULT_TIMEOUT)):
            self._fail(f"timed out after {step.get('timeout', DEFAULT_TIMEOUT)}s")

    def _run(self, step: dict[str, Any]) -> bool:
        if "wait" in step:
            return self._condition(step)()
        if "click" in step:
            self._click(step["click"])
            return True
        if "choose_file" in step:
            self._choose_file(step["choose_file"], Path(step["path"]))
            return True
        if "set" in step:
            if not dpg.does_item_exist(step["set"]):
                raise ScriptFailed(f"no item {step['set']!r}")
            dpg.set_value(step["set"], step["value"])
            return True
        if "tab" in step:
            dpg.set_value(self.tab_bar, f"tab.{step['tab']}")
            # Let the tab lay itself out for a few frames before anything looks at it.
            return self._frames_in_step > 3
        if "screenshot" in step:
            return self._screenshot(Path(step["screenshot"]))
        if "sleep" in step:
            return time.monotonic() - self._step_started >= float(step["sleep"])
        if "quit" in step:
            self._finish()
            return True
        raise ScriptFailed(f"unknown step {step}")

    def _click(self, tag: str) -> None:
        if not dpg.does_item_exist(tag):
            raise ScriptFailed(f"no item {tag!r} to click")
        if not dpg.get_item_configuration(tag).get("enabled", True):
            raise ScriptFailed(f"{tag!r} is disabled: a user could not click it")
        callback = dpg.get_item_callback(tag)
        if callback is None:
            raise ScriptFailed(f"{tag!r} has no callback")
        arguments = (tag, dpg.get_value(tag), dpg.get_item_user_data(tag))
        # Dear PyGui passes as many of (sender, app_data, user_data) as the callback takes.
        dpg.run_callbacks([(callback, *arguments)])

    def _choose_file(self, dialog: str, path: Path) -> None:
        """What the file dialog's OK button does with ``path`` selected."""
        if not dpg.does_item_exist(dialog):
            raise ScriptFailed(f"no file dialog {dialog!r}")
        app_data = {
            "file_path_name": str(path),
            "file_name": path.name,
            "current_path": str(path.parent),
            "selections": {path.name: str(path)},
        }
        dpg.run_callbacks([(dpg.get_item_callback(dialog), dialog, app_data, dpg.get_item_user_data(dialog))])
        dpg.hide_item(dialog)  # as its OK button closes it

    def _screenshot(self, path: Path) -> bool:
        if self._frames_in_step == 1:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            dpg.output_frame_buffer(file=str(path))
            return False
        if path.is_file() and path.stat().st_size > 0:
            return True
        if self._frames_in_step > SCREENSHOT_FRAMES:
            raise ScriptFailed(f"no screenshot written to {path}")
        return False

    def _condition(self, step: dict[str, Any]) -> Callable[[], bool]:
        state = self.controller.state
        kind = step["wait"]
        if kind == "engine":
            return lambda: bool(state.engine_reachable)
        if kind == "engine_down":
            return lambda: state.engine_reachable is False
        if kind == "adapter":
            return lambda: state.adapter is not None and state.adapter.status_code == 200
        if kind == "models":
            return lambda: step["model"] in {row.id for row in state.model_rows()}
        if kind == "model_state":
            return lambda: any(row.id == step["model"] and row.state == step["state"] for row in state.model_rows())
        if kind == "model_field":
            return lambda: any(
                row.id == step["model"] and getattr(row, step["field"]) == step["value"] for row in state.model_rows()
            )
        if kind == "item":
            return lambda: dpg.does_item_exist(step["item"])
        if kind == "text":
            # What the window shows, not what the state holds: checks the panels' wiring too.
            return lambda: dpg.does_item_exist(step["item"]) and step["contains"] in str(dpg.get_value(step["item"]))
        if kind == "label":
            return lambda: dpg.does_item_exist(step["item"]) and step["contains"] in str(dpg.get_item_label(step["item"]))
        if kind == "on_screen":
            # Drawn inside the window, wholly: a user can see it and reach it.
            return lambda: dpg.does_item_exist(step["item"]) and self._inside_window(step["item"])
        if kind == "chat_done":
            return lambda: bool(state.chat.turns) and not state.chat.streaming
        if kind == "request_logged":
            return lambda: any(row.model == step["model"] for row in state.requests.rows)
        if kind == "no_tasks":
            return lambda: not state.tasks
        if kind == "server_stopped":
            # What the Server tab shows, not only the process: a user clicks Start when it says so.
            return lambda: not self.controller.server.running and str(dpg.get_value(panel_server.PROCESS)).startswith(
                "No server started"
            )
        raise ScriptFailed(f"unknown wait {kind!r}")

    @staticmethod
    def _inside_window(item: str) -> bool:
        if not dpg.is_item_visible(item):
            return False
        (left, top), (right, bottom) = dpg.get_item_rect_min(item), dpg.get_item_rect_max(item)
        width, height = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
        return right > left and 0 <= left and right <= width and 0 <= top and bottom <= height

    # ---------------------------------------------------------- ending

    def _fail(self, error: str) -> None:
        self.ok = False
        self.error = f"step {self.index} {self.steps[self.index] if self.index < len(self.steps) else ''}: {error}"
        log.error("script failed: %s", self.error)
        self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        if self.report_path is not None:
            self.report_path.parent.mkdir(parents=True, exist_ok=True)
            self.report_path.write_text(json.dumps(self.report(), indent=2), encoding="utf-8")
        dpg.stop_dearpygui()

    def report(self) -> dict[str, Any]:
        state = self.controller.state
        return {
            "ok": self.ok,
            "error": self.error,
            "steps_done": self.index,
            "engine_reachable": state.engine_reachable,
            "server_starts": self.controller.server.starts,
            "models": [asdict(row) | {"state_text": row.state_text} for row in state.model_rows()],
            "requests": [asdict(row) for row in state.requests.rows],
            "chat": [asdict(turn) for turn in state.chat.turns],
            "chat_result": state.chat.last_result,
            "notices": [notice.text for _, notice in state.notices.items],
            "viewport": {
                "x": dpg.get_viewport_pos()[0],
                "y": dpg.get_viewport_pos()[1],
                "width": dpg.get_viewport_width(),
                "height": dpg.get_viewport_height(),
            },
            "plots": {
                "tokens_per_second": len(state.performance.tokens_per_second),
                "engine_memory": len(state.performance.engine_memory_mb),
            },
        }


def main(argv: list[str]) -> int:
    from hearth.cli.main import main as hearth_main

    script = script_from_environment()
    if script is None:
        raise SystemExit(f"{SCRIPT_ENV} names no script")
    return hearth_main(argv, desktop_driver=lambda controller, tab_bar: ScriptDriver(controller, script, tab_bar))


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
