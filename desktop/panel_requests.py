"""Requests tab: one row per finished request, from WatchEvents, newest first;
filtered by text and outcome; failures in red."""

import dearpygui.dearpygui as dpg

from hearth.desktop import theme
from hearth.desktop.controller import DesktopController
from hearth.desktop.list_table import list_table
from hearth.desktop.request_log import OUTCOME_FILTERS

FILTER = "requests.filter"
OUTCOME = "requests.outcome"
CLEAR = "requests.clear"
COUNT = "requests.count"
TABLE = "requests.table"

# (label, relative width)
COLUMNS = (
    ("Time", 0.8),
    ("Model", 2.0),
    ("Prompt tokens", 1.0),
    ("Completion tokens", 1.1),
    ("Duration", 0.9),
    ("Tokens/s", 0.8),
    ("Outcome", 2.6),
)
# Rows drawn at most; the filter reaches the older ones.
SHOWN_ROWS = 300


class RequestsPanel:
    def __init__(self, controller: DesktopController):
        self.controller = controller
        self._shown: tuple | None = None

    def build(self) -> None:
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag=FILTER, hint="filter: model, request id, error...", width=320)
            dpg.add_combo(list(OUTCOME_FILTERS), tag=OUTCOME, default_value="All", width=140)
            dpg.add_button(label="Clear", tag=CLEAR, callback=lambda: self.controller.state.requests.clear())
            dpg.add_text("", tag=COUNT, color=theme.MUTED)
        with list_table(TABLE, COLUMNS, height=-1):
            pass

    def refresh(self) -> None:
        log = self.controller.state.requests
        text, outcome = dpg.get_value(FILTER) or "", dpg.get_value(OUTCOME) or "All"
        key = (log.version, text, outcome)
        if key == self._shown:
            return
        self._shown = key
        rows = log.filtered(text, outcome)
        dpg.set_value(COUNT, f"{len(rows)} of {len(log.rows)} requests")
        dpg.delete_item(TABLE, children_only=True, slot=1)
        for row in rows[:SHOWN_ROWS]:
            colour = theme.OUTCOME_COLOURS.get(row.outcome, theme.TEXT)
            with dpg.table_row(parent=TABLE):
                dpg.add_text(row.time, color=colour)
                dpg.add_text(row.model, color=colour)
                dpg.add_text(str(row.prompt_tokens), color=colour)
                dpg.add_text(str(row.completion_tokens), color=colour)
                dpg.add_text(row.duration, color=colour)
                dpg.add_text(row.speed, color=colour)
                dpg.add_text(row.outcome_text, color=colour, wrap=420)
