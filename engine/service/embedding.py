"""An embedding request's flow: validated, its model acquired, its inputs
embedded on a worker thread (one embed per model at a time), recorded."""

import threading
import time
from dataclasses import dataclass

from hearth.engine.blocking import run_to_completion
from hearth.engine.domain import EmbedParams, EmbedResult
from hearth.engine.events import EventBus
from hearth.engine.generation.validation import validate_embed
from hearth.engine.llama.backend import default_threads
from hearth.engine.runtime.embeddings import ModelEmbedder
from hearth.engine.runtime.runtime import ModelRuntime
from hearth.engine.service.models import ModelService
from hearth.engine.service.telemetry import RequestRecord
from hearth.settings.engine import EngineSettings


@dataclass
class EmbeddingService:
    _settings: EngineSettings
    _models: ModelService
    _runtime: ModelRuntime
    _events: EventBus

    async def embed(self, params: EmbedParams) -> EmbedResult:
        stats = RequestRecord("embed", params.request_id, params.model, time.monotonic(), inputs=len(params.inputs))
        validate_embed(params)
        record = await self._models.record(params.model)
        loaded = await self._runtime.acquire(record)
        # Set when the caller goes away: the worker thread stops between decodes.
        cancel = threading.Event()
        embedder: ModelEmbedder | None = None
        measured = 0
        try:
            with stats.recorded(self._events):
                embedder = loaded.embedder
                if embedder is None:
                    # Nothing was awaited since the check: no other call made one meanwhile.
                    embedder = loaded.embedder = ModelEmbedder(
                        loaded.model,
                        model_id=record.id,
                        n_ctx=loaded.n_ctx,
                        threads=self._settings.threads or default_threads(),
                    )
                measured = embedder.memory_bytes
                # One embed per model runs at a time; the others wait here rather
                # than each holding a worker thread of the shared pool.
                async with embedder.turn:
                    result = await run_to_completion(
                        embedder.embed, params.inputs, truncate=params.truncate, cancel=cancel, on_cancel=cancel.set
                    )
                stats.prompt_tokens, stats.outcome = result.prompt_tokens, "COMPLETED"
                return result
        finally:
            if embedder is not None:
                # The context's buffers, measured on its first use, count
                # towards the model's memory and the budget from then on.
                grown = embedder.memory_bytes - measured
                loaded.memory_bytes += grown
                loaded.accounted_bytes += grown
            self._runtime.release(loaded, params.keep_alive)
