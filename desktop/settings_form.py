"""The Settings panel's values: parsed from what the user typed, validated with
the same field constraints the server applies, and saved into the config
file's "settings" object (hearth.settings.file reads it back at start).

Pure logic, no display: tested on its own."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hearth.settings.adapter import AdapterSettings
from hearth.settings.engine import EngineSettings
from hearth.settings.file import SETTINGS_KEY, edit_config_document, field_adapter

# The fields the panel edits, in the order it shows them.
FIELDS = ("server_port", "models_dir", "use_gpu", "context_size", "keep_alive", "api_key", "cors_origins")

LABELS = {
    "server_port": "REST port",
    "models_dir": "Models folder",
    "use_gpu": "Use the GPU",
    "context_size": "Context size (tokens)",
    "keep_alive": "Keep-alive (seconds)",
    "api_key": "API key",
    "cors_origins": "Allowed origins",
}

# Every one of them is read when the server starts; say which part must restart and why.
RESTART_NOTES = {
    "server_port": "restart the server: the REST port is bound at start",
    "models_dir": "restart the server: the engine is given its folder at start",
    "use_gpu": "restart the server: offload is chosen when the engine starts",
    "context_size": "restart the server: applies to models loaded after that (0: the trained one, as memory allows)",
    "keep_alive": "restart the server: the engine reads it at start",
    "api_key": "restart the server; this window uses the new key at once",
    "cors_origins": "restart the server: the REST adapter reads it at start",
}

ENV_NAMES = {name: f"LLM_{name.upper()}" for name in FIELDS}


@dataclass
class SettingsValues:
    server_port: int = 11434
    models_dir: str = ""
    use_gpu: bool = True
    context_size: int = 0
    keep_alive: float = 300.0
    api_key: str = ""
    cors_origins: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def current_values(engine: EngineSettings, adapter: AdapterSettings, api_key: str = "") -> SettingsValues:
    """The values in effect now, to fill the form with."""
    return SettingsValues(
        server_port=adapter.server_port,
        models_dir=str(engine.models_dir),
        use_gpu=engine.use_gpu,
        context_size=engine.context_size,
        keep_alive=engine.keep_alive,
        api_key=api_key,
        cors_origins=list(adapter.cors_origins),
    )


def parse_origins(text: str) -> list[str]:
    """Origins typed one per line or separated by commas."""
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def _origin_error(origin: str) -> str | None:
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest.rstrip("/") or " " in rest:
        return f"{origin!r} is not an origin like http://localhost:3000"
    return None


def _field_error(name: str, value: Any) -> str | None:
    """The server's own constraint for a field (from EngineSettings or AdapterSettings), if it has one."""
    for cls in (EngineSettings, AdapterSettings):
        info = cls.model_fields.get(name)
        if info is None:
            continue
        try:
            field_adapter(info).validate_python(value)
        except ValidationError as exc:
            return exc.errors()[0]["msg"]
        return None
    return None


def validate(raw: dict[str, Any]) -> tuple[SettingsValues | None, dict[str, str]]:
    """Parses what the panel holds (strings from text boxes, bools, numbers).

    Returns the values and no errors, or None and an error message per field."""
    errors: dict[str, str] = {}
    values = SettingsValues()

    def number(name: str, kind: type) -> Any:
        try:
            return kind(str(raw.get(name, "")).strip())
        except ValueError:
            errors[name] = "must be a whole number" if kind is int else "must be a number"
            return None

    port = number("server_port", int)
    if port is not None:
        values.server_port = port
    context = number("context_size", int)
    if context is not None:
        values.context_size = context
    keep_alive = number("keep_alive", float)
    if keep_alive is not None:
        values.keep_alive = keep_alive

    models_dir = str(raw.get("models_dir", "")).strip()
    if not models_dir:
        errors["models_dir"] = "must name a folder"
    elif Path(models_dir).expanduser().exists() and not Path(models_dir).expanduser().is_dir():
        errors["models_dir"] = "exists and is not a folder"
    values.models_dir = models_dir

    values.use_gpu = bool(raw.get("use_gpu", True))

    api_key = str(raw.get("api_key", "")).strip()
    if any(ch.isspace() or not ch.isprintable() for ch in api_key):
        errors["api_key"] = "must not contain spaces or control characters"
    values.api_key = api_key

    origins = raw.get("cors_origins", [])
    values.cors_origins = parse_origins(origins) if isinstance(origins, str) else list(origins)
    for origin in values.cors_origins:
        if problem := _origin_error(origin):
            errors["cors_origins"] = problem
            break

    for name in FIELDS:
        if name not in errors and (problem := _field_error(name, getattr(values, name))):
            errors[name] = problem
    return (None, errors) if errors else (values, {})


