"""What the engine reports: models, loaded models, status, tokenize results."""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hearth.engine.models.capabilities import model_capabilities, reasoning_format
from hearth.engine.models.pull import PullProgress
from hearth.engine.models.registry import ModelRecord
from hearth.engine.templates.builtin import template_source_label

if TYPE_CHECKING:  # neither is needed to describe a model from its file (`hearth models` without an engine)
    from hearth.engine.llama.backend import BackendInfo
    from hearth.engine.runtime.loaded import LoadedModel


@dataclass(frozen=True)
class ModelView:
    record: ModelRecord
    state: str
    reason: str
    memory_bytes: int
    template_source: str
    # Capability names: "CHAT", "COMPLETION", "EMBEDDINGS", "TOOLS", "REASONING".
    capabilities: tuple[str, ...] = ()
    # While loaded: seconds until the keep-alive unloads it; negative: never; 0 when not loaded.
    expires_in: float = 0.0
    # How it marks its reasoning: "think" or "none".
    reasoning_format: str = "none"
    # Memory the budget counts for it once loaded with its settings.
    estimated_bytes: int = 0


def describe(
    record: ModelRecord,
    state: str = "UNLOADED",
    reason: str = "",
    memory_bytes: int = 0,
    loaded: "LoadedModel | None" = None,
) -> ModelView:
    """A model as clients see it; a file that cannot be used is INVALID whatever ``state`` says."""
    if record.invalid_reason or record.info is None:
        return ModelView(record, "INVALID", record.invalid_reason or "unreadable", 0, "")
    source = template_source_label(
        gguf_template=record.info.chat_template,
        override=record.chat_template_override,
        architecture=record.info.architecture,
    )
    template_failed = loaded is not None and loaded.template is None
    expires_in = loaded.expires_in(time.monotonic()) if loaded is not None else 0.0
    capabilities = model_capabilities(record, template_failed)
    return ModelView(record, state, reason, memory_bytes, source, capabilities, expires_in, reasoning_format(record))


@dataclass(frozen=True)
class PulledModel:
    """The last step of a pull: the DONE progress and the installed model."""

    progress: PullProgress
    model: ModelView


@dataclass(frozen=True)
class LoadedModelView:
    id: str
    memory_bytes: int
    active_requests: int
    idle_seconds: float
    slots: int
    busy_slots: int
    queued_requests: int
    # Seconds until the keep-alive unloads it; negative: never.
    expires_in: float = 0.0
    # The KV pool its slots share: cells, cells held now, bytes.
    kv_cells: int = 0
    kv_cells_used: int = 0
    kv_bytes: int = 0


@dataclass(frozen=True)
class StatusView:
    backend: "BackendInfo"
    gpu_offload: bool
    engine_version: str
    llama_cpp_python_version: str
    loaded: list[LoadedModelView]
    process_memory: int
    system_memory_total: int
    system_memory_available: int
    uptime: float
    models_dir: str
    keep_alive: float
    # Memory the loaded models may take together.
    memory_budget: int = 0


@dataclass(frozen=True)
class TokenizeResult:
    tokens: list[int]
    # Each token's text (special tokens written out), in order.
    pieces: list[str]
    # The context the model is served with.
    context_window: int
