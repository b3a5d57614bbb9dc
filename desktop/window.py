"""`hearth desktop`: the Dear PyGui window and its render loop.

Each frame: apply the messages background work posted (DesktopController.pump),
run the callbacks of what the user clicked, let each panel copy what changed
into its items, draw. Nothing in the loop waits on the network or copies files;
those run on the threads of engine_link and file_tasks."""

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Protocol

import dearpygui.dearpygui as dpg

from hearth.desktop import placement, theme
from hearth.desktop.config import DesktopConfig
from hearth.desktop.controller import DesktopController
from hearth.desktop.frame_pacing import FramePacer
from hearth.desktop.panel_logs import LogsPanel
from hearth.desktop.panel_models import ModelsPanel
from hearth.desktop.panel_performance import PerformancePanel
from hearth.desktop.panel_playground import PlaygroundPanel
from hearth.desktop.panel_requests import RequestsPanel
from hearth.desktop.panel_server import ServerPanel
from hearth.desktop.panel_settings import SettingsPanel
from hearth.desktop.settings_form import SettingsValues
from hearth.formatting import clock_time

log = logging.getLogger(__name__)

TITLE = "Hearth"
MAIN_WINDOW = "main"
TAB_BAR = "tabs"
HEADER_ENGINE = "header.engine"
HEADER_ADAPTER = "header.adapter"
HEADER_BACKEND = "header.backend"
HEADER_URL = "header.url"
FOOTER = "footer"


def _input_seen() -> None:
    pass


class Window:
    def __init__(self, controller: DesktopController, settings_values: SettingsValues):
        self.controller = controller
        self.panels = {
            "models": ("Models", ModelsPanel(controller)),
            "server": ("Server", ServerPanel(controller)),
            "requests": ("Requests", RequestsPanel(controller)),
            "logs": ("Logs", LogsPanel(controller)),
            "performance": ("Performance", PerformancePanel(controller)),
            "settings": ("Settings", SettingsPanel(controller, settings_values)),
            "playground": ("Playground", PlaygroundPanel(controller)),
        }
        self._shown_header = -1
        self._shown_notices = -1

    def build(self) -> None:
        with dpg.window(tag=MAIN_WINDOW):
            with dpg.group(horizontal=True):
                dpg.add_text("Hearth", color=theme.ACCENT)
                dpg.add_text("  engine:", color=theme.MUTED)
                dpg.add_text("connecting...", tag=HEADER_ENGINE, color=theme.MUTED)
                dpg.add_text("  REST:", color=theme.MUTED)
                dpg.add_text("checking...", tag=HEADER_ADAPTER, color=theme.MUTED)
                dpg.add_text("", tag=HEADER_BACKEND, color=theme.MUTED)
                dpg.add_text("", tag=HEADER_URL, color=theme.ACCENT)
            dpg.add_separator()
            with dpg.child_window(height=-30, border=False):
                with dpg.tab_bar(tag=TAB_BAR):
                    for key, (label, panel) in self.panels.items():
                        with dpg.tab(label=label, tag=f"tab.{key}"):
                            panel.build()
            dpg.add_separator()
            dpg.add_text("", tag=FOOTER)
        dpg.set_primary_window(MAIN_WINDOW, True)
        # Input queues a callback, and a queued callback is what keeps the frame rate up.
        with dpg.handler_registry():
            dpg.add_mouse_move_handler(callback=_input_seen)
            dpg.add_mouse_click_handler(callback=_input_seen)
            dpg.add_mouse_wheel_handler(callback=_input_seen)
            dpg.add_key_press_handler(callback=_input_seen)

    def refresh(self) -> None:
        state = self.controller.state
        if state.server_version != self._shown_header:
            self._shown_header = state.server_version
            self._refresh_header()
        if state.notices.version != self._shown_notices:
            self._shown_notices = state.notices.version
            if state.notices.items:
                when, latest = state.notices.items[-1]
                dpg.set_value(FOOTER, f"{clock_time(when)}  {latest.text}")
                dpg.configure_item(FOOTER, color=theme.LEVEL_COLOURS.get(latest.level, theme.TEXT))
        for _, panel in self.panels.values():
            panel.refresh()

    def _refresh_header(self) -> None:
        state = self.controller.state
        if state.engine_reachable:
            dpg.set_value(HEADER_ENGINE, f"ok at {state.engine_address}")
            dpg.configure_item(HEADER_ENGINE, color=theme.OK)
        elif state.engine_reachable is False:
            starting = self.controller.server.running and not self.controller.server.stopping
            dpg.set_value(HEADER_ENGINE, "starting..." if starting else f"not answering at {state.engine_address}")
            dpg.configure_item(HEADER_ENGINE, color=theme.WARNING if starting else theme.ERROR)
        adapter = state.adapter
        healthy = adapter is not None and adapter.status_code == 200
        dpg.set_value(HEADER_ADAPTER, "ok" if healthy else "not answering" if adapter else "checking...")
        dpg.configure_item(HEADER_ADAPTER, color=theme.OK if healthy else theme.WARNING)
        if state.server is not None and state.engine_reachable:
            offload = "on" if state.status is not None and state.status.gpu_offload else "off"
            dpg.set_value(HEADER_BACKEND, f"  {state.server.backend}, GPU offload {offload}")
        dpg.set_value(HEADER_URL, f"  {state.rest_url}/v1")


