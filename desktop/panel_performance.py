"""Performance tab: tokens per second of each finished request, and the engine's
memory, over the last minutes (Dear PyGui plots)."""

import time

import dearpygui.dearpygui as dpg

from hearth.desktop.controller import DesktopController
from hearth.desktop.state import Series

SPEED_PLOT = "performance.speed_plot"
SPEED_X = "performance.speed_x"
SPEED_Y = "performance.speed_y"
SPEED_LINE = "performance.speed"
SPEED_POINTS = "performance.speed_points"
MEMORY_PLOT = "performance.memory_plot"
MEMORY_X = "performance.memory_x"
MEMORY_Y = "performance.memory_y"
ENGINE_MEMORY = "performance.engine_memory"
MODELS_MEMORY = "performance.models_memory"
SUMMARY = "performance.summary"

X_LABEL = "seconds since the window opened"
# The plots follow the present: the last five minutes, from zero up.
WINDOW_SECONDS = 300.0
HEADROOM = 1.15


def _axis(kind: int, label: str, tag: str) -> int | str:
    return dpg.add_plot_axis(kind, label=label, tag=tag, no_highlight=True)


class PerformancePanel:
    def __init__(self, controller: DesktopController):
        self.controller = controller
        self._shown_version = -1

    def build(self) -> None:
        dpg.add_text("", tag=SUMMARY)
        with dpg.plot(label="Generation speed", tag=SPEED_PLOT, height=300, width=-1):
            dpg.add_plot_legend()
            _axis(dpg.mvXAxis, X_LABEL, SPEED_X)
            _axis(dpg.mvYAxis, "tokens/s", SPEED_Y)
            dpg.add_line_series([], [], label="tokens/s per request", parent=SPEED_Y, tag=SPEED_LINE)
            dpg.add_scatter_series([], [], parent=SPEED_Y, tag=SPEED_POINTS)
        with dpg.plot(label="Memory", tag=MEMORY_PLOT, height=-1, width=-1):
            dpg.add_plot_legend()
            _axis(dpg.mvXAxis, X_LABEL, MEMORY_X)
            _axis(dpg.mvYAxis, "MB", MEMORY_Y)
            dpg.add_line_series([], [], label="engine process", parent=MEMORY_Y, tag=ENGINE_MEMORY)
            dpg.add_line_series([], [], label="loaded models", parent=MEMORY_Y, tag=MODELS_MEMORY)

    def refresh(self) -> None:
        performance = self.controller.state.performance
        if performance.version == self._shown_version:
            return
        self._shown_version = performance.version
        speed = performance.tokens_per_second.values()
        dpg.set_value(SPEED_LINE, list(speed))
        dpg.set_value(SPEED_POINTS, list(speed))
        dpg.set_value(ENGINE_MEMORY, list(performance.engine_memory_mb.values()))
        dpg.set_value(MODELS_MEMORY, list(performance.models_memory_mb.values()))

        now = time.time() - performance.started_at
        start, end = max(0.0, now - WINDOW_SECONDS), max(now, 10.0)
        for axis in (SPEED_X, MEMORY_X):
            dpg.set_axis_limits(axis, start, end)
        dpg.set_axis_limits(SPEED_Y, 0, _top(performance.tokens_per_second, start))
        dpg.set_axis_limits(
            MEMORY_Y, 0, max(_top(performance.engine_memory_mb, start), _top(performance.models_memory_mb, start))
        )
        if speed[1]:
            average = sum(speed[1]) / len(speed[1])
            dpg.set_value(
                SUMMARY,
                f"{len(speed[1])} requests, last {speed[1][-1]:.1f} tokens/s, average {average:.1f} tokens/s",
            )
        else:
            dpg.set_value(SUMMARY, "No finished requests yet: try the Playground.")


def _top(series: Series, since: float) -> float:
    """The y axis' upper limit: room above the highest point in view."""
    visible = [y for x, y in zip(series.x, series.y) if x >= since]
    return max(visible, default=0.0) * HEADROOM or 1.0
