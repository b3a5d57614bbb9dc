"""What the window shows, as plain data: the models table, the server summary,
the performance series and the progress of long actions here; the request log
(request_log.py) and the playground chat (chat_session.py) beside it.

Everything here is computed from gRPC replies and events (the messages in
desktop.messages) and needs no display, so it is unit-tested on its own. The
panels only copy these values into Dear PyGui items. Each section has a
version number that changes when its content does, so a panel redraws only
what changed."""

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hearth.desktop import messages as msg
from hearth.desktop.chat_session import ChatSession
from hearth.desktop.engine_log import EngineLog
from hearth.desktop.recent_keys import RecentKeys
from hearth.desktop.request_log import RequestLog, RequestRow, request_row
from hearth.engine.v1 import engine_pb2 as pb
from hearth.formatting import human_bytes, human_count, human_duration

# Enough history for a long session without the plots growing forever.
MAX_PLOT_POINTS = 3600
MAX_NOTICES = 50
# More than the engine replays to a new watch (its last 500 events).
REPLAYED_EVENTS_REMEMBERED = 1000

BACKEND_NAMES = {
    pb.BACKEND_CPU: "CPU",
    pb.BACKEND_METAL: "Metal",
    pb.BACKEND_CUDA: "CUDA",
    pb.BACKEND_VULKAN: "Vulkan",
    pb.BACKEND_OTHER_GPU: "GPU",
}


def state_name(state: int) -> str:
    """MODEL_STATE_READY -> "ready"."""
    return pb.ModelState.Name(state).removeprefix("MODEL_STATE_").lower()


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelRow:
    id: str
    architecture: str
    parameters: str
    quantization: str
    file_size: str
    context: str
    chat_template: str
    state: str  # "unloaded", "loading", "ready", "failed", "invalid"
    state_reason: str
    memory: str

    @property
    def state_text(self) -> str:
        return f"{self.state}: {self.state_reason}" if self.state_reason else self.state

    @property
    def can_load(self) -> bool:
        return self.state in ("unloaded", "failed")

    @property
    def can_unload(self) -> bool:
        return self.state == "ready"

    @property
    def usable(self) -> bool:
        return self.state != "invalid"


def model_row(model: pb.Model, state: int | None = None, reason: str | None = None) -> ModelRow:
    """One table row; ``state``/``reason`` override the model's (from a newer event)."""
    current = model.state if state is None else state
    if model.has_chat_template:
        template = "yes (in file)"
    elif model.chat_template_source:
        template = f"no, uses {model.chat_template_source}"
    else:
        template = "no"
    return ModelRow(
        id=model.id,
        architecture=model.architecture or "-",
        parameters=human_count(model.parameter_count) if model.parameter_count else "-",
        quantization=model.quantization or "-",
        file_size=human_bytes(model.file_size_bytes),
        context=(
            f"{model.context_window} (trained {model.trained_context_length})"
            if model.trained_context_length and model.trained_context_length != model.context_window
            else str(model.context_window or "-")
        ),
        chat_template=template,
        state=state_name(current),
        state_reason=model.state_reason if reason is None else reason,
        memory=human_bytes(model.memory_bytes) if model.memory_bytes else "",
    )


# ---------------------------------------------------------------- server


@dataclass(frozen=True)
class LoadedModelRow:
    id: str
    memory: str
    active_requests: int
    idle: str


@dataclass(frozen=True)
class ServerSummary:
    backend: str
    gpu_offload: str
    uptime: str
    engine_memory: str
    system_memory: str
    versions: str
    models_dir: str
    keep_alive: str
    loaded: tuple[LoadedModelRow, ...]


def server_summary(status: pb.GetStatusResponse) -> ServerSummary:
    backend = BACKEND_NAMES.get(status.backend, "unknown")
    if status.system_memory_total_bytes:
        system = (
            f"{human_bytes(status.system_memory_available_bytes)} free of "
            f"{human_bytes(status.system_memory_total_bytes)}"
        )
    else:
        system = "-"
    return ServerSummary(
        backend=backend,
        gpu_offload="on (all layers on the GPU)" if status.gpu_offload else "off",
        uptime=human_duration(status.uptime_seconds),
        engine_memory=human_bytes(status.process_memory_bytes),
        system_memory=system,
        versions=f"engine {status.engine_version or '?'}, llama-cpp-python {status.llama_cpp_python_version or '?'}",
        models_dir=status.models_dir,
        keep_alive=f"{status.keep_alive_seconds:g} s",
        loaded=tuple(
            LoadedModelRow(
                id=m.id,
                memory=human_bytes(m.memory_bytes),
                active_requests=m.active_requests,
                idle=human_duration(m.idle_seconds),
            )
            for m in status.loaded_models
        ),
    )


