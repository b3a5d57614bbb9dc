"""Which models exist: *.gguf files in the models folder plus the config file's
declarations, with metadata read from each file once per change.

The listing is kept between calls and made again only when the folder, a
model file or the config file changed (their sizes and modification times,
checked by refresh(): the engine calls it every second off the request path,
and before every listing); a request for one model checks that model's file
and the config file, not the folder.

Before a model is first used, llama.cpp reads it once in a throwaway process
(load, tokenize every kind of character, make a context): some malformed
files pass every header check and still make llama.cpp abort the process
that reads them. Such a file is listed as invalid instead of taking the
engine down."""

import dataclasses
import logging
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.engine.errors import ModelNotFound
from hearth.engine.llama.probe import death_signal, run_throwaway
from hearth.engine.models.config import load_config_file
from hearth.engine.models.gguf_info import GGUFInfo, GGUFReadError, read_gguf_info

log = logging.getLogger(__name__)

# The context of a model whose file does not say what it was trained with.
FALLBACK_CONTEXT = 8192


@dataclass(frozen=True)
class LoadSettings:
    """How a model is loaded, from its config entry (LM Studio's per-model
    load settings); None where the engine's settings apply."""

    # The context the entry asks for (the record's context_window is the one served).
    context_window: int | None = None
    gpu_layers: int | None = None
    parallel: int | None = None
    kv_cache_type: str | None = None
    keep_alive: float | None = None


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
    # The file's (size, mtime_ns) when it was read; (0, 0) when it could not be.
    file_key: tuple[int, int] = (0, 0)
    # "think", "harmony" or "none" from the config entry; None: from the template.
    reasoning_override: str | None = None
    # The config entry's system prompt and sampling defaults (set ones only), for requests that set none.
    system_prompt: str | None = None
    parameters: tuple[tuple[str, Any], ...] = ()
    # The config entry's load settings; None: the engine's own.
    load: LoadSettings = LoadSettings()


