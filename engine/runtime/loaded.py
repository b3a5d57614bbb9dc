"""A loaded model (weights, chat template, scheduler and the bookkeeping the
runtime keeps on it), and the default way to load one."""

import asyncio
import time
from dataclasses import dataclass, field

from hearth.engine.errors import TemplateError
from hearth.engine.llama.context import LlamaContext
from hearth.engine.llama.model import LlamaModel
from hearth.engine.models.gguf_info import kv_cache_type_problem
from hearth.engine.models.registry import ModelRecord
from hearth.engine.reasoning.formats import ReasoningFormat, detect
from hearth.engine.runtime.embeddings import ModelEmbedder
from hearth.engine.runtime.memory import kv_cache_type_for, resident_bytes, slots_for
from hearth.engine.runtime.scheduler import BatchScheduler
from hearth.engine.templates.chat_template import ChatTemplate, choose_template
from hearth.settings.engine import EngineSettings


@dataclass
class LoadedModel:
    record: ModelRecord
    model: LlamaModel
    template: ChatTemplate | None
    template_error: str | None
    # Measured: weights plus what the process grew by while making the context.
    memory_bytes: int
    scheduler: BatchScheduler
    # What the memory budget counts for it: the estimate made before loading,
    # so that the same models always make the same decisions.
    accounted_bytes: int = 0
    # Seconds it stays loaded once idle; negative: until unloaded.
    keep_alive: float = 0.0
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # Its embedding context, made on the first Embed (service.embedding).
    embedder: ModelEmbedder | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def reasoning(self) -> ReasoningFormat:
        """How the model marks its reasoning (its template's, or its config entry's)."""
        return detect(self.template.source if self.template else None, self.record.reasoning_override)

    @property
    def n_ctx(self) -> int:
        """Most context of one sequence (the slots share a pool this large): prompt plus output must fit in it."""
        return min(self.record.context_window, self.scheduler.sequence_cells)

    @property
    def trained_n_ctx(self) -> int:
        info = self.record.info
        return info.trained_context_length if info is not None else 0

    def expires_in(self, now: float) -> float:
        """Seconds until the keep-alive unloads it: negative for never, the
        whole keep-alive while it serves requests."""
        if self.keep_alive < 0:
            return -1.0
        if self.active:
            return self.keep_alive
        return max(0.0, self.keep_alive - (now - self.last_used))

    def expired(self, now: float) -> bool:
        return self.active == 0 and self.keep_alive >= 0 and now - self.last_used >= self.keep_alive

    def close(self) -> None:
        self.scheduler.close()  # frees the context too
        if self.embedder is not None:
            self.embedder.close()
        self.model.close()


def load_model(record: ModelRecord, settings: EngineSettings, *, gpu_offload: bool, threads: int) -> LoadedModel:
    """Loads a model and starts its scheduler; blocking (what ModelRuntime runs on a worker thread)."""
    assert record.info is not None
    kv_cache_type = kv_cache_type_for(record, settings)
    problem = kv_cache_type_problem(record.info, kv_cache_type)
    if problem is None and kv_cache_type != "f16" and settings.flash_attention == "off":
        problem = f"a {kv_cache_type} KV cache needs flash attention, which LLM_FLASH_ATTENTION turns off"
    if problem:
        raise ValueError(problem)  # a setting the model cannot be loaded with: the load fails, saying why
    model = LlamaModel(record.path, gpu_offload=gpu_offload, gpu_layers=record.load.gpu_layers)
    # llama.cpp does not report its buffers: the context's KV cache and
    # compute buffers are what the process grew by while creating it.
    rss_before_context = resident_bytes()
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
                n_ctx=record.context_window,
                shared=settings.kv_pool == "shared",
                n_seq=slots_for(record, settings),
                kv_cache_type=kv_cache_type,
                flash_attention=settings.flash_attention,
                n_batch=settings.batch_size,
                threads=threads,
            ),
            stop_token_ids,
            settings.max_queue,
        )
    except BaseException:
        model.close()
        raise
    return LoadedModel(
        record=record,
        model=model,
        template=template,
        template_error=template_error,
        memory_bytes=model.size_bytes() + max(0, resident_bytes() - rss_before_context),
        scheduler=scheduler,
    )
