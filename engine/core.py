"""The engine's domain API: what the gRPC servicer delegates to."""

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import psutil
from hearth.engine import model_store
from hearth.engine.blocking import run_to_completion
from hearth.engine.capabilities import model_capabilities
from hearth.engine.chat_templates import normalize_messages, template_source_label
from hearth.engine.embeddings import (
    EmbedParams,
    EmbedResult,
    ModelEmbedder,
    validate_inputs,
)
from hearth.engine.errors import (
    ContextLengthExceeded,
    EngineError,
    InvalidArgument,
    ModelInvalid,
    TemplateError,
)
from hearth.engine.events import EventBus, RequestEvent
from hearth.engine.generation import ToolCallReader
from hearth.engine.grammars import json_object_grammar, json_schema_grammar
from hearth.engine.llama_backend import (
    MAX_BYTES_PER_TOKEN,
    BackendInfo,
    default_threads,
    grammar_parses,
    llama_cpp_version,
)
from hearth.engine.memory import resident_bytes
from hearth.engine.pull import PullPhase, PullProgress, PullResult, pull_in_thread
from hearth.engine.registry import ModelRecord, ModelRegistry
from hearth.engine.requests import (
    Cancelled,
    ChoiceEnded,
    Failed,
    Finished,
    GenerateParams,
    GenerationJob,
    SamplingParams,
    TextPiece,
)
from hearth.engine.runtime import LoadedModel, ModelRuntime
from hearth.engine.settings import EngineSettings
from hearth.engine.tool_calls import ToolPlan, plan_tools

from hearth import __version__

log = logging.getLogger(__name__)

MAX_STOP_STRINGS = 16


@dataclass(frozen=True)
class ModelView:
    record: ModelRecord
    state: str
    reason: str
    memory_bytes: int
    template_source: str
    # Capability names: "CHAT", "COMPLETION", "EMBEDDINGS", "TOOLS".
    capabilities: tuple[str, ...] = ()
    # While loaded: seconds until the keep-alive unloads it; negative: never; 0 when not loaded.
    expires_in: float = 0.0


def describe(
    record: ModelRecord,
    state: str = "UNLOADED",
    reason: str = "",
    memory_bytes: int = 0,
    loaded: LoadedModel | None = None,
) -> ModelView:
    """A model as clients see it; a file that cannot be used is INVALID whatever ``state`` says."""
    if record.invalid_reason or record.info is None:
        return ModelView(record, "INVALID", record.invalid_reason or "unreadable", 0, "")
    source = template_source_label(
        gguf_template=record.info.chat_template,
        override=record.chat_template_override,
        architecture=record.info.architecture,
    )
    template_failed = loaded is not None and loaded.template is None
    expires_in = loaded.expires_in(time.monotonic()) if loaded is not None else 0.0
    return ModelView(
        record, state, reason, memory_bytes, source, model_capabilities(record, template_failed), expires_in
    )


@dataclass(frozen=True)
class PulledModel:
    """The last step of a pull: the DONE progress and the installed model."""

    progress: PullProgress
    model: ModelView


@dataclass(frozen=True)
class LoadedModelView:
    id: str
    memory_bytes: int
    active_requests: int
    idle_seconds: float
    slots: int
    busy_slots: int
    queued_requests: int
    # Seconds until the keep-alive unloads it; negative: never.
    expires_in: float = 0.0


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
    # Memory the loaded models may take together.
    memory_budget: int = 0


@dataclass(frozen=True)
class TokenizeResult:
    tokens: list[int]
    # Each token's text (special tokens written out), in order.
    pieces: list[str]
    # The context the model is served with.
    context_window: int


