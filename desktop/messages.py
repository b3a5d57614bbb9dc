"""What background work tells the render loop.

The gRPC thread, the file workers and the server process watcher never touch
the window: they put these messages on one thread-safe queue, and the render
loop drains it each frame and applies them to the DesktopState."""

from dataclasses import dataclass

from hearth.engine.v1 import engine_pb2 as pb


@dataclass(frozen=True)
class StatusReceived:
    """A GetStatus reply: the engine answers."""

    status: pb.GetStatusResponse


@dataclass(frozen=True)
class ModelsListed:
    models: tuple[pb.Model, ...]


@dataclass(frozen=True)
class EngineUnavailable:
    """A poll of the engine failed. ``nothing_listening`` when no engine answered
    at all (as opposed to one that answered with an error)."""

    detail: str
    nothing_listening: bool


@dataclass(frozen=True)
class AdapterHealth:
    """GET /health on the REST adapter: its status code, or None when nothing answered."""

    url: str
    status_code: int | None
    detail: str = ""


@dataclass(frozen=True)
class EngineLogLine:
    """One WatchLogs message."""

    line: pb.LogLine


@dataclass(frozen=True)
class EngineEvent:
    """One WatchEvents message."""

    event: pb.WatchEventsResponse


@dataclass(frozen=True)
class TaskProgress:
    """A long action's progress. ``total`` 0: how far along is unknown (a model load)."""

    task: str
    label: str
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class TaskEnded:
    task: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ChatDelta:
    chat_id: int
    text: str
    # What a reasoning model thought, apart from the answer.
    reasoning: str = ""
    # Tool calls the reply made: (name, arguments as JSON text).
    tool_calls: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ChatEnded:
    chat_id: int
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cancelled: bool = False
    error: str = ""
    # Of completion_tokens, those the model thought with.
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Notice:
    """A line for the status bar; ``level`` is "info", "warning" or "error"."""

    text: str
    level: str = "info"


Message = (
    StatusReceived
    | ModelsListed
    | EngineUnavailable
    | AdapterHealth
    | EngineEvent
    | TaskProgress
    | TaskEnded
    | ChatDelta
    | ChatEnded
    | Notice
)
