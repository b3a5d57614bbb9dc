"""Logs tab: the engine's own log lines, from WatchLogs, newest first;
filtered by text (message or logger) and lowest level; warnings yellow,
errors red."""

import dearpygui.dearpygui as dpg

from hearth.desktop import theme
from hearth.desktop.controller import DesktopController
from hearth.desktop.engine_log import LEVEL_FILTERS
from hearth.desktop.list_table import list_table

FILTER = "logs.filter"
LEVEL = "logs.level"
CLEAR = "logs.clear"
COUNT = "logs.count"
TABLE = "logs.table"
COLUMNS = (("Time", 0.7), ("Level", 0.6), ("Logger", 1.8), ("Message", 6.0))
LEVEL_COLOURS = {3: theme.WARNING, 4: theme.ERROR}
# Lines drawn at most; the filter reaches the older ones.
SHOWN_ROWS = 300


def message_tag(index: int) -> str:
    """The message of the index-th line shown (0: the newest that matches)."""
    return f"logs.message.{index}"


class LogsPanel:
    def __init__(self, controller: DesktopController):
        self.controller = controller
        self._shown: tuple | None = None

    def build(self) -> None:
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag=FILTER, hint="filter: text or logger", width=320)
            dpg.add_combo(list(LEVEL_FILTERS), tag=LEVEL, default_value="All", width=140)
            dpg.add_button(label="Clear", tag=CLEAR, callback=lambda: self.controller.state.engine_log.clear())
            dpg.add_text("", tag=COUNT, color=theme.MUTED)
        with list_table(TABLE, COLUMNS, height=-1):
            pass

    def refresh(self) -> None:
        log = self.controller.state.engine_log
        text, level = dpg.get_value(FILTER) or "", dpg.get_value(LEVEL) or "All"
        key = (log.version, text, level)
        if key == self._shown:
            return
        self._shown = key
        rows = log.filtered(text, level)
        dpg.set_value(COUNT, f"{len(rows)} of {len(log.rows)} lines")
        dpg.delete_item(TABLE, children_only=True, slot=1)
        for index, row in enumerate(rows[:SHOWN_ROWS]):
            colour = LEVEL_COLOURS.get(row.level, theme.TEXT)
            with dpg.table_row(parent=TABLE):
                dpg.add_text(row.time, color=colour)
                dpg.add_text(row.level_name, color=colour)
                dpg.add_text(row.logger.removeprefix("hearth."), color=theme.MUTED)
                dpg.add_text(row.message, tag=message_tag(index), color=colour, wrap=700)
