"""Runs one model's generation jobs. This serial scheduler (one worker thread,
jobs in arrival order) is what a batched scheduler replaces: it offers the same
submit/close/pending surface, and nothing above it knows how jobs are run."""

import logging
import queue
import threading
from collections.abc import Callable

from hearth.engine.errors import QueueFull
from hearth.engine.requests import Failed, GenerationJob

log = logging.getLogger(__name__)

_CLOSE = object()


class SerialScheduler:
    def __init__(self, model_id: str, run: Callable[[GenerationJob], None], max_queue: int):
        self.model_id = model_id
        self._run = run
        self._max_queue = max_queue
        self._jobs: queue.Queue = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=f"generate-{model_id}", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        return self._pending

    def submit(self, job: GenerationJob) -> None:
        with self._lock:
            if self._pending >= self._max_queue:
                raise QueueFull(
                    f"Too many requests are waiting for model '{self.model_id}'; try again later",
                    model=self.model_id,
                )
            self._pending += 1
        self._jobs.put(job)

    def close(self) -> None:
        """Finish the queued jobs, then stop the worker. Blocks."""
        self._jobs.put(_CLOSE)
        self._thread.join()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not _CLOSE:
            try:
                self._run(job)
            except Exception as exc:  # a failed request must not stop the worker
                log.exception("generation failed for request %s", job.request_id)
                job.sink(Failed(exc))
            finally:
                with self._lock:
                    self._pending -= 1
