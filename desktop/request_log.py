"""The Requests tab's data: one row per finished request (a WatchEvents
RequestFinished), kept newest last, with the filter the tab applies."""

from collections import deque
from dataclasses import dataclass

from hearth.engine.v1 import engine_pb2 as pb
from hearth.formatting import clock_time

# Enough history for a long session without the log growing forever.
MAX_LOG_ROWS = 2000

OUTCOME_FILTERS = ("All", "Completed", "Cancelled", "Failed")


@dataclass(frozen=True)
class RequestRow:
    timestamp: float
    request_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    duration_seconds: float
    tokens_per_second: float
    outcome: str  # "completed", "cancelled", "failed"
    detail: str  # finish reason, or the error

    @property
    def time(self) -> str:
        return clock_time(self.timestamp)

    @property
    def duration(self) -> str:
        return f"{self.duration_seconds:.2f} s"

    @property
    def speed(self) -> str:
        return f"{self.tokens_per_second:.1f}" if self.tokens_per_second else "-"

    @property
    def is_error(self) -> bool:
        return self.outcome == "failed"

    @property
    def outcome_text(self) -> str:
        return f"{self.outcome} ({self.detail})" if self.detail else self.outcome

    def matches(self, text: str, outcome: str) -> bool:
        if outcome != "All" and self.outcome != outcome.lower():
            return False
        if not text:
            return True
        needle = text.lower()
        return any(needle in value.lower() for value in (self.model, self.request_id, self.outcome, self.detail))


def request_row(event: pb.WatchEventsResponse) -> RequestRow | None:
    """The log row for a RequestFinished event; None for other events."""
    if not event.HasField("request_finished"):
        return None
    finished = event.request_finished
    outcome = pb.RequestOutcome.Name(finished.outcome).removeprefix("REQUEST_OUTCOME_").lower()
    if finished.error:
        detail = finished.error
    elif finished.finish_reason:
        detail = pb.FinishReason.Name(finished.finish_reason).removeprefix("FINISH_REASON_").lower()
    else:
        detail = ""
    return RequestRow(
        timestamp=event.timestamp,
        request_id=finished.request_id,
        model=finished.model,
        prompt_tokens=finished.prompt_tokens,
        completion_tokens=finished.completion_tokens,
        duration_seconds=finished.duration_seconds,
        tokens_per_second=finished.tokens_per_second,
        outcome=outcome,
        detail=detail,
    )


class RequestLog:
    """Finished requests, newest last, with the filter the Requests panel applies."""

    def __init__(self, limit: int = MAX_LOG_ROWS):
        self.rows: deque[RequestRow] = deque(maxlen=limit)
        self.version = 0

    def add(self, row: RequestRow) -> None:
        self.rows.append(row)
        self.version += 1

    def clear(self) -> None:
        self.rows.clear()
        self.version += 1

    def filtered(self, text: str = "", outcome: str = "All", limit: int | None = None) -> list[RequestRow]:
        """Matching rows, newest first."""
        result = []
        for row in reversed(self.rows):
            if row.matches(text.strip(), outcome):
                result.append(row)
                if limit is not None and len(result) >= limit:
                    break
        return result
