"""Loaded models: lazy, single-flight loading, explicit unload, and unloading
after the keep-alive once a model is idle."""

import asyncio
import logging
import time
from dataclasses import dataclass, field

import llama_cpp

from hearth.engine import llama_backend
from hearth.engine.chat_templates import ChatTemplate, choose_template
from hearth.engine.errors import ModelInvalid, ModelLoadFailed, TemplateError
from hearth.engine.events import EventBus, ModelStateEvent
from hearth.engine.generation import run_generation
from hearth.engine.registry import ModelRecord
from hearth.engine.scheduler import SerialScheduler
from hearth.engine.settings import EngineSettings

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    record: ModelRecord
    llm: llama_cpp.Llama
    template: ChatTemplate | None
    template_error: str | None
    stop_token_ids: frozenset[int]
    memory_bytes: int
    scheduler: SerialScheduler
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def n_ctx(self) -> int:
        return self.llm.n_ctx()


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
        llm = llama_backend.load_llama(
            record.path,
            n_ctx=record.context_window,
            gpu_offload=self._gpu_offload,
            threads=self._threads,
            batch_size=self._settings.batch_size,
        )
        bos = llama_backend.token_text(llm, llm.token_bos())
        eos = llama_backend.token_text(llm, llm.token_eos())
        template: ChatTemplate | None = None
        template_error: str | None = None
        try:
            template = choose_template(
                gguf_template=record.info.chat_template,
                override=record.chat_template_override,
                architecture=record.info.architecture,
                bos_token=bos,
                eos_token=eos,
            )
        except TemplateError as exc:
            # The model still serves raw completions; chat requests get this error.
            template_error = exc.message
        stop_ids = {
            token
            for text in (template.stop if template else ())
            if (token := llama_backend.single_token_id(llm, text)) is not None
        }
        stop_token_ids = frozenset(stop_ids)
        scheduler = SerialScheduler(
            record.id, lambda job: run_generation(llm, stop_token_ids, job), self._settings.max_queue
        )
        return LoadedModel(
            record=record,
            llm=llm,
            template=template,
            template_error=template_error,
            stop_token_ids=stop_token_ids,
            memory_bytes=llama_backend.memory_bytes(llm),
            scheduler=scheduler,
        )

    async def _unload_locked(self, model_id: str) -> bool:
        loaded = self._loaded.pop(model_id, None)
        if loaded is None:
            return False
        # Requests in flight finish first.
        await loaded.idle.wait()

        def close() -> None:
            loaded.scheduler.close()
            loaded.llm.close()

        await asyncio.to_thread(close)
        log.info("unloaded %s", model_id)
        self._events.publish(ModelStateEvent(model_id, "UNLOADED"))
        return True
