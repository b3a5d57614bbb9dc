"""The config file's model declarations:
{"models": [{"id", "path", "context_window", "max_output_tokens", "chat_template", "reasoning_format",
"system", "parameters": {"temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty",
"frequency_penalty", "seed", "max_tokens", "stop"}, "gpu_layers", "parallel", "kv_cache_type", "keep_alive"}]}."""

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearth.engine.generation.limits import SAMPLING_RANGES
from hearth.settings.file import edit_config_document

log = logging.getLogger(__name__)

MODELS_KEY = "models"

# Segments separated by "/" (a pulled model's "hf.co/owner/repo:Q4_K_M"), each
# starting with a letter or digit, so no segment is "." or "..".
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*(/[A-Za-z0-9][A-Za-z0-9._:\-]*)*$"
MODEL_ID_MAX_LENGTH = 200


def _sampling_field(name: str):
    """A default within the range a request's own value is checked against."""
    low, high = SAMPLING_RANGES[name]
    return Field(default=None, ge=low, le=high)


class ModelParameters(BaseModel):
    """Sampling defaults for the model (Ollama's Modelfile PARAMETER): used where a request sets none."""

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = _sampling_field("temperature")
    top_p: float | None = _sampling_field("top_p")
    top_k: int | None = _sampling_field("top_k")
    min_p: float | None = _sampling_field("min_p")
    repeat_penalty: float | None = _sampling_field("repeat_penalty")
    presence_penalty: float | None = _sampling_field("presence_penalty")
    frequency_penalty: float | None = _sampling_field("frequency_penalty")
    seed: int | None = Field(default=None, ge=0, le=2**64 - 1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_048_576)
    stop: list[str] | None = Field(default=None, max_length=16)


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=MODEL_ID_PATTERN, max_length=MODEL_ID_MAX_LENGTH, description="Id clients use in requests.")
    path: Path = Field(description="Path of the GGUF file; relative paths are relative to the config file.")
    context_window: int | None = Field(default=None, ge=256, le=1_048_576)
    max_output_tokens: int | None = Field(default=None, ge=1, le=1_048_576)
    chat_template: str | None = Field(default=None, description="Jinja chat template overriding the file's.")
    reasoning_format: Literal["think", "harmony", "none"] | None = Field(
        default=None, description="How the model marks its reasoning, overriding what its template suggests."
    )
    system: str | None = Field(
        default=None, max_length=100_000, description="System prompt for chats whose messages have none."
    )
    parameters: ModelParameters | None = None
    # How the model is loaded (LM Studio's per-model load settings); unset: the engine's settings.
    gpu_layers: int | None = Field(default=None, ge=-1, le=100_000, description="Layers offloaded; -1: all.")
    parallel: int | None = Field(default=None, ge=1, le=64, description="Sequences decoded at once (slots).")
    kv_cache_type: Literal["f16", "q8_0", "q4_0"] | None = Field(default=None, description="KV cache precision.")
    keep_alive: float | None = Field(
        default=None, ge=-1, le=10**9, description="Seconds loaded after the last request; negative: always."
    )


class ConfigFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    models: list[ModelEntry] = Field(default_factory=list)


def load_config_file(path: Path) -> ConfigFile:
    """The parsed config; an absent file is an empty config, a broken one is logged and skipped."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConfigFile()
    except OSError as exc:
        log.warning("cannot read config file %s: %s", path, exc)
        return ConfigFile()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        log.warning("ignoring invalid config file %s: %s", path, exc)
        return ConfigFile()
    entries = document.get(MODELS_KEY, []) if isinstance(document, dict) else None
    if not isinstance(entries, list):
        log.warning('ignoring config file %s: it is not a JSON object with a "%s" list', path, MODELS_KEY)
        return ConfigFile()
    config = ConfigFile(models=[entry for index, item in enumerate(entries) if (entry := _entry(path, index, item))])
    for entry in config.models:
        if not entry.path.is_absolute():
            entry.path = (path.parent / entry.path).resolve()
    return config


def _entry(path: Path, index: int, item: Any) -> ModelEntry | None:
    """One model entry; an invalid one is logged and skipped, the others still count."""
    try:
        return ModelEntry.model_validate(item)
    except ValidationError as exc:
        named = f" ({item['id']!r})" if isinstance(item, dict) and isinstance(item.get("id"), str) else ""
        log.warning("ignoring model entry %d%s of config file %s: %s", index, named, path, exc)
        return None


def edit_model_entries(path: Path, edit: Callable[[list[Any]], list[Any]]) -> None:
    """Rewrites the file's "models" list as ``edit`` returns it, keeping every other
    key ("settings", which the desktop window writes, and any unknown one).
    Raises ValueError when the file is not a JSON object (it is then left alone)
    and OSError when it cannot be written."""

    def edit_document(document: dict[str, Any]) -> None:
        models = document.get(MODELS_KEY, [])
        if not isinstance(models, list):
            raise ValueError(f'"{MODELS_KEY}" in {path} is not a list')
        document[MODELS_KEY] = edit(list(models))

    edit_config_document(path, edit_document)
