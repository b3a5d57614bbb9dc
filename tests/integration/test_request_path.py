"""The work a request costs before it reaches the model, measured in process
on a real EngineCore with a tiny model: a streamed chat request on a loaded
model makes at most one thread-pool round trip before it is queued, and
GetModel and Generate list the models folder again only when it changed."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hearth.engine.core import EngineCore
from hearth.engine.domain import Finished, GenerateParams, SamplingParams
from hearth.engine.llama.backend import backend_info
from hearth.settings.engine import EngineSettings
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.models import TINY_MODEL_ID


class CountingExecutor(ThreadPoolExecutor):
    """The event loop's default executor (asyncio.to_thread's), counting what it is given."""

    def __init__(self):
        super().__init__(max_workers=4)
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def chat(request_id: str) -> GenerateParams:
    return GenerateParams(
        model=TINY_MODEL_ID,
        messages=[{"role": "user", "content": "Hello there"}],
        prompt=None,
        max_tokens=4,
        stop=(),
        sampling=SamplingParams(temperature=0),
        request_id=request_id,
    )


async def run_chat(core: EngineCore, request_id: str) -> None:
    async for event in core.generate(chat(request_id)):
        if isinstance(event, Finished):
            return


def test_a_loaded_models_request_takes_one_round_trip_and_no_folder_listing(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / f"{TINY_MODEL_ID}.gguf")
    settings = EngineSettings(models_dir=models, config_file=tmp_path / "config.json", parallel=2, threads=1)

    async def main():
        executor = CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        core = EngineCore(settings, backend_info())
        core.models.watch_seconds = 3600  # the watcher's own checks would count too
        await core.start()
        try:
            await run_chat(core, "warm-up")  # loads the model
            loaded = core.runtime.get_loaded(TINY_MODEL_ID)
            at_submit: list[int] = []
            submit = loaded.scheduler.submit
            loaded.scheduler.submit = lambda job: (at_submit.append(executor.submitted), submit(job))[1]
            scans = core.registry.scans
            for attempt in range(3):
                before = executor.submitted
                await run_chat(core, f"measured-{attempt}")
                assert at_submit[-1] - before <= 1
                before = executor.submitted
                view = await core.get_model(TINY_MODEL_ID)
                assert view.state == "READY" and executor.submitted == before
            assert core.registry.scans == scans, "a request listed the models folder"

            # A new file is seen by the next request that asks for it.
            write_tiny_llama(models / "second.gguf", seed=3)
            assert (await core.get_model("second")).state == "UNLOADED"
            assert core.registry.scans == scans + 1
        finally:
            await core.stop()

    asyncio.run(main())
