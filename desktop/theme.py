"""Colours, the font and the global theme of the window."""

import logging
from pathlib import Path

import dearpygui.dearpygui as dpg

log = logging.getLogger(__name__)

OK = (120, 205, 130)
WARNING = (235, 195, 90)
ERROR = (240, 100, 95)
MUTED = (150, 155, 165)
ACCENT = (110, 170, 240)
TEXT = (225, 228, 232)

LEVEL_COLOURS = {"info": TEXT, "warning": WARNING, "error": ERROR}
STATE_COLOURS = {"ready": OK, "loading": WARNING, "failed": ERROR, "invalid": ERROR, "unloaded": MUTED}
OUTCOME_COLOURS = {"completed": TEXT, "cancelled": WARNING, "failed": ERROR}

FONT_SIZE = 16
# A readable sans-serif where the platform has one; Dear PyGui's built-in bitmap font otherwise.
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:/Windows/Fonts/segoeui.ttf",
)


def load_font() -> None:
    for candidate in FONT_CANDIDATES:
        path = Path(candidate)
        if not path.is_file():
            continue
        # Dear PyGui 2 loads the glyphs text needs as it meets them: model output in any script.
        with dpg.font_registry():
            font = dpg.add_font(str(path), FONT_SIZE)
        dpg.bind_font(font)
        log.debug("using font %s", path)
        return
    log.debug("no system font found; using Dear PyGui's own")


def apply_theme() -> None:
    with dpg.theme() as theme:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_style(dpg.mvStyleVar_FrameRounding, 4)
            dpg.add_theme_style(dpg.mvStyleVar_WindowPadding, 12, 10)
            dpg.add_theme_style(dpg.mvStyleVar_FramePadding, 8, 4)
            dpg.add_theme_style(dpg.mvStyleVar_ItemSpacing, 8, 6)
            dpg.add_theme_style(dpg.mvStyleVar_CellPadding, 6, 3)
            dpg.add_theme_color(dpg.mvThemeCol_Header, (55, 70, 95))
            dpg.add_theme_color(dpg.mvThemeCol_Button, (50, 75, 110))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (65, 100, 150))
            dpg.add_theme_color(dpg.mvThemeCol_PlotHistogram, (90, 150, 220))
        # A button that cannot be used now (Stop with nothing streaming) looks it.
        with dpg.theme_component(dpg.mvButton, enabled_state=False):
            dpg.add_theme_color(dpg.mvThemeCol_Button, (55, 58, 64))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (55, 58, 64))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (55, 58, 64))
            dpg.add_theme_color(dpg.mvThemeCol_Text, (120, 124, 130))
    dpg.bind_theme(theme)
