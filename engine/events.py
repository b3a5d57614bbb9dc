"""Fan-out of engine events (model state changes, finished requests) to watchers."""

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelStateEvent:
    model: str
    state: str  # a ModelState name, e.g. "READY"
    reason: str = ""


@dataclass(frozen=True)
class RequestEvent:
    request_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token: float
    duration: float
    tokens_per_second: float
    outcome: str  # "COMPLETED", "CANCELLED" or "FAILED"
    finish_reason: str  # "stop", "length" or ""
    error: str = ""


EngineEvent = ModelStateEvent | RequestEvent


# Events a new watcher is first given from the engine's recent past.
HISTORY_SIZE = 500


class EventBus:
    """Each watcher gets its own bounded queue; a watcher that falls behind loses
    its oldest events rather than holding the engine up. The last
    ``history_size`` events are kept, and a new watcher gets them first."""

    def __init__(self, queue_size: int = 1000, history_size: int = HISTORY_SIZE):
        self._queue_size = queue_size
        self._history: deque[tuple[float, EngineEvent]] = deque(maxlen=history_size)
        self._watchers: set[asyncio.Queue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, event: EngineEvent) -> None:
        """Safe to call from any thread."""
        stamped = (time.time(), event)
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._deliver(stamped)
        else:
            self._loop.call_soon_threadsafe(self._deliver, stamped)

    def _deliver(self, stamped: tuple[float, EngineEvent]) -> None:
        self._history.append(stamped)
        for watcher in self._watchers:
            if watcher.full():
                watcher.get_nowait()
            watcher.put_nowait(stamped)

    def close(self) -> None:
        """Ends every watch() stream, so that shutting down need not wait for watchers."""
        self._closed = True
        for watcher in self._watchers:
            if watcher.full():
                watcher.get_nowait()
            watcher.put_nowait(None)

    async def watch(self) -> AsyncIterator[tuple[float, EngineEvent, bool]]:
        """(timestamp, event, replayed): the recent past first (replayed true), then events as they come."""
        watcher: asyncio.Queue = asyncio.Queue(self._queue_size)
        # Taken on the loop that delivers, in one step with subscribing: nothing is missed or given twice.
        past = list(self._history)
        self._watchers.add(watcher)
        try:
            for timestamp, event in past:
                yield timestamp, event, True
            while not self._closed and (item := await watcher.get()) is not None:
                yield *item, False
        finally:
            self._watchers.discard(watcher)