def _check_keep_alive(keep_alive: float | None) -> None:
    """A request's keep-alive is seconds (negative: until unloaded) or unset."""
    if keep_alive is not None and math.isnan(keep_alive):
        raise InvalidArgument("'keep_alive' must be a number of seconds", param="keep_alive")


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
        return describe(record, state, reason, loaded.memory_bytes if loaded else 0, loaded)

    async def list_models(self) -> list[ModelView]:
        records = await asyncio.to_thread(self.registry.scan)
        return [self._view(r) for r in records.values()]

    async def get_model(self, model_id: str) -> ModelView:
        return self._view(await asyncio.to_thread(self.registry.get, model_id))

    async def load_model(self, model_id: str, keep_alive: float | None = None) -> ModelView:
        """Loads the model now. ``keep_alive`` (seconds; negative: until
        unloaded; 0: unloaded at once) replaces the model's; None keeps it (the
        engine's default for a model that was not loaded)."""
        _check_keep_alive(keep_alive)
        record = await asyncio.to_thread(self.registry.get, model_id)
        await self.runtime.load(record, keep_alive)
        return self._view(record)

    async def unload_model(self, model_id: str) -> ModelView:
        record = await asyncio.to_thread(self.registry.get, model_id)
        await self.runtime.unload(model_id)
        return self._view(record)

    async def pull_model(self, reference: str, revision: str) -> AsyncIterator[PullProgress | PulledModel]:
        """Progress of a pull from Hugging Face, then the model it installed."""
        result: PullResult | None = None
        async for item in pull_in_thread(
            reference,
            revision,
            self.settings.models_dir,
            cache_dir=self.settings.hf_cache_dir,
            chunk_bytes=self.settings.pull_chunk_bytes,
        ):
            if isinstance(item, PullResult):
                result = item
            else:
                yield item
        assert result is not None
        if result.downloaded and self.runtime.get_loaded(result.model_id) is not None:
            # The file was replaced: the next request loads the new one.
            await self.runtime.unload(result.model_id)
        record = await asyncio.to_thread(self.registry.get, result.model_id)
        size, sha256 = result.file.size, result.file.sha256
        done = PullProgress(PullPhase.DONE, result.file.name, size, size, sha256)
        yield PulledModel(done, self._view(record))

    async def delete_model(self, model_id: str) -> None:
        await self.runtime.unload_and_run(model_id, lambda: model_store.delete_model(self.registry, model_id))

    async def copy_model(self, source: str, destination: str) -> ModelView:
        await asyncio.to_thread(model_store.copy_model, self.registry, source, destination)
        return await self.get_model(destination)

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
                    expires_in=m.expires_in(now),
                )
                for m in self.runtime.loaded()
            ],
            process_memory=resident_bytes(),
            system_memory_total=memory.total,
            system_memory_available=memory.available,
            uptime=now - self._started,
            models_dir=str(self.settings.models_dir),
            keep_alive=self.settings.keep_alive,
            memory_budget=self.runtime.memory_budget,
        )

    # Embeddings and tokens

    async def embed(self, params: EmbedParams) -> EmbedResult:
        arrived = time.monotonic()
        validate_inputs(params.inputs)
        _check_keep_alive(params.keep_alive)
        record = await asyncio.to_thread(self.registry.get, params.model)
        loaded = await self.runtime.acquire(record)
        prompt_tokens, outcome, error = 0, "FAILED", ""
        # Set when the caller goes away: the worker thread stops between decodes.
        cancel = threading.Event()
        embedder: ModelEmbedder | None = None
        measured = 0
        try:
            embedder = loaded.embedder
            if embedder is None:
                # Nothing was awaited since the check: no other call made one meanwhile.
                embedder = loaded.embedder = ModelEmbedder(
                    loaded.model,
                    model_id=record.id,
                    n_ctx=loaded.n_ctx,
                    threads=self.settings.threads or default_threads(),
                )
            measured = embedder.memory_bytes
            # One embed per model runs at a time; the others wait here rather
            # than each holding a worker thread of the shared pool.
            async with embedder.turn:
                result = await run_to_completion(
                    embedder.embed, params.inputs, truncate=params.truncate, cancel=cancel, on_cancel=cancel.set
                )
            prompt_tokens, outcome = result.prompt_tokens, "COMPLETED"
            return result
        except asyncio.CancelledError:
            outcome = "CANCELLED"
            raise
        except EngineError as exc:
            error = exc.message
            raise
        finally:
            if embedder is not None:
                # The context's buffers, measured on its first use, count
                # towards the model's memory and the budget from then on.
                grown = embedder.memory_bytes - measured
                loaded.memory_bytes += grown
                loaded.accounted_bytes += grown
            self.runtime.release(loaded, params.keep_alive)
            self._record_embedding(params, arrived, prompt_tokens, outcome, error)

    def _record_embedding(
        self, params: EmbedParams, arrived: float, prompt_tokens: int, outcome: str, error: str
    ) -> None:
        duration = time.monotonic() - arrived
        log.info(
            "embed %s model=%s outcome=%s inputs=%d prompt=%d duration=%.3fs",
            params.request_id,
            params.model,
            outcome,
            len(params.inputs),
            prompt_tokens,
            duration,
        )
        self.events.publish(
            RequestEvent(
                request_id=params.request_id,
                model=params.model,
                prompt_tokens=prompt_tokens,
                completion_tokens=0,
                time_to_first_token=0.0,
                duration=duration,
                tokens_per_second=0.0,
                outcome=outcome,
                finish_reason="",
                error=error,
            )
        )

    async def tokenize(
        self, model_id: str, *, text: str | None, messages: list[dict] | None, add_special: bool = True
    ) -> TokenizeResult:
        """Tokens of ``text`` (BOS added when ``add_special``, special tokens
        parsed), or of ``messages`` rendered with the chat template exactly as
        generation renders them."""
        if (text is None) == (messages is None):
            raise InvalidArgument("Give exactly one of 'text' and 'messages'", param="text")
        if messages is not None and not messages:
            raise InvalidArgument("'messages' must not be empty", param="messages")
        record = await asyncio.to_thread(self.registry.get, model_id)
        loaded = await self.runtime.acquire(record)
        try:
            return await run_to_completion(self._tokenize_blocking, loaded, text, messages, add_special)
        finally:
            self.runtime.release(loaded)

    def _tokenize_blocking(
        self, loaded: LoadedModel, text: str | None, messages: list[dict] | None, add_special: bool
    ) -> TokenizeResult:
        if messages is not None:
            chat = GenerateParams(
                model=loaded.record.id,
                messages=messages,
                prompt=None,
                max_tokens=None,
                stop=(),
                sampling=SamplingParams(),
                request_id="",
            )
            tokens = self._prompt_tokens(loaded, chat)
        else:
            assert text is not None
            # As in _prompt_tokens: a text this long cannot fit, and tokenizing it could take long.
            if len(text.encode("utf-8", "replace")) > loaded.n_ctx * MAX_BYTES_PER_TOKEN:
                raise ContextLengthExceeded(
                    f"This model's maximum context length is {loaded.n_ctx} tokens; the text is far longer.",
                    param="text",
                    model=loaded.record.id,
                )
            tokens = loaded.model.tokenize(text, add_special=add_special)
        pieces = [loaded.model.token_piece(t, special=True).decode("utf-8", "replace") for t in tokens]
        return TokenizeResult(tokens=tokens, pieces=pieces, context_window=loaded.n_ctx)

    async def detokenize(self, model_id: str, tokens: list[int]) -> str:
        record = await asyncio.to_thread(self.registry.get, model_id)
        loaded = await self.runtime.acquire(record)
        try:
            return await run_to_completion(self._detokenize_blocking, loaded, tokens)
        finally:
            self.runtime.release(loaded)

    @staticmethod
    def _detokenize_blocking(loaded: LoadedModel, tokens: list[int]) -> str:
        n_vocab = loaded.model.n_vocab()
        outside = [t for t in tokens if not 0 <= t < n_vocab]
        if outside:
            raise InvalidArgument(
                f"'tokens' holds {outside[0]}, outside this model's vocabulary (0-{n_vocab - 1})", param="tokens"
            )
        return loaded.model.detokenize(tokens)

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
        _check_keep_alive(params.keep_alive)
        if params.tools and params.messages is None:
            raise InvalidArgument("'tools' need 'messages'; a raw prompt cannot use them", param="tools")
        if params.tools and params.tool_choice != "none" and params.response_format != "text":
            raise InvalidArgument(
                "'response_format' cannot be combined with 'tools' (unless tool_choice is 'none')",
                param="response_format",
            )
        if record.invalid_reason:
            raise ModelInvalid(
                f"The model '{record.id}' cannot be used: {record.invalid_reason}", param="model", model=record.id
            )

    def _output_plan(self, loaded: LoadedModel, params: GenerateParams) -> tuple[ToolPlan, SamplingParams]:
        """What the request's tools, response_format and logit_bias ask of the
        prompt and the sampler: the tool plan, and the sampling parameters with
        its grammar. Blocking (schema conversion, grammar parsing)."""
        n_vocab = loaded.model.n_vocab()
        for token, _ in params.sampling.logit_bias:
            if not 0 <= token < n_vocab:
                raise InvalidArgument(
                    f"'logit_bias' names token {token}, outside this model's vocabulary (0-{n_vocab - 1})",
                    param="logit_bias",
                )
        plan = ToolPlan()
        if params.tools:
            template = loaded.template
            plan = plan_tools(params, template.family if template else None, template.source if template else None)
        grammar, triggers, param = plan.grammar, plan.grammar_triggers, "tools"
        if params.response_format == "json_object":
            grammar, triggers, param = json_object_grammar(), (), "response_format"
        elif params.response_format == "json_schema":
            grammar, triggers, param = json_schema_grammar(params.json_schema or {}), (), "response_format.json_schema"
        if grammar is not None and not grammar_parses(loaded.model, grammar):
            what = "the tools' argument schemas" if param == "tools" else "'response_format'"
            raise InvalidArgument(f"No usable grammar could be built from {what}", param=param)
        return plan, replace(params.sampling, grammar=grammar, grammar_triggers=tuple(triggers))

    def _prompt_tokens(
        self, loaded: LoadedModel, params: GenerateParams, tools: list[dict] | None = None
    ) -> list[int]:
        if params.messages is not None:
            if loaded.template is None:
                raise TemplateError(loaded.template_error or "the model has no usable chat template", param="messages")
            text = loaded.template.render(normalize_messages(params.messages), tools=tools)
            bos = loaded.template.bos_token
        else:
            text, bos = params.prompt or "", ""
        # A text this long cannot fit (see MAX_BYTES_PER_TOKEN): refuse it before tokenizing.
        if len(text.encode("utf-8", "replace")) > loaded.n_ctx * MAX_BYTES_PER_TOKEN:
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
            plan, sampling = await run_to_completion(self._output_plan, loaded, params)
            tokens = await run_to_completion(self._prompt_tokens, loaded, params, plan.template_tools)
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
                sampling=sampling,
                n=params.n,
                sink=lambda event: loop.call_soon_threadsafe(events.put_nowait, event),
                top_logprobs=params.top_logprobs,
                special_tokens_as_text=plan.extracts,
            )
            reader = ToolCallReader(plan.new_extractor) if plan.extracts else None
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
                for out in reader.read(event) if reader is not None else (event,):
                    if isinstance(out, Finished):
                        outcome, finish = "COMPLETED", out.finish_reason.value
                        completion_tokens = out.completion_tokens
                    yield out
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
            self.runtime.release(loaded, params.keep_alive)
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
