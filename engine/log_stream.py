"""The engine's own log lines for watchers (the desktop window's log view):
a logging handler that publishes each record of INFO and above to an
EventBus, which keeps the last ones for a new watcher."""

import logging
from dataclasses import dataclass

from hearth.engine.events import EventBus

# Lines a new watcher is first given.
LOG_HISTORY_SIZE = 1000
MAX_MESSAGE_CHARS = 8000


@dataclass(frozen=True)
class LogEvent:
    level: str  # "DEBUG", "INFO", "WARNING" or "ERROR"
    logger: str
    message: str


def _level(record: logging.LogRecord) -> str:
    if record.levelno >= logging.ERROR:
        return "ERROR"
    if record.levelno >= logging.WARNING:
        return "WARNING"
    return "INFO" if record.levelno >= logging.INFO else "DEBUG"


class LogForwarder(logging.Handler):
    """Publishes log records to ``bus``; safe from any thread (EventBus.publish is)."""

    def __init__(self, bus: EventBus, level: int = logging.INFO):
        super().__init__(level)
        self._bus = bus

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._bus.publish(LogEvent(_level(record), record.name, message[:MAX_MESSAGE_CHARS]))
        except Exception:  # a log line must never break what logged it
            self.handleError(record)
