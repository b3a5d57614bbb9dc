"""The engine's domain API, what the gRPC servicer delegates to: a thin
facade that builds the parts (registry, runtime, events) and hands each call
to its use case in service/."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from functools import partial

from hearth.engine.blocking import stop_task
from hearth.engine.domain import (
    ChoiceEnded,
    EmbedParams,
    EmbedResult,
    Finished,
    GenerateParams,
    TextPiece,
    TokenizeParams,
)
from hearth.engine.events import EventBus
from hearth.engine.llama.backend import BackendInfo, default_threads
from hearth.engine.log_stream import LOG_HISTORY_SIZE, LogForwarder
from hearth.engine.models.pull import PullProgress
from hearth.engine.models.registry import ModelRegistry
from hearth.engine.runtime.loaded import load_model
from hearth.engine.runtime.memory import default_memory_budget, estimate_for, fitting_context
from hearth.engine.runtime.runtime import ModelRuntime
from hearth.engine.service.embedding import EmbeddingService
from hearth.engine.service.generation import GenerationService
from hearth.engine.service.models import ModelService
from hearth.engine.service.status import engine_status
from hearth.engine.service.tokens import TokenService
from hearth.engine.service.views import (
    ModelView,
    PulledModel,
    StatusView,
    TokenizeResult,
)
from hearth.settings.engine import EngineSettings

log = logging.getLogger(__name__)

# Seconds between passes that unload models idle past their keep-alive.
REAP_SECONDS = 1.0


def default_runtime(settings: EngineSettings, gpu_offload: bool, events: EventBus) -> ModelRuntime:
    """The runtime with llama.cpp's loader and the engine's memory estimate."""
    threads = settings.threads or default_threads()
    return ModelRuntime(
        settings,
        events,
        load=partial(load_model, settings=settings, gpu_offload=gpu_offload, threads=threads),
        estimate=partial(estimate_for, settings=settings),
        memory_budget=settings.memory_budget or default_memory_budget(gpu_offload),
    )


def model_registry(settings: EngineSettings, gpu_offload: bool) -> ModelRegistry:
    """The models of the folder and the config file, each with the context it is served with."""
    budget = settings.memory_budget or default_memory_budget(gpu_offload)
    fit = partial(fitting_context, budget=budget, batch_size=settings.batch_size, streams=settings.kv_streams)
    return ModelRegistry(settings.models_dir, settings.config_file, settings.context_size, fit)


class EngineCore:
    def __init__(self, settings: EngineSettings, backend: BackendInfo, runtime: ModelRuntime | None = None):
        self.settings = settings
        self.backend = backend
        self.gpu_offload = settings.use_gpu and backend.supports_gpu_offload
        self.events = EventBus()
        self.logs = EventBus(history_size=LOG_HISTORY_SIZE)
        self._log_forwarder = LogForwarder(self.logs)
        self.registry = model_registry(settings, self.gpu_offload)
        self.runtime = runtime or default_runtime(settings, self.gpu_offload, self.events)
        self.models = ModelService(settings, self.registry, self.runtime)
        self._generation = GenerationService(settings, self.models, self.runtime, self.events)
        self._embedding = EmbeddingService(settings, self.models, self.runtime, self.events)
        self._tokens = TokenService(self.models, self.runtime)
        self._started = time.monotonic()
        self._reaper: asyncio.Task | None = None

    async def start(self) -> None:
        self.events.bind(asyncio.get_running_loop())
        self.logs.bind(asyncio.get_running_loop())
        logging.getLogger().addHandler(self._log_forwarder)
        await self.models.start()
        self._reaper = asyncio.create_task(self._reap_idle_models())

    async def stop(self) -> None:
        await stop_task(self._reaper)
        await self.models.stop()
        await self.runtime.unload_all()
        logging.getLogger().removeHandler(self._log_forwarder)
        self.logs.close()

    async def _reap_idle_models(self) -> None:
        while True:
            await asyncio.sleep(REAP_SECONDS)
            try:
                await self.runtime.unload_idle()
            except Exception:
                log.exception("unloading idle models failed")

    # Models

    async def list_models(self) -> list[ModelView]:
        return await self.models.list_models()

    async def get_model(self, model_id: str) -> ModelView:
        return await self.models.get_model(model_id)

    async def load_model(self, model_id: str, keep_alive: float | None = None) -> ModelView:
        return await self.models.load_model(model_id, keep_alive)

    async def unload_model(self, model_id: str) -> ModelView:
        return await self.models.unload_model(model_id)

    def pull_model(self, reference: str, revision: str) -> AsyncIterator[PullProgress | PulledModel]:
        return self.models.pull_model(reference, revision)

    async def delete_model(self, model_id: str) -> None:
        await self.models.delete_model(model_id)

    async def update_model_settings(self, model_id: str, settings: dict) -> ModelView:
        return await self.models.update_model_settings(model_id, settings)

    async def copy_model(self, source: str, destination: str) -> ModelView:
        return await self.models.copy_model(source, destination)

    def status(self) -> StatusView:
        return engine_status(self.settings, self.backend, self.gpu_offload, self.runtime, self._started)

    # Generation, embeddings and tokens

    def generate(self, params: GenerateParams) -> AsyncIterator[TextPiece | ChoiceEnded | Finished]:
        return self._generation.generate(params)

    async def embed(self, params: EmbedParams) -> EmbedResult:
        return await self._embedding.embed(params)

    async def tokenize(self, params: TokenizeParams) -> TokenizeResult:
        return await self._tokens.tokenize(params)

    async def detokenize(self, model_id: str, tokens: list[int]) -> str:
        return await self._tokens.detokenize(model_id, tokens)
