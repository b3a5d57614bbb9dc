"""Loaded models: lazy, single-flight loading, explicit unload, and unloading
after the keep-alive once a model is idle."""

import asyncio
import logging
import time
from dataclasses import dataclass, field

import psutil

from hearth.engine import llama_backend
from hearth.engine.chat_templates import ChatTemplate, choose_template
from hearth.engine.errors import ModelInvalid, ModelLoadFailed, TemplateError
from hearth.engine.events import EventBus, ModelStateEvent
from hearth.engine.llama_backend import LlamaContext, LlamaModel
from hearth.engine.registry import ModelRecord
from hearth.engine.scheduler import BatchScheduler
from hearth.engine.settings import EngineSettings

log = logging.getLogger(__name__)


def _resident_bytes() -> int:
    return psutil.Process().memory_info().rss


@dataclass
class LoadedModel:
    record: ModelRecord
    model: LlamaModel
    template: ChatTemplate | None
    template_error: str | None
    memory_bytes: int
    scheduler: BatchScheduler
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def n_ctx(self) -> int:
        """Context of one sequence: prompt plus output must fit in it."""
        return min(self.record.context_window, self.scheduler.context.n_ctx_seq)

    def close(self) -> None:
        self.scheduler.close()  # frees the context too
        self.model.close()


class ModelRuntime:
    def __init__(self, settings: EngineSettings, gpu_offload: bool, events: EventBus):
        self._settings = settings
        self._gpu_offload = gpu_offload
        self._events = events
        self._threads = settings.threads or llama_backend.default_threads()
        self._loaded: dict[str, LoadedModel] = {}
        # Why the last load of a model failed, until it loads.
        self._failures: dict[str, str] = {}
        self._loading: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    def get_loaded(self, model_id: str) -> LoadedModel | None:
        return self._loaded.get(model_id)

    def state(self, model_id: str) -> tuple[str, str]:
        """(ModelState name, reason) of a valid model."""
        if model_id in self._loading:
            return "LOADING", ""
        if model_id in self._loaded:
            return "READY", ""
        if model_id in self._failures:
            return "FAILED", self._failures[model_id]
        return "UNLOADED", ""

    def _lock(self, model_id: str) -> asyncio.Lock:
        return self._locks.setdefault(model_id, asyncio.Lock())

    async def acquire(self, record: ModelRecord) -> LoadedModel:
        """The loaded model, loading it first if needed, counted as in use until release()."""
        async with self._lock(record.id):
            loaded = self._loaded.get(record.id)
            if loaded is None or loaded.record.path != record.path:
                if loaded is not None:
                    await self._unload_locked(record.id)
                loaded = await self._load_locked(record)
            loaded.active += 1
            loaded.idle.clear()
            return loaded

    def release(self, loaded: LoadedModel) -> None:
        loaded.active -= 1
        loaded.last_used = time.monotonic()
        if loaded.active == 0:
            loaded.idle.set()

    async def load(self, record: ModelRecord) -> LoadedModel:
        async with self._lock(record.id):
            return self._loaded.get(record.id) or await self._load_locked(record)

    async def unload(self, model_id: str) -> bool:
        async with self._lock(model_id):
            self._failures.pop(model_id, None)
            return await self._unload_locked(model_id)

    async def unload_all(self) -> None:
        for model_id in list(self._loaded):
            await self.unload(model_id)

    async def unload_idle(self) -> None:
        """Unload every model idle for longer than the keep-alive."""
        now = time.monotonic()
        for loaded in list(self._loaded.values()):
            if loaded.active == 0 and now - loaded.last_used >= self._settings.keep_alive:
                async with self._lock(loaded.record.id):
                    # Recheck: a request may have arrived while we waited.
                    if loaded.active == 0 and self._loaded.get(loaded.record.id) is loaded:
                        log.info("unloading %s after %.0fs idle", loaded.record.id, now - loaded.last_used)
                        await self._unload_locked(loaded.record.id)

    async def _load_locked(self, record: ModelRecord) -> LoadedModel:
        if record.invalid_reason or record.info is None:
            raise ModelInvalid(
                f"The model '{record.id}' cannot be used: {record.invalid_reason}", param="model", model=record.id
            )
        self._loading.add(record.id)
        self._events.publish(ModelStateEvent(record.id, "LOADING"))
        started = time.monotonic()
        try:
            loaded = await asyncio.to_thread(self._load_blocking, record)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            log.error("loading %s failed: %s", record.id, reason)
            self._failures[record.id] = reason
            self._events.publish(ModelStateEvent(record.id, "FAILED", reason))
            raise ModelLoadFailed(
                f"The model '{record.id}' failed to load: {reason}", model=record.id
            ) from exc
        finally:
            self._loading.discard(record.id)
        self._failures.pop(record.id, None)
        self._loaded[record.id] = loaded
        loaded.idle.set()
        log.info(
            "loaded %s in %.2fs (context %d, %.0f MiB)",
            record.id,
            time.monotonic() - started,
            loaded.n_ctx,
            loaded.memory_bytes / 2**20,
        )
        self._events.publish(ModelStateEvent(record.id, "READY"))
        return loaded

    def _load_blocking(self, record: ModelRecord) -> LoadedModel:
        assert record.info is not None
        model = LlamaModel(record.path, gpu_offload=self._gpu_offload)
        # llama.cpp does not report its buffers: the context's KV cache and
        # compute buffers are what the process grew by while creating it.
        rss_before_context = _resident_bytes()
        template: ChatTemplate | None = None
        template_error: str | None = None
        try:
            template = choose_template(
                gguf_template=record.info.chat_template,
                override=record.chat_template_override,
                architecture=record.info.architecture,
                bos_token=model.bos_text(),
                eos_token=model.eos_text(),
            )
        except TemplateError as exc:
            # The model still serves raw completions; chat requests get this error.
            template_error = exc.message
        stop_token_ids = frozenset(
            token
            for text in (template.stop if template else ())
            if (token := model.single_token_id(text)) is not None
        )
        try:
            scheduler = BatchScheduler(
                record.id,
                model,
                lambda: LlamaContext(
                    model,
                    n_ctx_seq=record.context_window,
                    n_seq=self._settings.parallel,
                    n_batch=self._settings.batch_size,
                    threads=self._threads,
                ),
                stop_token_ids,
                self._settings.max_queue,
            )
        except BaseException:
            model.close()
            raise
        return LoadedModel(
            record=record,
            model=model,
            template=template,
            template_error=template_error,
            memory_bytes=model.size_bytes() + max(0, _resident_bytes() - rss_before_context),
            scheduler=scheduler,
        )

    async def _unload_locked(self, model_id: str) -> bool:
        loaded = self._loaded.pop(model_id, None)
        if loaded is None:
            return False
        # Requests in flight finish first.
        await loaded.idle.wait()

        await asyncio.to_thread(loaded.close)
        log.info("unloaded %s", model_id)
        self._events.publish(ModelStateEvent(model_id, "UNLOADED"))
        return True