class FrameDriver(Protocol):
    """Drives the window from outside, a step per frame (the end-to-end tests' script)."""

    done: bool
    ok: bool

    def step(self) -> None: ...


# Makes a driver for the window's controller and its tab bar's tag.
DriverFactory = Callable[[DesktopController, str], FrameDriver]


def display_problem() -> str | None:
    """Why no window can open here, if that is so. GLFW aborts the process (no
    exception to catch) when it finds no display, so look before it does."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display to open a window on (DISPLAY is not set); run it in a desktop session, or under xvfb-run"
    return None


def run_desktop(
    config: DesktopConfig,
    settings_values: SettingsValues,
    *,
    reload_config: Callable[[], DesktopConfig] | None = None,
    driver_factory: DriverFactory | None = None,
) -> int:
    """Runs the window until it is closed; returns the process exit code (with
    a driver: 0 only when it finished and succeeded)."""
    if problem := display_problem():
        log.error("%s", problem)
        return 1
    # One line per adapter health check would drown the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    controller = DesktopController(config, reload_config=reload_config)
    dpg.create_context()
    # Callbacks run in this loop, on this thread, between frames: the state has one writer.
    dpg.configure_app(manual_callback_management=True)
    theme.load_font()
    theme.apply_theme()
    window = Window(controller, settings_values)
    window.build()
    remembered = placement.state_file()
    saved = placement.saved_size(remembered)
    width, height = saved or (placement.DEFAULT_WIDTH, placement.DEFAULT_HEIGHT)
    dpg.create_viewport(
        title=TITLE,
        width=width,
        height=height,
        x_pos=0,
        y_pos=0,
        min_width=placement.MIN_WIDTH,
        min_height=placement.MIN_HEIGHT,
    )
    dpg.setup_dearpygui()
    dpg.show_viewport()
    # The screen is asked once the window holds its own display connection: an X server
    # with no other client resets when a short-lived one closes, and would refuse the window.
    where = placement.placement(placement.screen(), saved)
    dpg.set_viewport_width(where.width)
    dpg.set_viewport_height(where.height)
    dpg.set_viewport_pos([where.x, where.y])
    driver = driver_factory(controller, TAB_BAR) if driver_factory is not None else None

    previous_sigterm = signal.signal(signal.SIGTERM, lambda *_: dpg.stop_dearpygui())
    controller.start()
    try:
        pacer = FramePacer()
        while dpg.is_dearpygui_running():
            started = time.monotonic()
            controller.pump()
            jobs = dpg.get_callback_queue()
            dpg.run_callbacks(jobs)
            window.refresh()
            if driver is not None:
                driver.step()
            dpg.render_dearpygui_frame()
            # Only the user's input asks for the fast rate: new text from a stream or a poll
            # shows within a frame either way, and those frames would take CPU from the engine.
            time.sleep(pacer.delay(started, busy=bool(jobs)))
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        placement.save_size(remembered, dpg.get_viewport_width(), dpg.get_viewport_height())
        # The window goes first, so that waiting for the server to stop never shows a frozen one.
        dpg.destroy_context()
        controller.shutdown()
    if driver is not None and not (driver.done and driver.ok):
        return 1
    return 0
