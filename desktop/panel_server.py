"""Server tab: where clients connect (with copy buttons), the server process this
window started, and what the engine runs on and holds (from GetStatus)."""

import dearpygui.dearpygui as dpg

from hearth.desktop import theme
from hearth.desktop.controller import DesktopController
from hearth.desktop.state import adapter_health_text

REST_URL = "server.rest_url"
ENGINE_ADDRESS = "server.engine_address"
COPY_REST = "server.copy_rest"
COPY_ENGINE = "server.copy_engine"
START = "server.start"
STOP = "server.stop"
PROCESS = "server.process"
ENGINE_HEALTH = "server.engine_health"
ADAPTER_HEALTH = "server.adapter_health"
LOADED_TABLE = "server.loaded"
LOADED_NONE = "server.loaded_none"

# (label, ServerSummary attribute)
ENGINE_FIELDS = (
    ("Backend", "backend"),
    ("GPU offload", "gpu_offload"),
    ("Uptime", "uptime"),
    ("Engine memory", "engine_memory"),
    ("System memory", "system_memory"),
    ("Models folder", "models_dir"),
    ("Keep-alive", "keep_alive"),
    ("Versions", "versions"),
)


def _value_tag(attribute: str) -> str:
    return f"server.value.{attribute}"


class ServerPanel:
    def __init__(self, controller: DesktopController):
        self.controller = controller
        self._shown_version = -1

    def build(self) -> None:
        with dpg.table(header_row=False, policy=dpg.mvTable_SizingFixedFit, borders_innerH=False):
            for _ in range(3):
                dpg.add_table_column()
            state = self.controller.state
            self._row("OpenAI REST API", REST_URL, COPY_REST, lambda: self._copy(f"{state.rest_url}/v1"))
            self._row("Engine (gRPC)", ENGINE_ADDRESS, COPY_ENGINE, lambda: self._copy(state.engine_address))
        dpg.add_separator()
        with dpg.group(horizontal=True):
            dpg.add_text("Engine:")
            dpg.add_text("", tag=ENGINE_HEALTH)
        with dpg.group(horizontal=True):
            dpg.add_text("REST adapter:")
            dpg.add_text("", tag=ADAPTER_HEALTH)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Start server", tag=START, callback=lambda: self.controller.start_server())
            dpg.add_button(label="Stop server", tag=STOP, callback=lambda: self.controller.stop_server())
            dpg.add_text("", tag=PROCESS, color=theme.MUTED)
        dpg.add_separator()
        with dpg.table(header_row=False, policy=dpg.mvTable_SizingFixedFit):
            dpg.add_table_column()
            dpg.add_table_column(width_stretch=True)
            for label, attribute in ENGINE_FIELDS:
                with dpg.table_row():
                    dpg.add_text(label, color=theme.MUTED)
                    dpg.add_text("-", tag=_value_tag(attribute))
        dpg.add_spacer(height=4)
        dpg.add_text("Loaded models")
        with dpg.table(
            tag=LOADED_TABLE,
            header_row=True,
            row_background=True,
            borders_innerH=True,
            policy=dpg.mvTable_SizingStretchProp,
        ):
            for label in ("Model", "Memory", "Active requests", "Idle for"):
                dpg.add_table_column(label=label)
        dpg.add_text("", tag=LOADED_NONE, color=theme.MUTED)

    @staticmethod
    def _row(label: str, value_tag: str, button_tag: str, copy) -> None:
        with dpg.table_row():
            dpg.add_text(label, color=theme.MUTED)
            dpg.add_text("", tag=value_tag, color=theme.ACCENT)
            dpg.add_button(label="Copy", tag=button_tag, callback=copy)

    def _copy(self, text: str) -> None:
        dpg.set_clipboard_text(text)
        self.controller.state.notify(f"Copied {text}")

    def refresh(self) -> None:
        state = self.controller.state
        if state.server_version == self._shown_version:
            return
        self._shown_version = state.server_version
        dpg.set_value(REST_URL, f"{state.rest_url}/v1")
        dpg.set_value(ENGINE_ADDRESS, state.engine_address)
        if state.engine_reachable:
            dpg.set_value(ENGINE_HEALTH, "ok, answering")
            dpg.configure_item(ENGINE_HEALTH, color=theme.OK)
        elif state.engine_reachable is None:
            dpg.set_value(ENGINE_HEALTH, "connecting...")
            dpg.configure_item(ENGINE_HEALTH, color=theme.MUTED)
        else:
            dpg.set_value(ENGINE_HEALTH, state.engine_detail or "not answering")
            dpg.configure_item(ENGINE_HEALTH, color=theme.ERROR)
        text, healthy = adapter_health_text(state.adapter)
        dpg.set_value(ADAPTER_HEALTH, text)
        dpg.configure_item(ADAPTER_HEALTH, color=theme.OK if healthy else theme.WARNING)

        server = self.controller.server
        if server.running:
            what = "stopping" if server.stopping else "running"
            dpg.set_value(
                PROCESS, f"`hearth serve` started by this window, {what} (pid {server.pid}); log: {server.log_path}"
            )
        else:
            dpg.set_value(PROCESS, "No server started by this window.")
        dpg.configure_item(STOP, enabled=server.running and not server.stopping)
        dpg.configure_item(START, enabled=not server.running and not state.engine_reachable)

        summary = state.server
        for _, attribute in ENGINE_FIELDS:
            value = getattr(summary, attribute) if summary is not None and state.engine_reachable else "-"
            dpg.set_value(_value_tag(attribute), value)
        dpg.delete_item(LOADED_TABLE, children_only=True, slot=1)
        loaded_models = summary.loaded if summary is not None and state.engine_reachable else ()
        dpg.set_value(LOADED_NONE, "" if loaded_models else "None: a model loads on its first request, or with Load.")
        for loaded in loaded_models:
            with dpg.table_row(parent=LOADED_TABLE):
                dpg.add_text(loaded.id)
                dpg.add_text(loaded.memory)
                dpg.add_text(str(loaded.active_requests))
                dpg.add_text(loaded.idle)
