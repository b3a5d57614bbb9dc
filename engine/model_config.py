"""The config file's model declarations:
{"models": [{"id", "path", "context_window", "max_output_tokens", "chat_template"}]}."""

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearth.settings_file import read_config_document

log = logging.getLogger(__name__)

MODELS_KEY = "models"
# One read-modify-write of the file at a time in this process.
_write_lock = threading.Lock()

MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=MODEL_ID_PATTERN, description="Id clients use in requests.")
    path: Path = Field(description="Path of the GGUF file; relative paths are relative to the config file.")
    context_window: int | None = Field(default=None, ge=256, le=1_048_576)
    max_output_tokens: int | None = Field(default=None, ge=1, le=1_048_576)
    chat_template: str | None = Field(default=None, description="Jinja chat template overriding the file's.")


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
        config = ConfigFile.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        log.warning("ignoring invalid config file %s: %s", path, exc)
        return ConfigFile()
    for entry in config.models:
        if not entry.path.is_absolute():
            entry.path = (path.parent / entry.path).resolve()
    return config


def edit_model_entries(path: Path, edit: Callable[[list[Any]], list[Any]]) -> None:
    """Rewrites the file's "models" list as ``edit`` returns it, keeping every other
    key ("settings", which the desktop window writes, and any unknown one).

    The file is written whole and moved into place, so a reader never sees half
    of it. Raises ValueError when the file is not a JSON object (it is then left
    alone) and OSError when it cannot be written."""
    with _write_lock:
        document = read_config_document(path)
        models = document.get(MODELS_KEY, [])
        if not isinstance(models, list):
            raise ValueError(f'"{MODELS_KEY}" in {path} is not a list')
        document[MODELS_KEY] = edit(list(models))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2)
                out.write("\n")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