def adapter_health_text(health: msg.AdapterHealth | None) -> tuple[str, bool]:
    """(what to show, whether it is healthy)."""
    if health is None:
        return "checking...", False
    if health.status_code is None:
        return f"not answering at {health.url}", False
    if health.status_code == 200:
        return f"ok at {health.url}", True
    if health.status_code == 503:
        return f"{health.url} answers 503: the engine is not available to it", False
    return f"{health.url} answers {health.status_code} {health.detail}".rstrip(), False


# ---------------------------------------------------------------- performance


class Series:
    """One plot line: x in seconds since the window opened, y in the plot's unit."""

    def __init__(self, limit: int = MAX_PLOT_POINTS):
        self.x: deque[float] = deque(maxlen=limit)
        self.y: deque[float] = deque(maxlen=limit)

    def add(self, x: float, y: float) -> None:
        self.x.append(x)
        self.y.append(y)

    def values(self) -> tuple[list[float], list[float]]:
        return list(self.x), list(self.y)

    def __len__(self) -> int:
        return len(self.x)


class Performance:
    """Per finished request: tokens per second and time to first token (seconds).
    Per status poll: memory (MB), and requests waiting for a slot and slots busy,
    summed over the loaded models."""

    def __init__(self, started_at: float):
        self.started_at = started_at
        self.tokens_per_second = Series()
        self.time_to_first_token = Series()
        self.engine_memory_mb = Series()
        self.models_memory_mb = Series()
        self.queued_requests = Series()
        self.busy_slots = Series()
        # The loaded models' slots at the last poll, for "busy of all".
        self.slots = 0
        self.version = 0

    def add_request(self, row: RequestRow, time_to_first_token: float = 0.0) -> None:
        # Cancelled and failed requests have no meaningful speed or first-token time.
        if row.outcome != "completed":
            return
        x = row.timestamp - self.started_at
        changed = False
        if row.tokens_per_second > 0:
            self.tokens_per_second.add(x, row.tokens_per_second)
            changed = True
        if time_to_first_token > 0:
            self.time_to_first_token.add(x, time_to_first_token)
            changed = True
        if changed:
            self.version += 1

    def add_status(self, status: pb.GetStatusResponse, now: float) -> None:
        x = now - self.started_at
        models = status.loaded_models
        self.engine_memory_mb.add(x, status.process_memory_bytes / 1e6)
        self.models_memory_mb.add(x, sum(m.memory_bytes for m in models) / 1e6)
        self.queued_requests.add(x, sum(m.queued_requests for m in models))
        self.busy_slots.add(x, sum(m.busy_slots for m in models))
        self.slots = sum(m.slots for m in models)
        self.version += 1


# ---------------------------------------------------------------- the whole window


@dataclass(frozen=True)
class TaskView:
    label: str
    fraction: float | None  # None: how far along is unknown
    overlay: str


def task_view(progress: msg.TaskProgress) -> TaskView:
    if progress.total <= 0:
        return TaskView(progress.label, None, progress.label)
    fraction = min(1.0, progress.done / progress.total)
    return TaskView(
        progress.label,
        fraction,
        f"{progress.label}: {human_bytes(progress.done)} of {human_bytes(progress.total)} ({fraction:.0%})",
    )


@dataclass
class Notices:
    items: deque = field(default_factory=lambda: deque(maxlen=MAX_NOTICES))
    version: int = 0

    def add(self, notice: msg.Notice, now: float) -> None:
        self.items.append((now, notice))
        self.version += 1

    @property
    def latest(self) -> msg.Notice | None:
        return self.items[-1][1] if self.items else None


