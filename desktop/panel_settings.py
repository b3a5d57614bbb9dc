"""Settings tab: the server's main settings, validated as the server validates
them and saved to the config file's "settings" object, each with a note on
what must restart for it to apply."""

import dearpygui.dearpygui as dpg

from hearth.desktop import theme
from hearth.desktop.controller import DesktopController
from hearth.desktop.settings_form import FIELDS, LABELS, RESTART_NOTES, SettingsValues

SAVE = "settings.save"
REVERT = "settings.revert"
REPORT = "settings.report"
BROWSE = "settings.browse"
FOLDER_DIALOG = "settings.folder_dialog"
INPUT_WIDTH = 420


def input_tag(name: str) -> str:
    return f"settings.{name}"


def error_tag(name: str) -> str:
    return f"settings.error.{name}"


def note_tag(name: str) -> str:
    return f"settings.note.{name}"


class SettingsPanel:
    def __init__(self, controller: DesktopController, values: SettingsValues):
        self.controller = controller
        self.saved = values

    def build(self) -> None:
        dpg.add_text(f"Config file: {self.controller.config.config_file}", color=theme.MUTED)
        with dpg.table(header_row=False, policy=dpg.mvTable_SizingFixedFit):
            dpg.add_table_column()
            dpg.add_table_column()
            dpg.add_table_column(width_stretch=True)
            for name in FIELDS:
                with dpg.table_row():
                    dpg.add_text(LABELS[name])
                    self._input(name)
                    # A field's error takes the place of its note until it is fixed.
                    dpg.add_text("", tag=error_tag(name), color=theme.ERROR, show=False)
                    dpg.add_text(RESTART_NOTES[name], tag=note_tag(name), color=theme.MUTED)
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
        pass