def file_key(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file (links followed), None when it cannot be read."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


PROBE_TIMEOUT_SECONDS = 300.0
# The probe's exit status for a file llama.cpp refused without dying.
PROBE_REFUSED = 3


def probe_with_llama_cpp(path: Path) -> str | None:
    """Why llama.cpp cannot read ``path`` without dying, or None when it can (or refuses it cleanly)."""
    try:
        done = run_throwaway("hearth.engine.llama.probe", str(path), timeout=PROBE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return f"llama.cpp did not finish reading the file in {PROBE_TIMEOUT_SECONDS:.0f}s"
    except OSError as exc:
        log.warning("cannot check %s with llama.cpp: %s", path, exc)
        return None
    if done.returncode < 0:
        return f"llama.cpp crashes reading this file ({death_signal(done.returncode)})"
    if done.returncode not in (0, PROBE_REFUSED):
        return f"llama.cpp failed reading this file (exit status {done.returncode})"
    return None


class ModelRegistry:
    def __init__(
        self,
        models_dir: Path,
        config_file: Path,
        context_limit: int,
        default_context: Callable[[GGUFInfo | None, int, int], int] | None = None,
    ):
        """``context_limit``: the most context a model is served with; 0 for its
        trained one, or what ``default_context(info, file_size, trained)``
        makes of it (the memory budget's fit)."""
        self.models_dir = models_dir
        self.config_file = config_file
        self.context_limit = context_limit
        self._default_context = default_context
        self._lock = threading.Lock()
        # path -> ((size, mtime_ns), info or error text)
        self._cache: dict[Path, tuple[tuple[int, int], GGUFInfo | str]] = {}
        # path -> ((size, mtime_ns), why llama.cpp cannot read it or None), for files probed.
        self._probed: dict[Path, tuple[tuple[int, int], str | None]] = {}
        self._probe_lock = threading.Lock()
        # The last listing and what it was made from (see _stamp); None before the first.
        self._snapshot: dict[str, ModelRecord] | None = None
        self._stamp_of_snapshot: tuple | None = None
        self._refresh_lock = threading.Lock()
        # Listings made (for tests and logs: requests must not make them).
        self.scans = 0

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
        reasoning: str | None = None,
    ) -> ModelRecord:
        stat, info, reason = self._read(path)
        trained = info.trained_context_length if info and info.trained_context_length else None
        if context_window or self.context_limit:
            window = min(context_window or self.context_limit, trained or FALLBACK_CONTEXT)
        elif trained and self._default_context is not None:
            window = self._default_context(info, stat.st_size if stat else 0, trained)
        else:
            window = trained or FALLBACK_CONTEXT
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
            file_key=(stat.st_size, stat.st_mtime_ns) if stat else (0, 0),
            reasoning_override=reasoning,
        )

    def _stamp(self) -> tuple:
        """What the listing is made from: the folder's model files and the
        config file, each with its size and modification time, and the files
        the config file declares elsewhere."""
        try:
            with os.scandir(self.models_dir) as entries:
                files = tuple(
                    sorted(
                        (entry.name, file_key(Path(entry.path)))
                        for entry in entries
                        if entry.name.endswith(".gguf") and not entry.name.startswith(".")
                    )
                )
        except OSError:
            files = None
        declared = tuple(
            sorted(
                (str(record.path), file_key(record.path))
                for record in (self._snapshot or {}).values()
                if record.path.parent != self.models_dir
            )
        )
        return files, file_key(self.config_file), declared

    def refresh(self) -> dict[str, ModelRecord]:
        """The listing, made again if anything it is made from changed. Blocking."""
        with self._refresh_lock:
            stamp = self._stamp()
            if self._snapshot is None or stamp != self._stamp_of_snapshot:
                self._snapshot = self._scan()
                self.scans += 1
                # Declared files outside the folder are known only now.
                self._stamp_of_snapshot = self._stamp()
            return self._snapshot

    def scan(self) -> dict[str, ModelRecord]:
        """Every model; files already probed and found unreadable by llama.cpp are invalid."""
        records = self.refresh()
        return {model_id: self._with_probe(record, run=False) for model_id, record in records.items()}

    def cached(self, model_id: str) -> ModelRecord | None:
        """The model as last listed, without touching the disk; None when it
        was not listed, or its file not yet checked by llama.cpp."""
        record = (self._snapshot or {}).get(model_id)
        if record is None or record.invalid_reason or record.info is None:
            return record
        done, reason = self._probe_result(record.path, record.file_key)
        if not done:
            return None
        return dataclasses.replace(record, invalid_reason=reason) if reason else record

    def _scan(self) -> dict[str, ModelRecord]:
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
            record = self._record(
                entry.id,
                entry.path,
                entry.context_window,
                entry.max_output_tokens,
                entry.chat_template,
                entry.reasoning_format,
            )
            parameters = entry.parameters.model_dump(exclude_none=True) if entry.parameters else {}
            parameters = {name: tuple(v) if isinstance(v, list) else v for name, v in parameters.items()}
            load = LoadSettings(
                entry.context_window, entry.gpu_layers, entry.parallel, entry.kv_cache_type, entry.keep_alive
            )
            records[entry.id] = dataclasses.replace(
                record, system_prompt=entry.system, parameters=tuple(sorted(parameters.items())), load=load
            )
        return records

    def _probe_result(self, path: Path, key: tuple[int, int]) -> tuple[bool, str | None]:
        """(probed, reason) for this version of the file."""
        with self._lock:
            probed = self._probed.get(path)
        if probed is not None and probed[0] == key:
            return True, probed[1]
        return False, None

    def _with_probe(self, record: ModelRecord, *, run: bool) -> ModelRecord:
        if record.invalid_reason or record.info is None:
            return record
        try:
            stat = record.path.stat()
        except OSError:
            return record
        key = (stat.st_size, stat.st_mtime_ns)
        done, reason = self._probe_result(record.path, key)
        if not done and run:
            with self._probe_lock:  # one probe at a time, and one per file version
                done, reason = self._probe_result(record.path, key)
                if not done:
                    reason = probe_with_llama_cpp(record.path)
                    if reason:
                        log.warning("model file %s is invalid: %s", record.path, reason)
                    with self._lock:
                        self._probed[record.path] = (key, reason)
        return dataclasses.replace(record, invalid_reason=reason) if reason else record

    def get(self, model_id: str) -> ModelRecord:
        """The model, checked by llama.cpp in a throwaway process the first time
        it is asked for. Blocking: the model's file and the config file are
        checked; the folder is listed again only if either changed."""
        snapshot, stamp = self._snapshot, self._stamp_of_snapshot
        record = (snapshot or {}).get(model_id)
        unchanged = (
            record is not None
            and stamp is not None
            and file_key(record.path) == record.file_key
            and file_key(self.config_file) == stamp[1]
        )
        if not unchanged:
            record = self.refresh().get(model_id)
        if record is None:
            raise ModelNotFound(f"The model '{model_id}' does not exist", param="model", model=model_id)
        return self._with_probe(record, run=True)