class DesktopState:
    """Everything the panels show; changed only by ``apply`` on the render thread."""

    def __init__(self, engine_address: str, rest_url: str, clock: Callable[[], float] = time.time):
        self.engine_address = engine_address
        self.rest_url = rest_url
        self._clock = clock
        # Engine: None until the first poll answers or fails.
        self.engine_reachable: bool | None = None
        self.engine_detail = ""
        self.engine_nothing_listening = False
        self.status: pb.GetStatusResponse | None = None
        self.server: ServerSummary | None = None
        self.server_version = 0
        self.adapter: msg.AdapterHealth | None = None
        # Models by id, in the engine's order, with states from newer events applied.
        self._models: dict[str, pb.Model] = {}
        self.models_listed = False  # an empty table means "none" only once the engine said so
        self._state_overrides: dict[str, tuple[int, str]] = {}
        self.models_version = 0
        self.requests = RequestLog()
        self.engine_log = EngineLog()
        # (time, request id) of the finished requests taken in, newest last: the engine replays
        # its recent past to each new watch, and a reconnect must not add a request twice.
        self._requests_taken = RecentKeys(REPLAYED_EVENTS_REMEMBERED)
        self.performance = Performance(started_at=clock())
        self.chat = ChatSession()
        self._chat_started_at: float | None = None
        self.tasks: dict[str, msg.TaskProgress] = {}
        self.tasks_version = 0
        self.notices = Notices()

    # -- reading

    def model_rows(self) -> list[ModelRow]:
        rows = []
        for model in self._models.values():
            state, reason = self._state_overrides.get(model.id, (None, None))
            rows.append(model_row(model, state, reason))
        return rows

    def model(self, model_id: str) -> pb.Model | None:
        """The model as last listed."""
        return self._models.get(model_id)

    def chat_models(self) -> list[str]:
        """Models the playground can use, ready ones first."""
        rows = [row for row in self.model_rows() if row.usable]
        return [row.id for row in sorted(rows, key=lambda row: row.state != "ready")]

    def task_views(self) -> list[TaskView]:
        return [task_view(progress) for progress in self.tasks.values()]

    @property
    def models_dir(self) -> str:
        return self.status.models_dir if self.status is not None else ""

    # -- changing

    def notify(self, text: str, level: str = "info") -> None:
        self.notices.add(msg.Notice(text, level), self._clock())

    def begin_chat(self, user_text: str) -> int:
        self._chat_started_at = self._clock()
        return self.chat.begin(user_text)

    def apply(self, message: msg.Message) -> None:
        now = self._clock()
        match message:
            case msg.StatusReceived(status=status):
                self.engine_reachable = True
                self.engine_detail = ""
                self.engine_nothing_listening = False
                self.status = status
                self.server = server_summary(status)
                self.server_version += 1
                self.performance.add_status(status, now)
            case msg.ModelsListed(models=models):
                # Polled every second: redraw the table (and its buttons) only when it changed.
                unchanged = tuple(models) == tuple(self._models.values()) and not self._state_overrides
                if unchanged and self.models_listed:
                    return
                self.models_listed = True
                self._models = {m.id: m for m in models}
                # The listing is now at least as new as any event seen before it.
                self._state_overrides.clear()
                self.models_version += 1
            case msg.EngineUnavailable(detail=detail, nothing_listening=nothing):
                changed = self.engine_reachable is not False or detail != self.engine_detail
                self.engine_reachable = False
                self.engine_detail = detail
                self.engine_nothing_listening = nothing
                if changed:
                    self.server_version += 1
            case msg.AdapterHealth():
                if message != self.adapter:
                    self.adapter = message
                    self.server_version += 1
            case msg.EngineEvent(event=event):
                self._apply_event(event)
            case msg.EngineLogLine(line=line):
                self.engine_log.add(line)
            case msg.TaskProgress(task=task):
                self.tasks[task] = message
                self.tasks_version += 1
            case msg.TaskEnded(task=task, ok=ok, detail=detail):
                self.tasks.pop(task, None)
                self.tasks_version += 1
                if detail:
                    self.notify(detail, "info" if ok else "error")
            case msg.ChatDelta():
                self.chat.add_delta(message)
            case msg.ChatEnded():
                elapsed = now - self._chat_started_at if self._chat_started_at is not None else None
                self.chat.end(message, elapsed)
            case msg.Notice():
                self.notices.add(message, now)

    def _apply_event(self, event: pb.WatchEventsResponse) -> None:
        if event.HasField("model_state_changed") and event.replayed:
            return  # a past state: the model listing says the present one
        if event.HasField("model_state_changed"):
            changed = event.model_state_changed
            if changed.model in self._models:
                self._state_overrides[changed.model] = (changed.state, changed.reason)
                self.models_version += 1
            return
        row = request_row(event)
        if row is not None:
            key = (row.timestamp, row.request_id)
            if event.replayed and key in self._requests_taken:
                return
            self._requests_taken.add(key)
            self.requests.add(row)
            self.performance.add_request(row, event.request_finished.time_to_first_token_seconds)

