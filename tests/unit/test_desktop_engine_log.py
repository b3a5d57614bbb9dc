"""The Logs tab's lines: newest first, filtered by text and lowest level, a
line replayed after a reconnect taken once, bounded."""

import pytest

from hearth.desktop.engine_log import EngineLog
from hearth.engine.v1 import engine_pb2 as pb

pytestmark = pytest.mark.unit


def line(message: str, level=pb.LOG_LEVEL_INFO, at: float = 1000.0, replayed=False, logger="hearth.engine.x"):
    return pb.LogLine(timestamp=at, level=level, logger=logger, message=message, replayed=replayed)


def test_lines_filter_by_text_and_lowest_level_newest_first():
    log = EngineLog()
    log.add(line("loaded tiny in 0.1s", at=1.0))
    log.add(line("model file broken.gguf is invalid", pb.LOG_LEVEL_WARNING, at=2.0, logger="hearth.engine.models"))
    log.add(line("loading big failed: out of memory", pb.LOG_LEVEL_ERROR, at=3.0))
    assert [row.message[:7] for row in log.filtered()] == ["loading", "model f", "loaded "]
    assert [row.level_name for row in log.filtered(level="Warnings")] == ["error", "warning"]
    assert [row.level_name for row in log.filtered(level="Errors")] == ["error"]
    assert [row.message for row in log.filtered("TINY")] == ["loaded tiny in 0.1s"]
    assert [row.level_name for row in log.filtered("engine.models")] == ["warning"]


def test_a_reconnect_replaying_the_past_adds_no_line_twice_and_the_log_is_bounded():
    log = EngineLog(limit=3)
    first, second = line("a", at=1.0), line("b", at=2.0)
    log.add(first)
    log.add(second)
    for past in (first, second):
        replayed = pb.LogLine()
        replayed.CopyFrom(past)
        replayed.replayed = True
        log.add(replayed)
    assert [row.message for row in log.rows] == ["a", "b"]
    # The same words written again later are a new line.
    log.add(line("a", at=5.0))
    log.add(line("c", at=6.0))
    assert [row.message for row in log.rows] == ["b", "a", "c"]
