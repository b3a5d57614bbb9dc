"""Loaded models: lazy, single-flight loading under a memory budget (least
recently used idle models make room), explicit unload, and unloading once a
model's keep-alive has passed."""

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from hearth.engine.errors import ModelBusy, ModelInvalid, ModelLoadFailed
from hearth.engine.events import EventBus, ModelStateEvent
from hearth.engine.models.registry import ModelRecord
from hearth.engine.runtime.loaded import LoadedModel
from hearth.settings.engine import EngineSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class ModelRuntime:
    """The loaded models. ``load`` loads one (blocking, on a worker thread) and
    ``estimate`` says what the budget counts for one before it loads; both are
    parameters so that the budget's rules can be exercised without model files."""

    def __init__(
        self,
        settings: EngineSettings,
        events: EventBus,
        *,
        load: Callable[[ModelRecord], LoadedModel],
        estimate: Callable[[ModelRecord], int],
        memory_budget: int,
    ):
        self._settings = settings
        self._events = events
        self._load = load
        self._estimate = estimate
        self.memory_budget = memory_budget
        self._loaded: dict[str, LoadedModel] = {}
        # Why the last load of a model failed, until it loads.
        self._failures: dict[str, str] = {}
        self._loading: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        # Budget decisions are made one at a time, so two loads of different
        # models never both count on the same free memory.
        self._budget_lock = asyncio.Lock()
        # Memory promised to loads in progress, by reservation number.
        self._reserved: dict[int, int] = {}
        self._reservation_numbers = itertools.count()
        # Models out of the table whose memory is not freed yet (finishing
        # their requests, or closing).
        self._retiring: list[LoadedModel] = []
        # Set whenever memory may have become available: a model fell idle,
        # was freed, or a load gave its reservation back.
        self._memory_changed = asyncio.Event()
        self._expiries: set[asyncio.Task] = set()
        # Loads whose caller went away, finishing in their thread to be freed.
        self._abandoned: set[asyncio.Task] = set()
        log.info("memory budget for loaded models: %.0f MiB", self.memory_budget / 2**20)

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

    def estimate(self, record: ModelRecord) -> int:
        """Bytes the budget counts for this model once loaded."""
        return self._estimate(record)

    def _lock(self, model_id: str) -> asyncio.Lock:
        return self._locks.setdefault(model_id, asyncio.Lock())

    async def _current_locked(self, record: ModelRecord) -> LoadedModel:
        loaded = self._loaded.get(record.id)
        if loaded is not None and loaded.record.path != record.path:
            # The id now names another file (the config file changed).
            await self._unload_locked(record.id)
            loaded = None
        return loaded or await self._load_locked(record)

    async def acquire(self, record: ModelRecord) -> LoadedModel:
        """The loaded model, loading it first if needed, counted as in use until release()."""
        async with self._lock(record.id):
            loaded = await self._current_locked(record)
            loaded.active += 1
            loaded.idle.clear()
            loaded.last_used = time.monotonic()
            return loaded

    def release(self, loaded: LoadedModel, keep_alive: float | None = None) -> None:
        """Ends a use of the model. ``keep_alive`` (seconds; negative: until
        unloaded) replaces the model's keep-alive; None leaves it as it is."""
        loaded.active -= 1
        loaded.last_used = time.monotonic()
        if keep_alive is not None:
            loaded.keep_alive = keep_alive
        if loaded.active == 0:
            loaded.idle.set()
            self._memory_changed.set()
            if loaded.keep_alive == 0:
                self._expire_soon(loaded)

    async def load(self, record: ModelRecord, keep_alive: float | None = None) -> LoadedModel:
        async with self._lock(record.id):
            loaded = await self._current_locked(record)
            loaded.last_used = time.monotonic()
            if keep_alive is not None:
                loaded.keep_alive = keep_alive
            if loaded.active == 0 and loaded.keep_alive == 0:
                self._expire_soon(loaded)
            return loaded

    async def unload(self, model_id: str) -> bool:
        async with self._lock(model_id):
            self._failures.pop(model_id, None)
            return await self._unload_locked(model_id)

    async def unload_and_run(self, model_id: str, fn: Callable[[], T]) -> T:
        """Unloads the model and runs ``fn`` on a worker thread under the model's
        lock, so that no request loads it again in between (deleting its file)."""
        async with self._lock(model_id):
            self._failures.pop(model_id, None)
            await self._unload_locked(model_id)
            return await asyncio.to_thread(fn)

    async def unload_all(self) -> None:
        for task in list(self._expiries):
            task.cancel()
        for model_id in list(self._loaded):
            await self.unload(model_id)

    async def unload_idle(self) -> None:
        """Unload every model idle for longer than its keep-alive."""
        for loaded in list(self._loaded.values()):
            if loaded.expired(time.monotonic()):
                await self._unload_if_expired(loaded)

    def _expire_soon(self, loaded: LoadedModel) -> None:
        """Unloads a model whose keep-alive is 0 now that it is idle, rather
        than at the reaper's next pass."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the event loop: the reaper's next pass unloads it
        task = loop.create_task(self._unload_if_expired(loaded))
        self._expiries.add(task)
        task.add_done_callback(self._expiries.discard)

    async def _unload_if_expired(self, loaded: LoadedModel) -> None:
        async with self._lock(loaded.record.id):
            # Recheck: a request may have arrived while we waited.
            now = time.monotonic()
            if loaded.expired(now) and self._loaded.get(loaded.record.id) is loaded:
                log.info(
                    "unloading %s after %.0fs idle (keep-alive %gs)",
                    loaded.record.id,
                    now - loaded.last_used,
                    loaded.keep_alive,
                )
                await self._unload_locked(loaded.record.id)

    # Memory budget

    def _memory_in_use(self) -> tuple[int, int]:
        """(accounted bytes, models) of everything holding or about to hold memory."""
        holders = [*self._loaded.values(), *self._retiring]
        used = sum(m.accounted_bytes for m in holders) + sum(self._reserved.values())
        return used, len(holders) + len(self._reserved)

    def _fits(self, needed: int) -> bool:
        used, count = self._memory_in_use()
        if count == 0:
            # Nothing else to free: a model larger than the budget still loads.
            return True
        limit = self._settings.max_loaded_models
        if limit and count >= limit:
            return False
        return used + needed <= self.memory_budget

    def _least_recently_used_idle(self) -> LoadedModel | None:
        idle = [m for m in self._loaded.values() if m.active == 0]
        return min(idle, key=lambda m: m.last_used, default=None)

    async def _make_room(self, record: ModelRecord, needed: int) -> int:
        """Unloads least recently used idle models until ``needed`` bytes fit the
        budget, waiting (up to load_wait) for busy ones to finish when only they
        stand in the way; then reserves the bytes for this load and returns the
        reservation's number."""
        deadline = time.monotonic() + self._settings.load_wait
        waited = False
        async with self._budget_lock:
            while not self._fits(needed):
                victim = self._least_recently_used_idle()
                if victim is not None:
                    await self._evict(victim, record.id)
                    continue
                remaining = deadline - time.monotonic()
                if not waited:
                    waited = True
                    log.info("loading %s waits for busy models to free memory", record.id)
                if remaining <= 0:
                    used, count = self._memory_in_use()
                    raise ModelBusy(
                        f"Loading the model '{record.id}' needs {needed / 2**20:.0f} MiB; the {count} models in "
                        f"memory hold {used / 2**20:.0f} MiB of the {self.memory_budget / 2**20:.0f} MiB budget and "
                        f"stayed busy (serving requests or loading) for {self._settings.load_wait:g}s. "
                        "Try again later.",
                        model=record.id,
                    )
                self._memory_changed.clear()
                try:
                    await asyncio.wait_for(self._memory_changed.wait(), remaining)
                except TimeoutError:
                    pass
            if needed > self.memory_budget:
                log.warning(
                    "the model %s needs about %.0f MiB, more than the whole memory budget (%.0f MiB); loading it anyway",
                    record.id,
                    needed / 2**20,
                    self.memory_budget / 2**20,
                )
            reservation = next(self._reservation_numbers)
            self._reserved[reservation] = needed
            return reservation

    def _release_reservation(self, reservation: int) -> None:
        self._reserved.pop(reservation, None)
        self._memory_changed.set()

    def _free_when_loaded(self, model_id: str, loading: asyncio.Task, reservation: int) -> None:
        """llama.cpp cannot be interrupted mid-load: a load nobody waits for any
        more finishes in its thread, and the model is freed then, its memory
        counted until it is."""

        async def free() -> None:
            try:
                loaded = await loading
                await asyncio.to_thread(loaded.close)
                log.info("freed %s, whose load was cancelled", model_id)
            except Exception as exc:
                log.info("the cancelled load of %s failed: %s", model_id, type(exc).__name__)
            finally:
                self._release_reservation(reservation)

        task = asyncio.get_running_loop().create_task(free())
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def _evict(self, victim: LoadedModel, for_model: str) -> None:
        model_id = victim.record.id
        del self._loaded[model_id]
        log.info(
            "unloading %s (idle %.0fs, %.0f MiB) to make room for %s",
            model_id,
            time.monotonic() - victim.last_used,
            victim.accounted_bytes / 2**20,
            for_model,
        )
        await self._retire(victim, f"unloaded to make room for '{for_model}'")

    # Loading and unloading

    async def _load_locked(self, record: ModelRecord) -> LoadedModel:
        if record.invalid_reason or record.info is None:
            raise ModelInvalid(
                f"The model '{record.id}' cannot be used: {record.invalid_reason}", param="model", model=record.id
            )
        needed = self.estimate(record)
        reservation = await self._make_room(record, needed)
        self._loading.add(record.id)
        self._events.publish(ModelStateEvent(record.id, "LOADING"))
        started = time.monotonic()
        loading = asyncio.get_running_loop().create_task(asyncio.to_thread(self._load, record))
        try:
            # From here to the caller's use of the model nothing yields, so no
            # other load can take it for an idle model and evict it first.
            loaded = await asyncio.shield(loading)
        except asyncio.CancelledError:
            self._loading.discard(record.id)
            self._events.publish(ModelStateEvent(record.id, "UNLOADED", "the load was cancelled"))
            self._free_when_loaded(record.id, loading, reservation)
            raise
        except Exception as exc:
            self._loading.discard(record.id)
            self._release_reservation(reservation)
            reason = f"{type(exc).__name__}: {exc}"[:300]
            log.error("loading %s failed: %s", record.id, reason)
            self._failures[record.id] = reason
            self._events.publish(ModelStateEvent(record.id, "FAILED", reason))
            raise ModelLoadFailed(
                f"The model '{record.id}' failed to load: {reason}", model=record.id
            ) from exc
        self._loading.discard(record.id)
        self._release_reservation(reservation)
        loaded.accounted_bytes = needed
        keep_alive = record.load.keep_alive
        loaded.keep_alive = self._settings.keep_alive if keep_alive is None else keep_alive
        self._failures.pop(record.id, None)
        self._loaded[record.id] = loaded
        loaded.idle.set()
        log.info(
            "loaded %s in %.2fs (context %d, %.0f MiB measured, %.0f MiB accounted)",
            record.id,
            time.monotonic() - started,
            loaded.n_ctx,
            loaded.memory_bytes / 2**20,
            needed / 2**20,
        )
        self._events.publish(ModelStateEvent(record.id, "READY"))
        return loaded

    async def _unload_locked(self, model_id: str) -> bool:
        loaded = self._loaded.pop(model_id, None)
        if loaded is None:
            return False
        await self._retire(loaded)
        return True

    async def _retire(self, loaded: LoadedModel, reason: str = "") -> None:
        """Frees a model taken out of the table once its requests have finished.
        The freeing runs to the end even if the caller is cancelled: a model
        out of the table would otherwise never be freed."""
        self._retiring.append(loaded)

        async def free() -> None:
            try:
                # Requests in flight finish first.
                await loaded.idle.wait()
                await asyncio.to_thread(loaded.close)
            finally:
                self._retiring.remove(loaded)
                self._memory_changed.set()
            log.info("unloaded %s", loaded.record.id)
            self._events.publish(ModelStateEvent(loaded.record.id, "UNLOADED", reason))

        await asyncio.shield(asyncio.get_running_loop().create_task(free()))
