"""`hearth pull`, `hearth rm` and `hearth cp`: through the running engine when one
answers at the engine address (so it lists the change at once and unloads what
it deletes), else on the models folder and config file directly."""

import asyncio
import logging
import sys
from collections.abc import Callable

from tqdm import tqdm

from hearth.client import EngineCallError, EngineClient
from hearth.client.names import pull_phase_name
from hearth.engine.errors import EngineError
from hearth.engine.v1 import engine_pb2 as pb
from hearth.settings.engine import EngineSettings

log = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _client(settings: EngineSettings) -> EngineClient:
    return EngineClient(settings.engine_address, api_key=settings.api_key, tls=settings.client_tls())


def _engine_answers(settings: EngineSettings) -> bool:
    with _client(settings) as client:
        return client.healthy()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


class PullDisplay:
    """A tqdm bar per phase that moves bytes (downloading, verifying), on stderr."""

    def __init__(self):
        self._bar: tqdm | None = None
        self._phase = ""

    def show(self, phase: str, file: str, completed: int, total: int) -> None:
        if phase != self._phase:
            self.close()
            self._phase = phase
            if phase == "RESOLVING" and not file:
                print("resolving the reference on Hugging Face...", file=sys.stderr)
            if phase in ("DOWNLOADING", "VERIFYING"):
                label = "downloading" if phase == "DOWNLOADING" else "verifying"
                self._bar = tqdm(
                    total=total or None, unit="B", unit_scale=True, desc=f"{label} {file}", file=sys.stderr
                )
        if self._bar is not None:
            self._bar.update(completed - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _pull_with_engine(settings: EngineSettings, reference: str, revision: str) -> int:
    display = PullDisplay()
    with _client(settings) as client:
        call = client.pull(reference, revision)
        try:
            for message in call:
                display.show(pull_phase_name(message.phase), message.file, message.completed_bytes, message.total_bytes)
                if message.phase == pb.PULL_PHASE_DONE:
                    display.close()
                    model = message.model
                    print(f"{model.id}\t{model.path}")
                    if model.state == pb.MODEL_STATE_INVALID:
                        return _fail(f"the pulled file cannot be used: {model.state_reason}")
            return 0
        except KeyboardInterrupt:
            call.cancel()
            display.close()
            print("cancelled", file=sys.stderr)
            return EXIT_INTERRUPTED
        except EngineCallError as exc:
            display.close()
            return _fail(exc.message)


def _pull_in_process(settings: EngineSettings, reference: str, revision: str) -> int:
    from hearth.engine.models.pull import PullCancelled, PullResult, pull_in_thread

    display = PullDisplay()

    async def run() -> PullResult:
        # The engine's own bridge: the pull runs on a thread of its own, and
        # Ctrl-C (which cancels this task) cancels it and waits for it to
        # remove what it had written.
        pulling = pull_in_thread(
            reference,
            revision,
            settings.models_dir,
            cache_dir=settings.hf_cache_dir,
            chunk_bytes=settings.pull_chunk_bytes,
        )
        async for item in pulling:
            if isinstance(item, PullResult):
                return item
            display.show(item.phase.value, item.file, item.completed, item.total)
        raise RuntimeError("the pull ended without a result")

    try:
        result = asyncio.run(run())
    except KeyboardInterrupt:
        display.close()
        print("cancelled", file=sys.stderr)
        return EXIT_INTERRUPTED
    except PullCancelled:
        display.close()
        return EXIT_INTERRUPTED
    except EngineError as exc:
        display.close()
        return _fail(exc.message)
    display.close()
    print(f"{result.model_id}\t{result.path}")
    return 0


def pull_model(settings: EngineSettings, reference: str, revision: str) -> int:
    if _engine_answers(settings):
        log.info("pulling through the engine at %s", settings.engine_address)
        return _pull_with_engine(settings, reference, revision)
    log.info("no engine at %s: pulling into %s", settings.engine_address, settings.models_dir)
    return _pull_in_process(settings, reference, revision)


def _through_engine(settings: EngineSettings, call: Callable[[EngineClient], object]) -> int:
    with _client(settings) as client:
        try:
            call(client)
            return 0
        except EngineCallError as exc:
            return _fail(exc.message)


def _registry(settings: EngineSettings):
    from hearth.engine.core import model_registry

    return model_registry(settings, gpu_offload=False)


def delete_model(settings: EngineSettings, model_id: str) -> int:
    if _engine_answers(settings):
        return _through_engine(settings, lambda client: client.delete_model(model_id))
    from hearth.engine.models import store as model_store

    try:
        model_store.delete_model(_registry(settings), model_id)
    except EngineError as exc:
        return _fail(exc.message)
    return 0


def copy_model(settings: EngineSettings, source: str, destination: str) -> int:
    if _engine_answers(settings):
        return _through_engine(settings, lambda client: client.copy_model(source, destination))
    from hearth.engine.models import store as model_store

    try:
        model_store.copy_model(_registry(settings), source, destination)
    except EngineError as exc:
        return _fail(exc.message)
    return 0