def settings_object(values: SettingsValues) -> dict[str, Any]:
    """What goes under "settings" in the file. An empty API key is left out: no key."""
    result = values.as_dict()
    if not result["api_key"]:
        del result["api_key"]
    return result


def save(config_file: Path, values: SettingsValues) -> None:
    """Writes the settings into the config file, keeping "models" and anything else in it.

    Raises ValueError (a file that is not a JSON object is not replaced) or OSError."""

    def edit(document: dict[str, Any]) -> None:
        previous = document.get(SETTINGS_KEY)
        merged = dict(previous) if isinstance(previous, dict) else {}
        merged.update(settings_object(values))
        if not values.api_key:
            merged.pop("api_key", None)
        document[SETTINGS_KEY] = merged

    edit_config_document(config_file, edit)


def changed_fields(before: SettingsValues, after: SettingsValues) -> list[str]:
    return [name for name in FIELDS if getattr(before, name) != getattr(after, name)]


def environment_overrides(names: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """LLM_* variables that are set and so win over the file for these fields."""
    env = {key.upper() for key in (os.environ if environ is None else environ)}
    return [ENV_NAMES[name] for name in names if ENV_NAMES[name] in env]


def save_report(config_file: Path, changed: list[str], environ: dict[str, str] | None = None) -> str:
    """The line the panel shows after saving."""
    if not changed:
        return f"Saved to {config_file}; nothing changed."
    report = f"Saved to {config_file}. Restart the server for {', '.join(LABELS[n].lower() for n in changed)}."
    overridden = environment_overrides(changed, environ)
    if overridden:
        report += f" Note: {', '.join(overridden)} set in the environment override the file."
    return report


def running_values(status, rest_url: str) -> dict[str, str]:
    """What the running server uses, for the fields it tells (GetStatus, and
    the REST URL this window talks to), as the form writes them."""
    from urllib.parse import urlsplit

    running: dict[str, str] = {}
    port = urlsplit(rest_url).port
    if port is not None:
        running["server_port"] = str(port)
    if status is not None:
        running["models_dir"] = status.models_dir
        running["use_gpu"] = "on" if status.gpu_offload else "off"
        running["keep_alive"] = f"{status.keep_alive_seconds:g}"
    return running


def differing(saved: SettingsValues, running: dict[str, str]) -> set[str]:
    """The fields whose saved value is not the one running (a restart applies them)."""
    shown = {
        "server_port": str(saved.server_port),
        "models_dir": saved.models_dir,
        # GPU offload can be off with the setting on (no GPU build): only "off when asked on" is not a difference.
        "use_gpu": "on" if saved.use_gpu else "off",
        "keep_alive": f"{saved.keep_alive:g}",
    }
    out = {name for name, value in running.items() if name in shown and value != shown[name]}
    if "models_dir" in out and _same_folder(saved.models_dir, running["models_dir"]):
        out.discard("models_dir")  # "~/models/" and "/home/me/models" are one folder
    if running.get("use_gpu") == "off" and saved.use_gpu:
        out.discard("use_gpu")
    return out


def _same_folder(saved: str, running: str) -> bool:
    try:
        return Path(saved).expanduser().resolve() == Path(running).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return False
