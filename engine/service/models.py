"""Model management: listing, looking one up, loading and unloading, pulls,
deletes and copies; and the models folder watched for changes."""

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

from hearth.engine.blocking import stop_task
from hearth.engine.generation.validation import check_keep_alive
from hearth.engine.models import store
from hearth.engine.models.pull import (
    PullPhase,
    PullProgress,
    PullResult,
    pull_in_thread,
)
from hearth.engine.models.registry import ModelRecord, ModelRegistry
from hearth.engine.runtime.runtime import ModelRuntime
from hearth.engine.service.views import ModelView, PulledModel, describe
from hearth.settings.engine import EngineSettings

log = logging.getLogger(__name__)

# Seconds between checks of the models folder and the config file for changes.
WATCH_SECONDS = 1.0


class ModelService:
    def __init__(
        self, settings: EngineSettings, registry: ModelRegistry, runtime: ModelRuntime, watch_seconds: float = WATCH_SECONDS
    ):
        self._settings = settings
        self.watch_seconds = watch_seconds
        self.registry = registry
        self.runtime = runtime
        self._watcher: asyncio.Task | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.registry.refresh)
        self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        await stop_task(self._watcher)

    async def _watch(self) -> None:
        """Keeps the registry's listing current, off the requests' path."""
        while True:
            await asyncio.sleep(self.watch_seconds)
            try:
                await asyncio.to_thread(self.registry.refresh)
            except Exception:
                log.exception("checking the models folder failed")

    async def record(self, model_id: str) -> ModelRecord:
        """The model's record. A loaded model's comes from the listing the
        watcher keeps current, with no I/O; any other's checks its file (and
        lists the folder again only if something changed) on a worker thread."""
        if self.runtime.get_loaded(model_id) is not None:
            record = self.registry.cached(model_id)
            if record is not None:
                return record
        return await asyncio.to_thread(self.registry.get, model_id)

    def view(self, record: ModelRecord) -> ModelView:
        loaded = self.runtime.get_loaded(record.id)
        state, reason = self.runtime.state(record.id)
        view = describe(record, state, reason, loaded.memory_bytes if loaded else 0, loaded)
        return replace(view, estimated_bytes=self.runtime.estimate(record)) if view.state != "INVALID" else view

    async def list_models(self) -> list[ModelView]:
        records = await asyncio.to_thread(self.registry.scan)
        return [self.view(r) for r in records.values()]

    async def get_model(self, model_id: str) -> ModelView:
        return self.view(await self.record(model_id))

    async def load_model(self, model_id: str, keep_alive: float | None = None) -> ModelView:
        """Loads the model now. ``keep_alive`` (seconds; negative: until
        unloaded; 0: unloaded at once) replaces the model's; None keeps it (the
        engine's default for a model that was not loaded)."""
        check_keep_alive(keep_alive)
        record = await self.record(model_id)
        await self.runtime.load(record, keep_alive)
        return self.view(record)

    async def unload_model(self, model_id: str) -> ModelView:
        record = await self.record(model_id)
        await self.runtime.unload(model_id)
        return self.view(record)

    async def pull_model(self, reference: str, revision: str) -> AsyncIterator[PullProgress | PulledModel]:
        """Progress of a pull from Hugging Face, then the model it installed."""
        result: PullResult | None = None
        async for item in pull_in_thread(
            reference,
            revision,
            self._settings.models_dir,
            cache_dir=self._settings.hf_cache_dir,
            chunk_bytes=self._settings.pull_chunk_bytes,
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
        yield PulledModel(done, self.view(record))

    async def delete_model(self, model_id: str) -> None:
        def delete() -> None:
            store.delete_model(self.registry, model_id)
            self.registry.refresh()

        await self.runtime.unload_and_run(model_id, delete)

    async def update_model_settings(self, model_id: str, settings: dict) -> ModelView:
        """Replaces the model's own settings in its config entry; a loaded model keeps its old ones until reloaded."""

        def update() -> ModelRecord:
            store.update_model_settings(self.registry, model_id, settings)
            return self.registry.get(model_id)

        return self.view(await asyncio.to_thread(update))

    async def copy_model(self, source: str, destination: str) -> ModelView:
        def copy() -> ModelRecord:
            store.copy_model(self.registry, source, destination)
            return self.registry.get(destination)

        return self.view(await asyncio.to_thread(copy))
