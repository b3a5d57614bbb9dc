"""The config file's "settings" object as a pydantic-settings source.

The config file (LLM_CONFIG_FILE, by default config.json in the user config
folder) may hold, next to its "models" list, a "settings" object whose keys are
settings field names: {"settings": {"server_port": 8080, "use_gpu": false}}.
The desktop window writes it; EngineSettings and AdapterSettings read it.

Precedence, highest first: init kwargs (command-line flags), LLM_* environment
variables, this file, the field defaults. Keys a settings class does not have
are ignored, so one object serves both classes. A value that does not validate
is logged and skipped rather than stopping the server from starting, as a
broken "models" entry is."""

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hearth.paths import default_config_file

try:
    import fcntl
except ImportError:  # Windows: writers in one process are still serialized by the engine
    fcntl = None

SETTINGS_KEY = "settings"
CONFIG_FILE_ENV = "LLM_CONFIG_FILE"
# The file cannot move itself: where it is comes from the flag, the variable or the default.
_NOT_FROM_FILE = frozenset({"config_file"})

log = logging.getLogger(__name__)


def config_file_path(init_kwargs: Mapping[str, Any] | None = None) -> Path:
    """The config file in use: an explicit ``config_file`` kwarg, else LLM_CONFIG_FILE, else the default."""
    if init_kwargs and init_kwargs.get("config_file"):
        return Path(init_kwargs["config_file"]).expanduser()
    for name, value in os.environ.items():
        # pydantic-settings matches variable names case-insensitively; so does this.
        if name.upper() == CONFIG_FILE_ENV and value:
            return Path(value).expanduser()
    return default_config_file()


def read_config_document(path: Path) -> dict[str, Any]:
    """The whole config file as a dict; {} when the file is absent.

    Raises ValueError when the file exists but is not a JSON object, so that a
    writer never replaces a file it could not read."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    document = json.loads(raw) if raw.strip() else {}
    if not isinstance(document, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return document


def edit_config_document(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Read-modify-write of the whole config file: ``edit`` changes the document
    in place. The engine (model aliases) and the desktop window (settings) both
    write this file, so writers take an exclusive lock on a sidecar file, and the
    new file is written whole and moved into place: a reader never sees half of
    it. Raises ValueError (a file that is not a JSON object is left alone) or OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        document = read_config_document(path)
        edit(document)
        fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2)
                out.write("\n")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def read_settings_object(path: Path) -> dict[str, Any]:
    """The file's "settings" object; {} when absent, unreadable or malformed (logged)."""
    try:
        document = read_config_document(path)
    except (OSError, ValueError) as exc:
        log.warning("ignoring the settings in config file %s: %s", path, exc)
        return {}
    settings = document.get(SETTINGS_KEY, {})
    if not isinstance(settings, dict):
        log.warning('ignoring "%s" in config file %s: it is not an object', SETTINGS_KEY, path)
        return {}
    return settings


def field_adapter(field: FieldInfo) -> TypeAdapter:
    """A validator for one field with its constraints (ge, le, ...), outside its class."""
    if field.metadata:
        return TypeAdapter(Annotated[(field.annotation, *field.metadata)])
    return TypeAdapter(field.annotation)


class ConfigFileSettingsSource(PydanticBaseSettingsSource):
    """Values from the config file's "settings" object, for the fields ``settings_cls`` has."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource | None = None):
        super().__init__(settings_cls)
        # Read to find an explicit config_file kwarg (EngineSettings(config_file=...)).
        self._init_settings = init_settings

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ reads the whole object at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        init_kwargs = self._init_settings() if self._init_settings is not None else {}
        path = config_file_path(init_kwargs)
        values: dict[str, Any] = {}
        for name, value in read_settings_object(path).items():
            field = self.settings_cls.model_fields.get(name)
            if field is None or name in _NOT_FROM_FILE:
                continue
            try:
                field_adapter(field).validate_python(value)
            except ValidationError as exc:
                log.warning("ignoring setting %r in config file %s: %s", name, path, exc.errors()[0]["msg"])
                continue
            values[name] = value
        return values


def sources_with_config_file(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    dotenv_settings: PydanticBaseSettingsSource,
    file_secret_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """For ``settings_customise_sources``: flags > environment > config file > defaults."""
    return (
        init_settings,
        env_settings,
        dotenv_settings,
        ConfigFileSettingsSource(settings_cls, init_settings),
        file_secret_settings,
    )


class HearthSettings(BaseSettings):
    """Settings read from flags > LLM_* variables > the config file's "settings" object > defaults."""

    model_config = SettingsConfigDict(env_prefix="LLM_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return sources_with_config_file(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
