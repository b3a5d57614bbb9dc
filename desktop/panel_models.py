"""Models tab: every model the engine knows, with Load / Unload and its own
settings, and the file actions (open the folder, add a file, install the
default model) with their progress bars."""

import time
from pathlib import Path

import dearpygui.dearpygui as dpg

from hearth.desktop import theme
from hearth.desktop.controller import DesktopController
from hearth.desktop.list_table import list_table
from hearth.desktop.panel_model_settings import ModelSettingsWindow

TABLE = "models.table"
TASKS = "models.tasks"
FILE_DIALOG = "models.file_dialog"
REFRESH = "models.refresh"
OPEN_FOLDER = "models.open_folder"
ADD_FILE = "models.add_file"
INSTALL_DEFAULT = "models.install_default"
PULL_REFERENCE = "models.pull_reference"
PULL = "models.pull"
FOLDER_TEXT = "models.folder"
EMPTY_TEXT = "models.empty"

# (label, relative width); the last column holds the Load / Unload and Settings buttons.
COLUMNS = (
    ("Model", 2.4),
    ("Architecture", 1.0),
    ("Parameters", 0.9),
    ("Quantization", 1.0),
    ("File size", 0.9),
    ("Context", 1.7),
    ("Chat template", 1.9),
    ("State", 2.0),
)
ACTION_WIDTH = 160


def load_button(model_id: str) -> str:
    return f"models.load.{model_id}"


def unload_button(model_id: str) -> str:
    return f"models.unload.{model_id}"


def settings_button(model_id: str) -> str:
    return f"models.settings.{model_id}"


class ModelsPanel:
    def __init__(self, controller: DesktopController):
        self.controller = controller
        self._shown_version = -1
        self._shown_tasks = -1
        self._shown_folder = ""
        self.settings_window = ModelSettingsWindow(controller)

    def build(self) -> None:
        with dpg.group(horizontal=True):
            controller = self.controller
            dpg.add_button(label="Refresh", tag=REFRESH, callback=lambda: controller.refresh())
            dpg.add_button(
                label="Open models folder", tag=OPEN_FOLDER, callback=lambda: controller.open_models_folder()
            )
            dpg.add_button(label="Add model file...", tag=ADD_FILE, callback=lambda: dpg.show_item(FILE_DIALOG))
            dpg.add_button(
                label="Install default model", tag=INSTALL_DEFAULT, callback=lambda: controller.install_default_model()
            )
        with dpg.group(horizontal=True):
            dpg.add_input_text(
                tag=PULL_REFERENCE,
                hint="owner/name:Q4_K_M or owner/name/FILE.gguf",
                width=520,
                on_enter=True,
                callback=self._on_pull,
            )
            dpg.add_button(label="Pull from Hugging Face", tag=PULL, callback=self._on_pull)
        dpg.add_text("", tag=FOLDER_TEXT, color=theme.MUTED)
        with list_table(TABLE, COLUMNS, height=-110, borders_outerH=True):
            dpg.add_table_column(label="", width_fixed=True, init_width_or_weight=ACTION_WIDTH)
        dpg.add_text("", tag=EMPTY_TEXT, color=theme.MUTED)
        dpg.add_group(tag=TASKS)
        with dpg.file_dialog(
            tag=FILE_DIALOG,
            label="Add a GGUF model file",
            show=False,
            modal=True,
            directory_selector=False,
            default_path=str(Path.home()),
            width=760,
            height=460,
            callback=self._on_file_chosen,
        ):
            dpg.add_file_extension(".gguf", color=theme.ACCENT)
            dpg.add_file_extension(".*")
        self.settings_window.build()

    def _on_file_chosen(self, sender, app_data, user_data=None) -> None:
        selections = (app_data or {}).get("selections") or {}
        paths = list(selections.values()) or [app_data.get("file_path_name", "")]
        for path in paths:
            if path:
                self.controller.add_model_file(Path(path))

    def _on_pull(self, sender=None, app_data=None, user_data=None) -> None:
        if self.controller.pull_model(dpg.get_value(PULL_REFERENCE) or ""):
            dpg.set_value(PULL_REFERENCE, "")

    def _on_load(self, sender, app_data, model_id: str) -> None:
        self.controller.load_model(model_id)

    def _on_unload(self, sender, app_data, model_id: str) -> None:
        self.controller.unload_model(model_id)

    def refresh(self) -> None:
        state = self.controller.state
        folder = f"Models folder: {self.controller.models_dir}"
        if folder != self._shown_folder:
            self._shown_folder = folder
            dpg.set_value(FOLDER_TEXT, folder)
        if state.models_version != self._shown_version:
            self._shown_version = state.models_version
            self._draw_rows()
        self.settings_window.refresh()
        if state.tasks_version != self._shown_tasks:
            self._shown_tasks = state.tasks_version
            self._draw_tasks()
        self._animate_tasks()

    def _draw_rows(self) -> None:
        state = self.controller.state
        dpg.delete_item(TABLE, children_only=True, slot=1)
        rows = state.model_rows()
        for row in rows:
            with dpg.table_row(parent=TABLE):
                dpg.add_text(row.id)
                dpg.add_text(row.architecture)
                dpg.add_text(row.parameters)
                dpg.add_text(row.quantization)
                dpg.add_text(row.file_size)
                dpg.add_text(row.context)
                dpg.add_text(row.chat_template)
                state_text = row.state_text + (f", {row.memory}" if row.memory else "")
                dpg.add_text(state_text, color=theme.STATE_COLOURS.get(row.state, theme.TEXT), wrap=0)
                with dpg.group(horizontal=True):
                    if row.can_unload:
                        dpg.add_button(
                            label="Unload", tag=unload_button(row.id), callback=self._on_unload, user_data=row.id
                        )
                    elif row.can_load:
                        dpg.add_button(label="Load", tag=load_button(row.id), callback=self._on_load, user_data=row.id)
                    if row.usable:
                        dpg.add_button(
                            label="Settings",
                            tag=settings_button(row.id),
                            callback=lambda sender, app_data, model_id: self.settings_window.open(model_id),
                            user_data=row.id,
                        )
        if rows:
            dpg.set_value(EMPTY_TEXT, "")
        elif state.models_listed:
            dpg.set_value(EMPTY_TEXT, "No models yet: add a .gguf file or install the default model.")
        else:
            dpg.set_value(EMPTY_TEXT, "Waiting for the engine...")

    def _draw_tasks(self) -> None:
        dpg.delete_item(TASKS, children_only=True)
        for index, task in enumerate(self.controller.state.task_views()):
            dpg.add_progress_bar(
                parent=TASKS,
                tag=f"models.task.{index}",
                default_value=task.fraction if task.fraction is not None else 0.0,
                overlay=task.overlay,
                width=-1,
                user_data=task.fraction is None,
            )

    def _animate_tasks(self) -> None:
        # Unknown progress (a model load): a bar that sweeps, so the window visibly works.
        sweep = (time.monotonic() * 0.6) % 1.0
        for item in dpg.get_item_children(TASKS, 1) or []:
            if dpg.get_item_user_data(item):
                dpg.set_value(item, sweep)
