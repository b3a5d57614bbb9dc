"""A generation request's flow: its model looked up, the request validated,
the model acquired, the request prepared in one blocking call, queued with
the model's scheduler, and its events passed on (tool calls read out of the
text) until it ends; then recorded."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hearth.engine.blocking import run_to_completion
from hearth.engine.domain import (
    Cancelled,
    ChoiceEnded,
    Failed,
    Finished,
    GenerateParams,
    GenerationJob,
    TextPiece,
)
from hearth.engine.errors import EngineError
from hearth.engine.events import EventBus
from hearth.engine.generation.defaults import with_model_defaults
from hearth.engine.generation.output import ToolCallReader
from hearth.engine.generation.prepare import Prepared, prepare
from hearth.engine.generation.validation import validate_generate
from hearth.engine.reasoning.formats import HARMONY
from hearth.engine.reasoning.reader import HarmonyReader, ReasoningReader
from hearth.engine.runtime.memory import slots_for
from hearth.engine.runtime.runtime import ModelRuntime
from hearth.engine.service.models import ModelService
from hearth.engine.service.telemetry import RequestRecord
from hearth.settings.engine import EngineSettings


def _read(readers: list, event) -> list:
    """``event`` through each reader in turn (reasoning apart first, then tool calls out of the answer)."""
    events = [event]
    for reader in readers:
        events = [out for each in events for out in reader.read(each)]
    return events


def _readers(reasoning_format: str, prepared: Prepared) -> list:
    """What reads the output's text: a harmony model's channels and calls
    together; otherwise the reasoning apart, then tool calls out of the answer."""
    plan = prepared.plan
    if prepared.reasoning is not None and reasoning_format == HARMONY:
        return [HarmonyReader(prepared.reasoning, plan.tool_names, plan.parallel)]
    readers: list = []
    if prepared.reasoning is not None:
        readers.append(ReasoningReader(prepared.reasoning))
    if plan.extracts:
        readers.append(ToolCallReader(plan.new_extractor))
    return readers


@dataclass
class GenerationService:
    _settings: EngineSettings
    _models: ModelService
    _runtime: ModelRuntime
    _events: EventBus

    async def generate(self, params: GenerateParams) -> AsyncIterator[TextPiece | ChoiceEnded | Finished]:
        stats = RequestRecord("request", params.request_id, params.model, time.monotonic())
        record = await self._models.record(params.model)
        params = with_model_defaults(params, record)
        valid = validate_generate(params, record, max_sequences=slots_for(record, self._settings))
        loaded = await self._runtime.acquire(record)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job: GenerationJob | None = None
        try:
            with stats.recorded(self._events):
                prepared = await run_to_completion(prepare, loaded, valid)
                stats.prompt_tokens = len(prepared.tokens)
                job = GenerationJob(
                    request_id=params.request_id,
                    prompt_tokens=prepared.tokens,
                    max_new_tokens=prepared.max_new_tokens,
                    stop=params.stop,
                    sampling=prepared.sampling,
                    n=params.n,
                    sink=lambda event: loop.call_soon_threadsafe(events.put_nowait, event),
                    top_logprobs=params.top_logprobs,
                    # Tool-call and reasoning markers may be control tokens: they are read out of the text.
                    special_tokens_as_text=prepared.plan.extracts or prepared.reasoning is not None,
                    samplers=prepared.samplers,
                    reasoning=prepared.reasoning,
                )
                readers = _readers(loaded.reasoning.name, prepared)
                try:
                    loaded.scheduler.submit(job)
                except BaseException:
                    job.close_samplers()
                    raise
                while True:
                    event = await events.get()
                    if isinstance(event, Failed):
                        raise EngineError("generation failed") from event.error
                    if isinstance(event, Cancelled):
                        stats.outcome = "CANCELLED"
                        return
                    if isinstance(event, TextPiece) and stats.first_token_at is None:
                        stats.first_token_at = time.monotonic()
                    for out in _read(readers, event):
                        if isinstance(out, Finished):
                            stats.outcome, stats.finish_reason = "COMPLETED", out.finish_reason.value
                            stats.completion_tokens = out.completion_tokens
                        yield out
                    if isinstance(event, Finished):
                        return
        finally:
            if job is not None:
                job.cancel.set()
            self._runtime.release(loaded, params.keep_alive)
