"""The runtime's memory-budget and keep-alive rules, with the loader and the
estimate injected: no model file, no llama.cpp. What is decided here is what
tests/integration/test_memory_budget.py sees through a real engine."""

import asyncio
import threading
import time
from pathlib import Path

import pytest

from hearth.engine.errors import ModelBusy, ModelLoadFailed
from hearth.engine.events import EventBus, ModelStateEvent
from hearth.engine.models.registry import ModelRecord
from hearth.engine.runtime.loaded import LoadedModel
from hearth.engine.runtime.runtime import ModelRuntime
from hearth.settings.engine import EngineSettings

MiB = 2**20


class FakeScheduler:
    pending = slots = busy_slots = queued = 0
    pool_cells = sequence_cells = 512
    used_cells = 0

    def __init__(self):
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


class FakeWeights:
    def close(self) -> None:
        pass


def record(model_id: str) -> ModelRecord:
    return ModelRecord(
        id=model_id,
        path=Path(f"/models/{model_id}.gguf"),
        file_size=1,
        modified=0,
        info=object(),  # anything but None: a readable file
        invalid_reason=None,
        context_window=512,
        max_output_tokens=512,
        chat_template_override=None,
    )


class Loader:
    """Counts loads per model; a model named in ``slow`` takes that long to load."""

    def __init__(self, slow: dict[str, float] | None = None, failing: frozenset[str] = frozenset()):
        self.loads: list[str] = []
        self.schedulers: dict[str, FakeScheduler] = {}
        self._slow = slow or {}
        self._failing = failing

    def __call__(self, rec: ModelRecord) -> LoadedModel:
        self.loads.append(rec.id)
        time.sleep(self._slow.get(rec.id, 0.0))
        if rec.id in self._failing:
            raise RuntimeError("the file is damaged")
        scheduler = self.schedulers[rec.id] = FakeScheduler()
        return LoadedModel(
            record=rec, model=FakeWeights(), template=None, template_error=None, memory_bytes=MiB, scheduler=scheduler
        )


def runtime(loader: Loader, sizes: dict[str, int], budget: int, **settings) -> tuple[ModelRuntime, list]:
    events = EventBus()
    seen: list[tuple[str, str]] = []
    events.publish = lambda event: seen.append((event.model, event.state)) if isinstance(event, ModelStateEvent) else None
    rt = ModelRuntime(
        EngineSettings(keep_alive=300, **settings),
        events,
        load=loader,
        estimate=lambda rec: sizes[rec.id],
        memory_budget=budget,
    )
    return rt, seen


def loaded_ids(rt: ModelRuntime) -> set[str]:
    return {m.record.id for m in rt.loaded()}


async def use(rt: ModelRuntime, model_id: str) -> None:
    rt.release(await rt.acquire(record(model_id)))


def test_models_that_fit_stay_side_by_side():
    async def main():
        rt, _ = runtime(Loader(), {"a": 40 * MiB, "b": 40 * MiB}, 100 * MiB)
        await use(rt, "a")
        await use(rt, "b")
        assert loaded_ids(rt) == {"a", "b"}

    asyncio.run(main())


def test_the_least_recently_used_idle_model_makes_room():
    async def main():
        loader = Loader()
        rt, seen = runtime(loader, {"a": 40 * MiB, "b": 40 * MiB, "c": 40 * MiB}, 100 * MiB)
        await use(rt, "a")
        await use(rt, "b")
        await use(rt, "a")  # b is now the least recently used
        await use(rt, "c")
        assert loaded_ids(rt) == {"a", "c"}
        assert loader.schedulers["b"].closed.is_set()
        assert ("b", "UNLOADED") in seen

    asyncio.run(main())


def test_a_busy_model_is_never_evicted_and_the_load_gives_up_with_model_busy():
    async def main():
        rt, _ = runtime(Loader(), {"a": 60 * MiB, "b": 60 * MiB}, 100 * MiB, load_wait=0.3)
        busy = await rt.acquire(record("a"))
        started = time.monotonic()
        with pytest.raises(ModelBusy):
            await rt.acquire(record("b"))
        assert time.monotonic() - started >= 0.3
        assert loaded_ids(rt) == {"a"}
        rt.release(busy)

    asyncio.run(main())


def test_a_load_waiting_for_memory_goes_ahead_once_the_busy_model_is_released():
    async def main():
        rt, _ = runtime(Loader(), {"a": 60 * MiB, "b": 60 * MiB}, 100 * MiB, load_wait=10)
        busy = await rt.acquire(record("a"))
        waiting = asyncio.create_task(rt.acquire(record("b")))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        rt.release(busy)
        rt.release(await asyncio.wait_for(waiting, 5))
        assert loaded_ids(rt) == {"b"}

    asyncio.run(main())


def test_the_loaded_model_count_limit_is_a_budget_too():
    async def main():
        rt, _ = runtime(Loader(), {"a": MiB, "b": MiB, "c": MiB}, 100 * MiB, max_loaded_models=2)
        for model_id in ("a", "b", "c"):
            await use(rt, model_id)
        assert loaded_ids(rt) == {"b", "c"}

    asyncio.run(main())


def test_a_model_larger_than_the_whole_budget_still_loads_alone():
    async def main():
        rt, _ = runtime(Loader(), {"a": 10 * MiB, "huge": 500 * MiB}, 100 * MiB)
        await use(rt, "a")
        await use(rt, "huge")
        assert loaded_ids(rt) == {"huge"}

    asyncio.run(main())


def test_concurrent_first_requests_load_a_model_once():
    async def main():
        loader = Loader(slow={"a": 0.3})
        rt, seen = runtime(loader, {"a": MiB}, 100 * MiB)
        held = await asyncio.gather(*(rt.acquire(record("a")) for _ in range(6)))
        assert loader.loads == ["a"]
        assert len({id(m) for m in held}) == 1
        assert [state for model, state in seen if model == "a"].count("LOADING") == 1
        for model in held:
            rt.release(model)

    asyncio.run(main())


def test_keep_alive_zero_unloads_once_idle_and_negative_keeps_it():
    async def main():
        loader = Loader()
        rt, _ = runtime(loader, {"a": MiB, "b": MiB}, 100 * MiB)
        rt.release(await rt.acquire(record("a")), keep_alive=0)
        rt.release(await rt.acquire(record("b")), keep_alive=-1)
        await asyncio.sleep(0.2)
        assert loaded_ids(rt) == {"b"}
        assert loader.schedulers["a"].closed.is_set()
        assert rt.get_loaded("b").expires_in(time.monotonic()) < 0

    asyncio.run(main())


def test_a_failed_load_is_reported_and_frees_its_reservation():
    async def main():
        rt, seen = runtime(Loader(failing=frozenset({"bad"})), {"bad": 90 * MiB, "a": 90 * MiB}, 100 * MiB)
        with pytest.raises(ModelLoadFailed):
            await rt.acquire(record("bad"))
        assert rt.state("bad")[0] == "FAILED"
        assert ("bad", "FAILED") in seen
        await use(rt, "a")  # the failed load holds no memory
        assert loaded_ids(rt) == {"a"}

    asyncio.run(main())
