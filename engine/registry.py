"""Which models exist: *.gguf files in the models folder plus the config file's
declarations, with metadata read from each file once per change."""

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from hearth.engine.errors import ModelNotFound
from hearth.engine.gguf_info import GGUFInfo, GGUFReadError, read_gguf_info
from hearth.engine.model_config import load_config_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRecord:
    id: str
    path: Path
    file_size: int
    modified: int
    info: GGUFInfo | None
    # Why the file cannot be used; None when it can.
    invalid_reason: str | None
    context_window: int
    max_output_tokens: int
    chat_template_override: str | None


class ModelRegistry:
    def __init__(self, models_dir: Path, config_file: Path, context_limit: int):
        self.models_dir = models_dir
        self.config_file = config_file
        self.context_limit = context_limit
        self._lock = threading.Lock()
        # path -> ((size, mtime_ns), info or error text)
        self._cache: dict[Path, tuple[tuple[int, int], GGUFInfo | str]] = {}

    def _read(self, path: Path) -> tuple[os.stat_result | None, GGUFInfo | None, str | None]:
        try:
            stat = path.stat()
        except OSError as exc:
            return None, None, f"cannot read file: {exc.strerror or exc}"
        if not path.is_file():
            return None, None, "not a regular file"
        key = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(path)
        if cached is None or cached[0] != key:
            try:
                result: GGUFInfo | str = read_gguf_info(path)
            except GGUFReadError as exc:
                result = str(exc)
                log.warning("model file %s is invalid: %s", path, result)
            with self._lock:
                self._cache[path] = (key, result)
        else:
            result = cached[1]
        if isinstance(result, str):
            return stat, None, result
        return stat, result, None

    def _record(
        self,
        model_id: str,
        path: Path,
        context_window: int | None = None,
        max_output_tokens: int | None = None,
        template: str | None = None,
    ) -> ModelRecord:
        stat, info, reason = self._read(path)
        trained = info.trained_context_length if info and info.trained_context_length else self.context_limit
        window = min(context_window or self.context_limit, trained)
        return ModelRecord(
            id=model_id,
            path=path,
            file_size=stat.st_size if stat else 0,
            modified=int(stat.st_mtime) if stat else 0,
            info=info,
            invalid_reason=reason,
            context_window=window,
            max_output_tokens=min(max_output_tokens or window, window),
            chat_template_override=template,
        )

    def scan(self) -> dict[str, ModelRecord]:
        records: dict[str, ModelRecord] = {}
        try:
            files = sorted(p for p in self.models_dir.glob("*.gguf") if not p.name.startswith("."))
        except OSError as exc:
            log.warning("cannot list models folder %s: %s", self.models_dir, exc)
            files = []
        for path in files:
            records[path.name.removesuffix(".gguf")] = self._record(path.name.removesuffix(".gguf"), path)
        # Declared models win over discovered files of the same id.
        for entry in load_config_file(self.config_file).models:
            records[entry.id] = self._record(
                entry.id, entry.path, entry.context_window, entry.max_output_tokens, entry.chat_template
            )
        return records

    def get(self, model_id: str) -> ModelRecord:
        record = self.scan().get(model_id)
        if record is None:
            raise ModelNotFound(f"The model '{model_id}' does not exist", param="model", model=model_id)
        return record
