"""What the engine tells about each finished request: one log line and a
RequestEvent for WatchEvents subscribers."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from hearth.engine.errors import EngineError
from hearth.engine.events import EventBus, RequestEvent

log = logging.getLogger("hearth.engine.requests")


@dataclass
class RequestRecord:
    """A request's facts as it runs; ``finish`` publishes them."""

    kind: str  # "request" (generation) or "embed"
    request_id: str
    model: str
    arrived: float
    first_token_at: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    outcome: str = "FAILED"
    finish_reason: str = ""
    error: str = ""
    inputs: int = 0

    @contextlib.contextmanager
    def recorded(self, events: EventBus) -> Iterator["RequestRecord"]:
        """Notes how the block ends (cancelled, or an engine error's message),
        then publishes the record whatever happened."""
        try:
            yield self
        except (asyncio.CancelledError, GeneratorExit):
            self.outcome = "CANCELLED"
            raise
        except EngineError as exc:
            self.error = exc.message
            raise
        finally:
            self.finish(events)

    def finish(self, events: EventBus) -> None:
        now = time.monotonic()
        decode_time = now - self.first_token_at if self.first_token_at else 0.0
        done = self.completion_tokens
        rate = (done - 1) / decode_time if decode_time > 0 and done > 1 else 0.0
        event = RequestEvent(
            request_id=self.request_id,
            model=self.model,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=done,
            time_to_first_token=(self.first_token_at - self.arrived) if self.first_token_at else 0.0,
            duration=now - self.arrived,
            tokens_per_second=rate,
            outcome=self.outcome,
            finish_reason=self.finish_reason,
            error=self.error,
        )
        if self.kind == "embed":
            log.info(
                "embed %s model=%s outcome=%s inputs=%d prompt=%d duration=%.3fs",
                event.request_id,
                event.model,
                event.outcome,
                self.inputs,
                event.prompt_tokens,
                event.duration,
            )
        else:
            log.info(
                "request %s model=%s outcome=%s finish=%s prompt=%d completion=%d ttft=%.3fs duration=%.3fs tok/s=%.1f",
                event.request_id,
                event.model,
                event.outcome,
                event.finish_reason or "-",
                event.prompt_tokens,
                event.completion_tokens,
                event.time_to_first_token,
                event.duration,
                rate,
            )
        events.publish(event)
