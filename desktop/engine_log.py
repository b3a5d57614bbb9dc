"""The engine's log lines as the Logs tab shows them, from WatchLogs: newest
last, bounded, a line replayed to a new watch (after a reconnect) taken once,
filtered by text and by lowest level."""

from collections import deque
from dataclasses import dataclass

from hearth.desktop.recent_keys import RecentKeys
from hearth.engine.v1 import engine_pb2 as pb
from hearth.formatting import clock_time

MAX_LOG_LINES = 2000
# The Logs tab's level filter: the lowest level shown.
LEVEL_FILTERS = {"All": 0, "Info": 2, "Warnings": 3, "Errors": 4}
LEVEL_NAMES = {1: "debug", 2: "info", 3: "warning", 4: "error"}


@dataclass(frozen=True)
class LogRow:
    timestamp: float
    level: int  # a pb.LogLevel value
    logger: str
    message: str

    @property
    def time(self) -> str:
        return clock_time(self.timestamp)

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, "?")

    def matches(self, text: str, lowest: int) -> bool:
        if self.level < lowest:
            return False
        needle = text.lower()
        return not needle or needle in self.message.lower() or needle in self.logger.lower()


class EngineLog:
    def __init__(self, limit: int = MAX_LOG_LINES):
        self.rows: deque[LogRow] = deque(maxlen=limit)
        self._taken = RecentKeys(limit)
        self.version = 0

    def add(self, line: pb.LogLine) -> None:
        key = (line.timestamp, line.logger, line.message)
        if line.replayed and key in self._taken:
            return
        self._taken.add(key)
        self.rows.append(LogRow(line.timestamp, line.level, line.logger, line.message))
        self.version += 1

    def clear(self) -> None:
        self.rows.clear()
        self.version += 1

    def filtered(self, text: str = "", level: str = "All") -> list[LogRow]:
        """Matching lines, newest first."""
        lowest = LEVEL_FILTERS.get(level, 0)
        return [row for row in reversed(self.rows) if row.matches(text.strip(), lowest)]
