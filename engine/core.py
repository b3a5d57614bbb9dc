"""The engine's domain API: what the gRPC servicer delegates to."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psutil

from hearth import __version__
from hearth.engine.chat_templates import normalize_messages, template_source_label
from hearth.engine.errors import ContextLengthExceeded, EngineError, InvalidArgument, ModelInvalid, TemplateError
from hearth.engine.events import EventBus, RequestEvent
from hearth.engine.llama_backend import BackendInfo, llama_cpp_version
from hearth.engine.registry import ModelRecord, ModelRegistry
from hearth.engine.requests import (
    Cancelled,
    ChoiceEnded,
    Failed,
    Finished,
    GenerateParams,
    GenerationJob,
    TextPiece,
)
from hearth.engine.runtime import LoadedModel, ModelRuntime
from hearth.engine.settings import EngineSettings

log = logging.getLogger(__name__)

MAX_STOP_STRINGS = 16


@dataclass(frozen=True)
class ModelView:
    record: ModelRecord
    state: str
    reason: str
    memory_bytes: int
    template_source: str


def describe(record: ModelRecord, state: str = "UNLOADED", reason: str = "", memory_bytes: int = 0) -> ModelView:
    """A model as clients see it; a file that cannot be used is INVALID whatever ``state`` says."""
    if record.invalid_reason or record.info is None:
        return ModelView(record, "INVALID", record.invalid_reason or "unreadable", 0, "")
    source = template_source_label(
        gguf_template=record.info.chat_template,
        override=record.chat_template_override,
        architecture=record.info.architecture,
    )
    return ModelView(record, state, reason, memory_bytes, source)


@dataclass(frozen=True)
class LoadedModelView:
    id: str
    memory_bytes: int
    active_requests: int
    idle_seconds: float
    slots: int
    busy_slots: int
    queued_requests: int


@dataclass(frozen=True)
class StatusView:
    backend: BackendInfo
    gpu_offload: bool
    engine_version: str
    llama_cpp_python_version: str
    loaded: list[LoadedModelView]
    process_memory: int
    system_memory_total: int
    system_memory_available: int
    uptime: float
    models_dir: str
    keep_alive: float


class EngineCore:
    def __init__(self, settings: EngineSettings, backend: BackendInfo):
        self.settings = settings
        self.backend = backend
        self.gpu_offload = settings.use_gpu and backend.supports_gpu_offload
        self.events = EventBus()
        self.registry = ModelRegistry(settings.models_dir, settings.config_file, settings.context_size)
        self.runtime = ModelRuntime(settings, self.gpu_offload, self.events)
        self._started = time.monotonic()
        self._reaper: asyncio.Task | None = None

    async def start(self) -> None:
        self.events.bind(asyncio.get_running_loop())
        self._reaper = asyncio.create_task(self._reap_idle_models())

    async def stop(self) -> None:
        if self._reaper:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.runtime.unload_all()

    async def _reap_idle_models(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.runtime.unload_idle()
            except Exception:
                log.exception("unloading idle models failed")

    # Models

    def _view(self, record: ModelRecord) -> ModelView:
        loaded = self.runtime.get_loaded(record.id)
        state, reason = self.runtime.state(record.id)
        return describe(record, state, reason, loaded.memory_bytes if loaded else 0)

    async def list_models(self) -> list[ModelView]:
        records = await asyncio.to_thread(self.registry.scan)
        return [self._view(r) for r in records.values()]

    async def get_model(self, model_id: str) -> ModelView:
        return self._view(await asyncio.to_thread(self.registry.get, model_id))

    async def load_model(self, model_id: str) -> ModelView:
        record = await asyncio.to_thread(self.registry.get, model_id)
        await self.runtime.load(record)
        return self._view(record)

    async def unload_model(self, model_id: str) -> ModelView:
        record = await asyncio.to_thread(self.registry.get, model_id)
        await self.runtime.unload(model_id)
        return self._view(record)

    def status(self) -> StatusView:
        now = time.monotonic()
        memory = psutil.virtual_memory()
        return StatusView(
            backend=self.backend,
            gpu_offload=self.gpu_offload,
            engine_version=__version__,
            llama_cpp_python_version=llama_cpp_version(),
            loaded=[
                LoadedModelView(
                    id=m.record.id,
                    memory_bytes=m.memory_bytes,
                    active_requests=m.scheduler.pending,
                    idle_seconds=0.0 if m.active else now - m.last_used,
                    slots=m.scheduler.slots,
                    busy_slots=m.scheduler.busy_slots,
                    queued_requests=m.scheduler.queued,
                )
                for m in self.runtime.loaded()
            ],
            process_memory=psutil.Process().memory_info().rss,
            system_memory_total=memory.total,
            system_memory_available=memory.available,
            uptime=now - self._started,
            models_dir=str(self.settings.models_dir),
            keep_alive=self.settings.keep_alive,
        )

    # Generation

    def _validate(self, params: GenerateParams, record: ModelRecord) -> None:
        if (params.messages is None) == (params.prompt is None):
            raise InvalidArgument("Give exactly one of 'messages' and 'prompt'", param="messages")
        if params.messages is not None and not params.messages:
            raise InvalidArgument("'messages' must not be empty", param="messages")
        if params.max_tokens is not None and not 1 <= params.max_tokens <= record.max_output_tokens:
            raise InvalidArgument(
                f"'max_tokens' must be between 1 and {record.max_output_tokens} for model '{record.id}'",
                param="max_tokens",
            )
        if not 1 <= params.n <= self.settings.parallel:
            raise InvalidArgument(
                f"'n' must be between 1 and {self.settings.parallel}, the sequences a model serves at once",
                param="n",
            )
        if len(params.stop) > MAX_STOP_STRINGS:
            raise InvalidArgument(f"At most {MAX_STOP_STRINGS} stop strings are allowed", param="stop")
        if record.invalid_reason:
            raise ModelInvalid(
                f"The model '{record.id}' cannot be used: {record.invalid_reason}", param="model", model=record.id
            )

    def _prompt_tokens(self, loaded: LoadedModel, params: GenerateParams) -> list[int]:
        if params.messages is not None:
            if loaded.template is None:
                raise TemplateError(loaded.template_error or "the model has no usable chat template", param="messages")
            text = loaded.template.render(normalize_messages(params.messages))
            bos = loaded.template.bos_token
        else:
            text, bos = params.prompt or "", ""
        # No token spans 64 bytes on average: a longer text cannot fit, and
        # llama.cpp's tokenizer is quadratic on some vocabularies, so refuse it
        # before tokenizing.
        if len(text.encode("utf-8", "replace")) > loaded.n_ctx * 64:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {loaded.n_ctx} tokens; the prompt is far longer.",
                param="messages" if params.messages is not None else "prompt",
                model=loaded.record.id,
            )
        # A template that writes the BOS token itself must not get a second one.
        tokens = loaded.model.tokenize(text, add_special=not (bos and text.startswith(bos)))
        if not tokens:
            raise InvalidArgument("The prompt is empty", param="prompt")
        return tokens

    async def generate(self, params: GenerateParams) -> AsyncIterator[TextPiece | ChoiceEnded | Finished]:
        arrived = time.monotonic()
        record = await asyncio.to_thread(self.registry.get, params.model)
        self._validate(params, record)
        loaded = await self.runtime.acquire(record)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job: GenerationJob | None = None
        first_token_at: float | None = None
        outcome, finish, error = "FAILED", "", ""
        prompt_tokens = completion_tokens = 0
        try:
            tokens = await asyncio.to_thread(self._prompt_tokens, loaded, params)
            prompt_tokens = len(tokens)
            room = loaded.n_ctx - prompt_tokens
            if room <= 0:
                raise ContextLengthExceeded(
                    f"This model's maximum context length is {loaded.n_ctx} tokens. However, your prompt "
                    f"resulted in {prompt_tokens} tokens. Please reduce the length of the prompt.",
                    param="messages" if params.messages is not None else "prompt",
                    model=record.id,
                )
            job = GenerationJob(
                request_id=params.request_id,
                prompt_tokens=tokens,
                max_new_tokens=min(params.max_tokens or room, room),
                stop=params.stop,
                sampling=params.sampling,
                n=params.n,
                sink=lambda event: loop.call_soon_threadsafe(events.put_nowait, event),
            )
            loaded.scheduler.submit(job)
            while True:
                event = await events.get()
                if isinstance(event, Failed):
                    raise EngineError("generation failed") from event.error
                if isinstance(event, Cancelled):
                    outcome = "CANCELLED"
                    return
                if isinstance(event, TextPiece) and first_token_at is None:
                    first_token_at = time.monotonic()
                if isinstance(event, Finished):
                    outcome, finish = "COMPLETED", event.finish_reason.value
                    completion_tokens = event.completion_tokens
                yield event
                if isinstance(event, Finished):
                    return
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "CANCELLED"
            raise
        except EngineError as exc:
            error = exc.message
            raise
        finally:
            if job is not None:
                job.cancel.set()
            self.runtime.release(loaded)
            self._record_request(
                params, arrived, first_token_at, prompt_tokens, completion_tokens, outcome, finish, error
            )

    def _record_request(
        self,
        params: GenerateParams,
        arrived: float,
        first_token_at: float | None,
        prompt_tokens: int,
        completion_tokens: int,
        outcome: str,
        finish: str,
        error: str,
    ) -> None:
        now = time.monotonic()
        decode_time = now - first_token_at if first_token_at else 0.0
        rate = (completion_tokens - 1) / decode_time if decode_time > 0 and completion_tokens > 1 else 0.0
        event = RequestEvent(
            request_id=params.request_id,
            model=params.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            time_to_first_token=(first_token_at - arrived) if first_token_at else 0.0,
            duration=now - arrived,
            tokens_per_second=rate,
            outcome=outcome,
            finish_reason=finish,
            error=error,
        )
        log.info(
            "request %s model=%s outcome=%s finish=%s prompt=%d completion=%d ttft=%.3fs duration=%.3fs tok/s=%.1f",
            event.request_id,
            event.model,
            outcome,
            finish or "-",
            prompt_tokens,
            completion_tokens,
            event.time_to_first_token,
            event.duration,
            rate,
        )
        self.events.publish(event)
