"""The Models tab's per-model settings window: how the model is loaded
(context, GPU layers, slots, KV cache type, keep-alive) and its own system
prompt, parameters and chat template, saved to its config entry through the
engine, with the memory the engine estimates for the saved settings."""

import dearpygui.dearpygui as dpg

from hearth.desktop import theme
from hearth.desktop.controller import DesktopController
from hearth.desktop.model_settings_form import (
    ENGINE_DEFAULT,
    KV_CACHE_TYPES,
    LINE_FIELDS,
    PARAMETERS_HINT,
    TEXT_FIELDS,
    ModelSettingsValues,
    form_values,
)

WINDOW = "model_settings.window"
TITLE = "model_settings.title"
KV_CACHE = "model_settings.kv_cache_type"
ESTIMATE = "model_settings.estimate"
SAVE = "model_settings.save"
CLOSE = "model_settings.close"
REPORT = "model_settings.report"
INPUT_WIDTH = 300


def field_tag(name: str) -> str:
    return f"model_settings.{name}"


def error_tag(name: str) -> str:
    return f"model_settings.error.{name}"


class ModelSettingsWindow:
    def __init__(self, controller: DesktopController):
        self.controller = controller
        self.model_id = ""
        self._shown_version = -1
        self._shown_notices = -1

    def build(self) -> None:
        with dpg.window(tag=WINDOW, label="Model settings", show=False, width=680, height=600, pos=(120, 50)):
            dpg.add_text("", tag=TITLE, color=theme.ACCENT)
            dpg.add_text("Saved to the model's config entry; they apply on its next load.", color=theme.MUTED)
            with dpg.table(header_row=False, policy=dpg.mvTable_SizingFixedFit):
                dpg.add_table_column()
                dpg.add_table_column()
                dpg.add_table_column()
                for name, label, hint in LINE_FIELDS:
                    with dpg.table_row():
                        dpg.add_text(label)
                        dpg.add_input_text(tag=field_tag(name), hint=hint, width=INPUT_WIDTH)
                        dpg.add_text("", tag=error_tag(name), color=theme.ERROR)
                with dpg.table_row():
                    dpg.add_text("KV cache")
                    dpg.add_combo([ENGINE_DEFAULT, *KV_CACHE_TYPES], tag=KV_CACHE, width=INPUT_WIDTH)
                    dpg.add_text("", tag=error_tag("kv_cache_type"), color=theme.ERROR)
            for name, label in TEXT_FIELDS:
                with dpg.group(horizontal=True):
                    dpg.add_text(label)
                    if name == "parameters":
                        dpg.add_text(PARAMETERS_HINT, color=theme.MUTED)
                    # Only the parameters are read, so only they can be wrong.
                    dpg.add_text("", tag=error_tag(name), color=theme.ERROR)
                dpg.add_input_text(tag=field_tag(name), multiline=True, width=-1, height=52)
            dpg.add_text("", tag=ESTIMATE, color=theme.MUTED)
            with dpg.group(horizontal=True):
                dpg.add_button(label="Save", tag=SAVE, callback=self._on_save)
                dpg.add_button(label="Close", tag=CLOSE, callback=lambda: dpg.hide_item(WINDOW))
                dpg.add_text("", tag=REPORT, color=theme.MUTED, wrap=480)

    def open(self, model_id: str) -> None:
        model = self.controller.state.model(model_id)
        if model is None:
            return
        self.model_id = model_id
        dpg.set_value(TITLE, model_id)
        values = form_values(model.settings)
        for name, _, _ in LINE_FIELDS:
            dpg.set_value(field_tag(name), getattr(values, name))
        for name, _ in TEXT_FIELDS:
            dpg.set_value(field_tag(name), getattr(values, name))
        dpg.set_value(KV_CACHE, values.kv_cache_type)
        self._show_errors({})
        dpg.set_value(REPORT, "")
        self._shown_version = -1
        dpg.show_item(WINDOW)
        dpg.focus_item(WINDOW)

    def _values(self) -> ModelSettingsValues:
        fields = {name: dpg.get_value(field_tag(name)) or "" for name, _, _ in LINE_FIELDS}
        fields |= {name: dpg.get_value(field_tag(name)) or "" for name, _ in TEXT_FIELDS}
        return ModelSettingsValues(kv_cache_type=dpg.get_value(KV_CACHE) or ENGINE_DEFAULT, **fields)

    def _on_save(self) -> None:
        errors = self.controller.save_model_settings(self.model_id, self._values())
        self._show_errors(errors)
        dpg.set_value(REPORT, "Not saved: fix the fields marked in red." if errors else "Saving...")

    def _show_errors(self, errors: dict[str, str]) -> None:
        for name in [*(field for field, _, _ in LINE_FIELDS), "kv_cache_type", *(field for field, _ in TEXT_FIELDS)]:
            dpg.set_value(error_tag(name), errors.get(name, ""))

    def refresh(self) -> None:
        """The estimate follows the engine's listing; the report, the engine's answer to a save."""
        state = self.controller.state
        if not self.model_id or not dpg.is_item_shown(WINDOW):
            return
        if state.notices.version != self._shown_notices:
            self._shown_notices = state.notices.version
            latest = state.notices.latest
            saved = f"Saved the settings of {self.model_id}:", f"Could not save the settings of {self.model_id}:"
            if latest is not None and latest.text.startswith(saved):
                dpg.set_value(REPORT, latest.text)
        if state.models_version == self._shown_version:
            return
        self._shown_version = state.models_version
        model = state.model(self.model_id)
        if model is None:
            return
        estimate = model.estimated_memory_bytes
        dpg.set_value(
            ESTIMATE,
            f"Estimated memory once loaded with the saved settings: {estimate / 1e6:.0f} MB"
            f" (context {model.context_window})"
            if estimate
            else "",
        )
