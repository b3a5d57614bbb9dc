"""A model's own settings (its config entry's) between the wire's
ModelSettings and the config entry's fields."""

import json
from typing import Any

from hearth.engine.domain import DEFAULTABLE
from hearth.engine.errors import InvalidArgument
from hearth.engine.models.registry import ModelRecord
from hearth.engine.v1 import engine_pb2 as pb

# Parameters whose values are whole numbers; stop is a JSON array of strings; the rest are numbers.
_WHOLE = frozenset({"top_k", "seed", "max_tokens"})
_OPTIONAL = (
    ("context_window", "context_window"),
    ("gpu_layers", "gpu_layers"),
    ("parallel", "parallel"),
    ("keep_alive_seconds", "keep_alive"),
    ("chat_template", "chat_template"),
    ("system", "system"),
)


def settings_to_proto(record: ModelRecord) -> pb.ModelSettings:
    load = record.load
    settings = pb.ModelSettings(
        kv_cache_type=load.kv_cache_type or "",
        parameters={name: parameter_text(value) for name, value in record.parameters},
    )
    values = {
        "context_window": load.context_window,
        "gpu_layers": load.gpu_layers,
        "parallel": load.parallel,
        "keep_alive_seconds": load.keep_alive,
        "chat_template": record.chat_template_override,
        "system": record.system_prompt,
    }
    for name, value in values.items():
        if value is not None:
            setattr(settings, name, value)
    return settings


def parameter_text(value: Any) -> str:
    """A parameter's value as Model.parameters writes it."""
    return json.dumps(list(value)) if isinstance(value, tuple) else str(value)


def settings_from_proto(settings: pb.ModelSettings) -> dict[str, Any]:
    """The config entry's fields for these settings (checked later, as an entry is)."""
    fields: dict[str, Any] = {entry: getattr(settings, name) for name, entry in _OPTIONAL if settings.HasField(name)}
    if settings.kv_cache_type:
        fields["kv_cache_type"] = settings.kv_cache_type
    if settings.parameters:
        fields["parameters"] = {name: _parameter(name, text) for name, text in settings.parameters.items()}
    return fields


def _parameter(name: str, text: str) -> Any:
    if name not in DEFAULTABLE:
        raise InvalidArgument(
            f"'settings.parameters.{name}' is not a parameter; use {', '.join(DEFAULTABLE)}",
            param=f"settings.parameters.{name}",
        )
    try:
        if name == "stop":
            value = json.loads(text)
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError("not a JSON array of strings")
            return value
        return int(text) if name in _WHOLE else float(text)
    except ValueError as exc:
        raise InvalidArgument(
            f"'settings.parameters.{name}': {text!r} is not a valid value ({exc})", param=f"settings.parameters.{name}"
        ) from None
