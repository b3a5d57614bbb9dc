"""The Models tab's per-model settings form: a model's own settings (its
config entry's) as the form's text fields, and the fields read back into the
engine's ModelSettings, each field's mistake said before anything is sent.
A blank field leaves the engine's own setting in force."""

import json
from dataclasses import dataclass

from hearth.engine.v1 import engine_pb2 as pb

KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")
ENGINE_DEFAULT = "engine's"
# (field, label, hint) of the one-line fields, in the form's order.
LINE_FIELDS = (
    ("context_window", "Context length", "tokens; blank: the engine's"),
    ("gpu_layers", "GPU layers", "-1: all; blank: the engine's"),
    ("parallel", "Parallel slots", "1-64; blank: the engine's"),
    ("keep_alive", "Keep loaded for", "seconds, -1: always; blank: the engine's"),
)
TEXT_FIELDS = (
    ("system", "System prompt"),
    ("parameters", "Parameters"),
    ("chat_template", "Chat template"),
)
PARAMETERS_HINT = 'one per line: temperature 0.2 / top_k 40 / stop ["###"]'


@dataclass
class ModelSettingsValues:
    """The form's fields as text (the KV cache type as its combo's choice)."""

    context_window: str = ""
    gpu_layers: str = ""
    parallel: str = ""
    keep_alive: str = ""
    kv_cache_type: str = ENGINE_DEFAULT
    system: str = ""
    parameters: str = ""
    chat_template: str = ""


def form_values(settings: pb.ModelSettings) -> ModelSettingsValues:
    def optional(name: str) -> str:
        return f"{getattr(settings, name):g}" if settings.HasField(name) else ""

    return ModelSettingsValues(
        context_window=optional("context_window"),
        gpu_layers=optional("gpu_layers"),
        parallel=optional("parallel"),
        keep_alive=optional("keep_alive_seconds"),
        kv_cache_type=settings.kv_cache_type or ENGINE_DEFAULT,
        system=settings.system,
        parameters="\n".join(f"{name} {value}" for name, value in sorted(settings.parameters.items())),
        chat_template=settings.chat_template,
    )


def _whole(text: str, low: int, high: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError("a whole number") from None
    if not low <= number <= high:
        raise ValueError(f"between {low} and {high}")
    return number


def _parameters(text: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, value = line.strip().partition(" ")
        if not value.strip():
            raise ValueError(f"'{name}' has no value (write: name value)")
        if name == "stop" and not value.lstrip().startswith("["):
            value = json.dumps([value.strip()])  # stop ### means stop ["###"]
        parameters[name] = value.strip()
    return parameters


def read_form(values: ModelSettingsValues) -> tuple[pb.ModelSettings | None, dict[str, str]]:
    """The settings to send, or None with what is wrong in each field."""
    settings = pb.ModelSettings()
    errors: dict[str, str] = {}
    checks = {
        "context_window": lambda text: setattr(settings, "context_window", _whole(text, 256, 1_048_576)),
        "gpu_layers": lambda text: setattr(settings, "gpu_layers", _whole(text, -1, 100_000)),
        "parallel": lambda text: setattr(settings, "parallel", _whole(text, 1, 64)),
        "keep_alive": lambda text: setattr(settings, "keep_alive_seconds", _seconds(text)),
    }
    for name, check in checks.items():
        text = getattr(values, name).strip()
        if text:
            try:
                check(text)
            except ValueError as exc:
                errors[name] = f"Use {exc}."
    if values.kv_cache_type in KV_CACHE_TYPES:
        settings.kv_cache_type = values.kv_cache_type
    if values.system.strip():
        settings.system = values.system
    if values.chat_template.strip():
        settings.chat_template = values.chat_template
    try:
        settings.parameters.update(_parameters(values.parameters))
    except ValueError as exc:
        errors["parameters"] = str(exc)
    return (None, errors) if errors else (settings, {})


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError("a number of seconds") from None
    if not -1 <= seconds <= 10**9:
        raise ValueError("-1 (always) or 0 up to 1000000000 seconds")
    return seconds
