"""Performance tab: tokens per second and time to first token of each finished
request, and the engine's memory and queue (requests waiting, slots busy), over
the last minutes (Dear PyGui plots)."""

import time

import dearpygui.dearpygui as dpg

from hearth.desktop.controller import DesktopController
from hearth.desktop.state import Performance, Series

PLOTS = "performance.plots"
SPEED_PLOT = "performance.speed_plot"
SPEED_X = "performance.speed_x"
SPEED_Y = "performance.speed_y"
SPEED_LINE = "performance.speed"
SPEED_POINTS = "performance.speed_points"
TTFT_PLOT = "performance.ttft_plot"
TTFT_X = "performance.ttft_x"
TTFT_Y = "performance.ttft_y"
TTFT_LINE = "performance.ttft"
TTFT_POINTS = "performance.ttft_points"
MEMORY_PLOT = "performance.memory_plot"
MEMORY_X = "performance.memory_x"
MEMORY_Y = "performance.memory_y"
ENGINE_MEMORY = "performance.engine_memory"
MODELS_MEMORY = "performance.models_memory"
QUEUE_PLOT = "performance.queue_plot"
QUEUE_X = "performance.queue_x"
QUEUE_Y = "performance.queue_y"
QUEUED = "performance.queue"
BUSY_SLOTS = "performance.busy_slots"
SUMMARY = "performance.summary"
QUEUE_SUMMARY = "performance.queue_summary"

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
        dpg.add_text("", tag=QUEUE_SUMMARY)
        # Per request on top (speed, first token), per poll below (memory, queue).
        with dpg.subplots(2, 2, tag=PLOTS, width=-1, height=-1, no_title=True):
            with dpg.plot(label="Generation speed", tag=SPEED_PLOT):
                dpg.add_plot_legend()
                _axis(dpg.mvXAxis, X_LABEL, SPEED_X)
                _axis(dpg.mvYAxis, "tokens/s", SPEED_Y)
                dpg.add_line_series([], [], label="tokens/s per request", parent=SPEED_Y, tag=SPEED_LINE)
                dpg.add_scatter_series([], [], parent=SPEED_Y, tag=SPEED_POINTS)
            with dpg.plot(label="Time to first token", tag=TTFT_PLOT):
                dpg.add_plot_legend()
                _axis(dpg.mvXAxis, X_LABEL, TTFT_X)
                _axis(dpg.mvYAxis, "seconds", TTFT_Y)
                dpg.add_line_series([], [], label="first token per request", parent=TTFT_Y, tag=TTFT_LINE)
                dpg.add_scatter_series([], [], parent=TTFT_Y, tag=TTFT_POINTS)
            with dpg.plot(label="Memory", tag=MEMORY_PLOT):
                dpg.add_plot_legend()
                _axis(dpg.mvXAxis, X_LABEL, MEMORY_X)
                _axis(dpg.mvYAxis, "MB", MEMORY_Y)
                dpg.add_line_series([], [], label="engine process", parent=MEMORY_Y, tag=ENGINE_MEMORY)
                dpg.add_line_series([], [], label="loaded models", parent=MEMORY_Y, tag=MODELS_MEMORY)
            with dpg.plot(label="Queue", tag=QUEUE_PLOT):
                dpg.add_plot_legend()
                _axis(dpg.mvXAxis, X_LABEL, QUEUE_X)
                _axis(dpg.mvYAxis, "requests", QUEUE_Y)
                dpg.add_line_series([], [], label="waiting for a slot", parent=QUEUE_Y, tag=QUEUED)
                dpg.add_line_series([], [], label="slots busy", parent=QUEUE_Y, tag=BUSY_SLOTS)

    def refresh(self) -> None:
        performance = self.controller.state.performance
        if performance.version == self._shown_version:
            return
        self._shown_version = performance.version
        speed = performance.tokens_per_second.values()
        dpg.set_value(SPEED_LINE, list(speed))
        dpg.set_value(SPEED_POINTS, list(speed))
        first_token = performance.time_to_first_token.values()
        dpg.set_value(TTFT_LINE, list(first_token))
        dpg.set_value(TTFT_POINTS, list(first_token))
        dpg.set_value(ENGINE_MEMORY, list(performance.engine_memory_mb.values()))
        dpg.set_value(MODELS_MEMORY, list(performance.models_memory_mb.values()))
        dpg.set_value(QUEUED, list(performance.queued_requests.values()))
        dpg.set_value(BUSY_SLOTS, list(performance.busy_slots.values()))

        now = time.time() - performance.started_at
        start, end = max(0.0, now - WINDOW_SECONDS), max(now, 10.0)
        for axis in (SPEED_X, TTFT_X, MEMORY_X, QUEUE_X):
            dpg.set_axis_limits(axis, start, end)
        dpg.set_axis_limits(SPEED_Y, 0, _top(performance.tokens_per_second, start))
        dpg.set_axis_limits(TTFT_Y, 0, _top(performance.time_to_first_token, start))
        dpg.set_axis_limits(
            MEMORY_Y, 0, max(_top(performance.engine_memory_mb, start), _top(performance.models_memory_mb, start))
        )
        dpg.set_axis_limits(
            QUEUE_Y, 0, max(_top(performance.queued_requests, start), _top(performance.busy_slots, start))
        )
        dpg.set_value(SUMMARY, request_summary(performance))
        dpg.set_value(QUEUE_SUMMARY, queue_summary(performance))


def request_summary(performance: Performance) -> str:
    speeds = performance.tokens_per_second.y
    first_tokens = performance.time_to_first_token.y
    if not speeds and not first_tokens:
        return "No finished requests yet: try the Playground."
    parts = []
    if speeds:
        average = sum(speeds) / len(speeds)
        parts.append(f"{len(speeds)} requests, last {speeds[-1]:.1f} tokens/s, average {average:.1f} tokens/s")
    if first_tokens:
        average = sum(first_tokens) / len(first_tokens)
        parts.append(f"first token: last {_seconds(first_tokens[-1])}, average {_seconds(average)}")
    return "; ".join(parts)


def queue_summary(performance: Performance) -> str:
    if not performance.queued_requests:
        return "No status from the engine yet."
    waiting, busy = int(performance.queued_requests.y[-1]), int(performance.busy_slots.y[-1])
    return f"Now: {waiting} waiting for a slot, {busy} of {performance.slots} slots busy"


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _top(series: Series, since: float) -> float:
    """The y axis' upper limit: room above the highest point in view."""
    visible = [y for x, y in zip(series.x, series.y) if x >= since]
    return max(visible, default=0.0) * HEADROOM or 1.0
