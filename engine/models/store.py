"""Deleting and copying models, and setting a model's own settings: their
files in the models folder and their entries in the config file. Blocking; callers unload a model before deleting it.

A copy is an alias: a config entry with the new id and the source's path and
overrides; no file is copied. A file stays while any id still serves it: deleting
a model folder file that aliases still use hides it under a dot-name (which the
registry ignores) and points the aliases there, so the aliases keep working."""

import logging
import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hearth.engine.errors import (
    AlreadyExists,
    EngineError,
    InvalidArgument,
    ModelNotFound,
)
from hearth.engine.models.config import (
    MODEL_ID_MAX_LENGTH,
    MODEL_ID_PATTERN,
    ModelEntry,
    edit_model_entries,
    load_config_file,
)
from hearth.engine.models.gguf_info import kv_cache_type_problem
from hearth.engine.models.registry import ModelRecord, ModelRegistry
from hearth.models_folder import folder_lock

log = logging.getLogger(__name__)

# Config-entry fields a model's settings replace (UpdateModelSettings); the id, path,
# max_output_tokens and reasoning_format of an entry are left as they are.
SETTINGS = (
    "context_window",
    "gpu_layers",
    "parallel",
    "kv_cache_type",
    "keep_alive",
    "chat_template",
    "system",
    "parameters",
)
# Config-entry fields an alias takes over from its source: all but its id and path.
_OVERRIDES = (*SETTINGS, "max_output_tokens", "reasoning_format")


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _in_models_dir(models_dir: Path, path: Path) -> Path | None:
    """``path`` with its folder resolved when it lies in the models folder (the
    file itself may be a link: it is never followed), else None."""
    folder = models_dir.resolve()
    parent = path.parent.resolve()
    if parent == folder or folder in parent.parents:
        return parent / path.name
    return None


def _edit_config(config_file: Path, edit) -> None:
    try:
        edit_model_entries(config_file, edit)
    except (OSError, ValueError) as exc:
        raise EngineError(f"Cannot update the config file {config_file}: {exc}") from exc


def _entry_id(entry: Any) -> Any:
    return entry.get("id") if isinstance(entry, dict) else None


def _get(records: dict[str, ModelRecord], model_id: str, param: str) -> ModelRecord:
    record = records.get(model_id)
    if record is None:
        raise ModelNotFound(f"The model '{model_id}' does not exist", param=param, model=model_id)
    return record


def delete_model(registry: ModelRegistry, model_id: str) -> Path | None:
    """Deletes the model; returns the file removed, if one was. Decides and
    acts under the models folder's lock."""
    with folder_lock(registry.models_dir):
        return _delete(registry, model_id)


def _delete(registry: ModelRegistry, model_id: str) -> Path | None:
    records = registry.scan()
    record = _get(records, model_id, "id")
    declared = any(entry.id == model_id for entry in load_config_file(registry.config_file).models)
    # Ids that still serve this file once this one is gone.
    others = [r.id for r in records.values() if r.id != model_id and _same_file(r.path, record.path)]
    in_folder = _in_models_dir(registry.models_dir, record.path)
    if declared:
        _edit_config(registry.config_file, lambda models: [e for e in models if _entry_id(e) != model_id])
        log.info("removed the config entry of %s", model_id)
        if others or in_folder is None:
            return None
        in_folder.unlink(missing_ok=True)
        log.info("deleted %s", in_folder)
        return in_folder
    assert in_folder is not None  # a discovered model is a file in the folder
    if others:
        _hide_for_aliases(registry, in_folder, others)
        return None
    in_folder.unlink(missing_ok=True)
    log.info("deleted %s", in_folder)
    return in_folder


def _hide_for_aliases(registry: ModelRegistry, path: Path, aliases: list[str]) -> None:
    """Takes the file's own id away while keeping it for the aliases that use it."""
    hidden = path.with_name(f".{path.name}")
    counter = 1
    while hidden.exists() or hidden.is_symlink():
        hidden = path.with_name(f".{path.stem}-{counter}{path.suffix}")
        counter += 1
    os.replace(path, hidden)

    def repoint(models: list[Any]) -> list[Any]:
        result = []
        for entry in models:
            if _entry_id(entry) in aliases:
                entry = {**entry, "path": str(hidden)}
            result.append(entry)
        return result

    try:
        _edit_config(registry.config_file, repoint)
    except EngineError:
        os.replace(hidden, path)
        raise
    log.info("%s is still used by %s: kept as %s", path.name, ", ".join(aliases), hidden.name)


def copy_model(registry: ModelRegistry, source: str, destination: str) -> None:
    """Adds ``destination`` as an alias of ``source`` in the config file, under
    the models folder's lock (so the source cannot be deleted in between)."""
    if len(destination) > MODEL_ID_MAX_LENGTH or not re.fullmatch(MODEL_ID_PATTERN, destination):
        raise InvalidArgument(
            f"'{destination}' is not a valid model id: use letters, digits, '.', '_', ':' and '-', "
            f"in parts separated by '/' that start with a letter or digit (up to {MODEL_ID_MAX_LENGTH} characters)",
            param="destination",
        )
    with folder_lock(registry.models_dir):
        _add_alias(registry, source, destination)
    log.info("added %s as a copy of %s", destination, source)


def _add_alias(registry: ModelRegistry, source: str, destination: str) -> None:
    records = registry.scan()
    record = _get(records, source, "source")
    if destination in records:
        raise AlreadyExists(f"A model named '{destination}' already exists", param="destination", model=destination)
    entry: dict[str, Any] = {"id": destination, "path": str(record.path.absolute())}
    for declared in load_config_file(registry.config_file).models:
        if declared.id == source:
            entry.update({name: getattr(declared, name) for name in _OVERRIDES if getattr(declared, name) is not None})

    def add(models: list[Any]) -> list[Any]:
        if any(_entry_id(e) == destination for e in models):
            raise AlreadyExists(f"A model named '{destination}' already exists", param="destination", model=destination)
        return [*models, entry]

    _edit_config(registry.config_file, add)


def update_model_settings(registry: ModelRegistry, model_id: str, settings: dict[str, Any]) -> None:
    """Replaces the SETTINGS of the model's config entry with ``settings`` (a
    field left out is removed); a model of the models folder gets an entry of
    its own. Checked as the config file's loader checks an entry, first."""
    with folder_lock(registry.models_dir):
        record = _get(registry.scan(), model_id, "model")
        entry = {"id": model_id, "path": str(record.path.absolute()), **settings}
        try:
            ModelEntry.model_validate(entry)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise InvalidArgument(f"'{where}': {error['msg']}", param=f"settings.{where}") from None

        problem = kv_cache_type_problem(record.info, settings.get("kv_cache_type"))
        if problem:
            raise InvalidArgument(f"'kv_cache_type': {problem}", param="settings.kv_cache_type")

        def replace_settings(models: list[Any]) -> list[Any]:
            for index, declared in enumerate(models):
                if _entry_id(declared) == model_id and isinstance(declared, dict):
                    kept = {name: value for name, value in declared.items() if name not in SETTINGS}
                    return [*models[:index], {**kept, **settings}, *models[index + 1 :]]
            return [*models, entry]

        _edit_config(registry.config_file, replace_settings)
    log.info("updated the settings of %s: %s", model_id, ", ".join(sorted(settings)) or "none")
