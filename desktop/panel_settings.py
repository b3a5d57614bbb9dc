"""Settings tab: the server's main settings, validated as the server validates
them and saved to the config file's "settings" object, each with a note on
what must restart for it to apply."""

import dearpygui.dearpygui as dpg

from hearth.desktop import theme
from hearth.desktop.controller import DesktopController
from hearth.desktop.settings_form import FIELDS, LABELS, RESTART_NOTES, SettingsValues, differing, running_values

SAVE = "settings.save"
REVERT = "settings.revert"
REPORT = "settings.report"
BROWSE = "settings.browse"
FOLDER_DIALOG = "settings.folder_dialog"
INPUT_WIDTH = 320
RUNNING_WIDTH = 220
NOTE_WIDTH = 300


def input_tag(name: str) -> str:
    return f"settings.{name}"


def error_tag(name: str) -> str:
    return f"settings.error.{name}"


def note_tag(name: str) -> str:
    return f"settings.note.{name}"


def running_tag(name: str) -> str:
    return f"settings.running.{name}"


class SettingsPanel:
    def __init__(self, controller: DesktopController, values: SettingsValues):
        self.controller = controller
        self.saved = values
        self._shown: tuple | None = None

    def build(self) -> None:
        dpg.add_text(f"Config file: {self.controller.config.config_file}", color=theme.MUTED)
        with dpg.table(header_row=False, policy=dpg.mvTable_SizingFixedFit):
            dpg.add_table_column()
            dpg.add_table_column()
            dpg.add_table_column()
            dpg.add_table_column()
            with dpg.table_row():
                dpg.add_text("")
                dpg.add_text("Saved", color=theme.MUTED)
                dpg.add_text("Running now", color=theme.MUTED)
                dpg.add_text("")
            for name in FIELDS:
                with dpg.table_row():
                    dpg.add_text(LABELS[name])
                    self._input(name)
                    dpg.add_text("-", tag=running_tag(name), color=theme.MUTED, wrap=RUNNING_WIDTH)
                    # A field's error takes the place of its note until it is fixed.
                    with dpg.group():
                        dpg.add_text("", tag=error_tag(name), color=theme.ERROR, show=False, wrap=NOTE_WIDTH)
                        dpg.add_text(RESTART_NOTES[name], tag=note_tag(name), color=theme.MUTED, wrap=NOTE_WIDTH)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Save", tag=SAVE, callback=self._on_save)
            dpg.add_button(label="Revert", tag=REVERT, callback=lambda: self.fill(self.saved))
        dpg.add_text("", tag=REPORT, wrap=900)
        with dpg.file_dialog(
            tag=FOLDER_DIALOG,
            label="Models folder",
            show=False,
            modal=True,
            directory_selector=True,
            width=760,
            height=460,
            callback=lambda sender, app_data: dpg.set_value(input_tag("models_dir"), app_data["file_path_name"]),
        ):
            pass
        self.fill(self.saved)

    def _input(self, name: str) -> None:
        tag = input_tag(name)
        if name == "use_gpu":
            dpg.add_checkbox(tag=tag, label="offload layers when llama.cpp is built for Metal or CUDA")
        elif name == "cors_origins":
            dpg.add_input_text(tag=tag, multiline=True, height=60, width=INPUT_WIDTH, hint="one origin per line")
        elif name == "api_key":
            dpg.add_input_text(tag=tag, password=True, width=INPUT_WIDTH, hint="empty: no key")
        elif name == "models_dir":
            with dpg.group(horizontal=True):
                dpg.add_input_text(tag=tag, width=INPUT_WIDTH - 90)
                dpg.add_button(label="Browse...", tag=BROWSE, callback=lambda: dpg.show_item(FOLDER_DIALOG))
        else:
            dpg.add_input_text(tag=tag, decimal=True, width=160)

    def fill(self, values: SettingsValues) -> None:
        for name in FIELDS:
            value = getattr(values, name)
            if name == "cors_origins":
                value = "\n".join(value)
            elif name != "use_gpu":
                value = f"{value:g}" if isinstance(value, float) else str(value)
            dpg.set_value(input_tag(name), value)
        self._show_errors({})

    def raw_values(self) -> dict:
        return {name: dpg.get_value(input_tag(name)) for name in FIELDS}

    def _on_save(self) -> None:
        values, errors, report = self.controller.save_settings(self.saved, self.raw_values())
        self._show_errors(errors)
        dpg.set_value(REPORT, report)
        dpg.configure_item(REPORT, color=theme.ERROR if values is None else theme.OK)
        if values is not None:
            self.saved = values

    @staticmethod
    def _show_errors(errors: dict[str, str]) -> None:
        for name in FIELDS:
            error = errors.get(name, "")
            dpg.set_value(error_tag(name), error)
            dpg.configure_item(error_tag(name), show=bool(error))
            dpg.configure_item(note_tag(name), show=not error)

    def refresh(self) -> None:
        state = self.controller.state
        shown = (state.server_version, id(self.saved))
        if shown == self._shown:
            return
        self._shown = shown
        running = running_values(state.status, state.rest_url)
        changed = differing(self.saved, running)
        for name in FIELDS:
            dpg.set_value(running_tag(name), running.get(name, "-"))
            dpg.configure_item(running_tag(name), color=theme.WARNING if name in changed else theme.MUTED)
            note = "differs from the saved value: restart the server to apply it" if name in changed else ""
            dpg.set_value(note_tag(name), note or RESTART_NOTES[name])
            dpg.configure_item(note_tag(name), color=theme.WARNING if note else theme.MUTED)

