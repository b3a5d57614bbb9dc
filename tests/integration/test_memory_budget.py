"""Several models under a memory budget: side by side, least recently used idle
ones unloaded to make room, busy ones never; one load per model however many
requests arrive at once; per-request keep-alive; capabilities. Each test runs
its own `hearth engine` over tiny random-weight models (and the real default
model where a generation must last)."""

import contextlib
import dataclasses
import threading
import time
from pathlib import Path

import grpc
import pytest

from hearth.engine.models.registry import ModelRegistry
from hearth.engine.runtime.memory import estimate_model_bytes, fitting_context, kv_cache_bytes
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import read_rpc_error
from hearth.settings.engine import EngineSettings
from tests.helpers.gguf_factory import N_EMBD, N_LAYER, write_tiny_llama
from tests.helpers.servers import EngineProcess

PARALLEL = 1
BATCH_SIZE = 512
DEADLINE = 20.0


def write_models(folder: Path, *names: str, context_length: int = 512) -> None:
    folder.mkdir(exist_ok=True)
    for seed, name in enumerate(names):
        write_tiny_llama(folder / f"{name}.gguf", seed=seed, name=name, context_length=context_length)


def accounted_bytes(folder: Path, model_id: str, context_size: int = 8192) -> int:
    """What the engine's budget counts for a model, computed as the engine does from its file."""
    record = ModelRegistry(folder, folder / "no-config.json", context_size).scan()[model_id]
    return estimate_model_bytes(record, batch_size=BATCH_SIZE)


@contextlib.contextmanager
def running_engine(tmp_path: Path, models: Path, **env: str):
    env = {"LLM_PARALLEL": str(PARALLEL), "LLM_BATCH_SIZE": str(BATCH_SIZE), **env}
    engine = EngineProcess(models, tmp_path / "config.json", tmp_path / "engine.log", **env)
    try:
        with grpc.insecure_channel(engine.address) as channel:
            yield engine, engine_pb2_grpc.EngineStub(channel)
    finally:
        engine.stop()


class StateEvents:
    """Model state changes from WatchEvents, collected by a thread while the block runs."""

    def __init__(self, address: str):
        self._channel = grpc.insecure_channel(address)
        self._call = engine_pb2_grpc.EngineStub(self._channel).WatchEvents(pb.WatchEventsRequest())
        self.changes: list[tuple[str, str, str]] = []
        self._reader = threading.Thread(target=self._read)

    def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for event in self._call:
                if event.HasField("model_state_changed") and not event.replayed:
                    change = event.model_state_changed
                    state = pb.ModelState.Name(change.state).removeprefix("MODEL_STATE_")
                    self.changes.append((change.model, state, change.reason))

    def __enter__(self) -> "StateEvents":
        self._reader.start()
        # The engine subscribes the watcher once the call reaches it; nothing
        # tells the client when, so give it a moment.
        time.sleep(0.5)
        return self

    def __exit__(self, *exc) -> None:
        self._call.cancel()
        self._reader.join(5)
        self._channel.close()

    def states(self, model: str) -> list[str]:
        return [state for name, state, _ in self.changes if name == model]


def wait_until(predicate, timeout: float = DEADLINE, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def loaded_ids(stub) -> set[str]:
    return {m.id for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models}


def state(stub, model_id: str) -> int:
    return stub.GetModel(pb.GetModelRequest(id=model_id)).model.state


# The tiny models' end-of-text token: banned, so that every request generates
# exactly max_tokens (a sampled end would make the counts below flaky).
TINY_EOS = 2


def generate(stub, model_id: str, **fields) -> pb.GenerateResponse:
    request = pb.GenerateRequest(model=model_id, prompt="abc", max_tokens=2, logit_bias={TINY_EOS: -100}, **fields)
    return list(stub.Generate(request))[-1]


class LongGeneration:
    """A streamed generation kept running until the block ends (then cancelled)."""

    def __init__(self, stub, model_id: str, max_tokens: int):
        self._call = stub.Generate(
            pb.GenerateRequest(model=model_id, prompt="Monday, Tuesday, Wednesday,", max_tokens=max_tokens, temperature=0)
        )
        self.pieces = 0
        self.ended_early = False
        self._reader = threading.Thread(target=self._read)
        self._started = threading.Event()

    def _read(self) -> None:
        try:
            for response in self._call:
                self.pieces += 1
                self._started.set()
                if response.HasField("usage"):
                    self.ended_early = True
        except grpc.RpcError:
            pass
        finally:
            self._started.set()

    def __enter__(self) -> "LongGeneration":
        self._reader.start()
        assert self._started.wait(60), "the long generation did not start"
        return self

    def cancel(self) -> None:
        self._call.cancel()
        self._reader.join(10)

    def __exit__(self, *exc) -> None:
        self.cancel()


def test_size_settings_accept_units_and_refuse_nonsense(monkeypatch):
    monkeypatch.setenv("LLM_MEMORY_BUDGET", "8GiB")
    assert EngineSettings().memory_budget == 8 * 2**30
    monkeypatch.setenv("LLM_MEMORY_BUDGET", "512MB")
    assert EngineSettings().memory_budget == 512 * 10**6
    monkeypatch.setenv("LLM_MEMORY_BUDGET", "123456")
    assert EngineSettings().memory_budget == 123456
    for bad in ("lots", "-1GiB", "0", "3 parsecs"):
        monkeypatch.setenv("LLM_MEMORY_BUDGET", bad)
        with pytest.raises(ValueError, match="memory_budget"):
            EngineSettings()


def test_kv_cache_estimate_follows_the_file_shape(tmp_path, default_model_path):
    write_models(tmp_path, "shape")
    (tmp_path / "gemma.gguf").symlink_to(default_model_path)
    records = ModelRegistry(tmp_path, tmp_path / "no-config.json", 2048).scan()
    # K and V, f16, per layer, per cell of the pool the slots share: tiny has as many KV heads as heads.
    assert kv_cache_bytes(records["shape"]) == N_LAYER * 512 * (N_EMBD + N_EMBD) * 2
    # Gemma 3 270M: 18 layers, one KV head of 256 dimensions (grouped-query attention).
    assert kv_cache_bytes(records["gemma"]) == 18 * 2048 * (256 + 256) * 2


def test_the_default_context_is_the_trained_one_as_far_as_the_budget_allows(tmp_path, default_model_path):
    (tmp_path / "gemma.gguf").symlink_to(default_model_path)
    gemma = ModelRegistry(tmp_path, tmp_path / "no-config.json", 0).scan()["gemma"]
    assert gemma.context_window == gemma.info.trained_context_length == 32768

    def fit(budget: int) -> int:
        return fitting_context(gemma.info, gemma.file_size, 32768, budget=budget, batch_size=BATCH_SIZE)

    assert fit(2**40) == 32768
    room_for_8192 = estimate_model_bytes(dataclasses.replace(gemma, context_window=8192), batch_size=BATCH_SIZE)
    assert fit(room_for_8192) == 8192 and fit(room_for_8192 - 1) == 4096
    # Never below 4096, even when nothing fits.
    assert fit(1) == 4096


def test_two_models_side_by_side_and_a_third_evicts_the_least_recently_used(tmp_path):
    models = tmp_path / "models"
    write_models(models, "alpha", "beta", "gamma")
    one = accounted_bytes(models, "alpha")
    assert accounted_bytes(models, "beta") == accounted_bytes(models, "gamma") == one
    budget = 2 * one + one // 2  # two fit, three do not
    with running_engine(tmp_path, models, LLM_MEMORY_BUDGET=str(budget)) as (engine, stub):
        assert stub.GetStatus(pb.GetStatusRequest()).memory_budget_bytes == budget
        with StateEvents(engine.address) as events:
            stub.LoadModel(pb.LoadModelRequest(id="alpha"))
            stub.LoadModel(pb.LoadModelRequest(id="beta"))
            assert loaded_ids(stub) == {"alpha", "beta"}
            # alpha was loaded first but used last: beta is the least recently used.
            assert generate(stub, "alpha").usage.completion_tokens == 2
            stub.LoadModel(pb.LoadModelRequest(id="gamma"))
            assert loaded_ids(stub) == {"alpha", "gamma"}
            assert state(stub, "beta") == pb.MODEL_STATE_UNLOADED
            # beta comes back on its next request, in place of alpha (now the least recent).
            assert generate(stub, "beta").usage.completion_tokens == 2
            assert loaded_ids(stub) == {"gamma", "beta"}
            wait_until(lambda: events.states("alpha")[-1:] == ["UNLOADED"], what="alpha's UNLOADED event")
        assert events.states("beta") == ["LOADING", "READY", "UNLOADED", "LOADING", "READY"]
        assert ("beta", "UNLOADED", "unloaded to make room for 'gamma'") in events.changes
    log = engine.log()
    assert "unloading beta" in log and "to make room for gamma" in log


def test_max_loaded_models_limits_the_count(tmp_path):
    models = tmp_path / "models"
    write_models(models, "first", "second")
    with running_engine(tmp_path, models, LLM_MAX_LOADED_MODELS="1", LLM_MEMORY_BUDGET="1GiB") as (_, stub):
        assert stub.GetStatus(pb.GetStatusRequest()).memory_budget_bytes == 2**30
        stub.LoadModel(pb.LoadModelRequest(id="first"))
        assert generate(stub, "second").usage.completion_tokens == 2
        assert loaded_ids(stub) == {"second"}


def test_a_model_over_the_whole_budget_still_loads_alone(tmp_path):
    models = tmp_path / "models"
    write_models(models, "huge", "other")
    with running_engine(tmp_path, models, LLM_MEMORY_BUDGET="1MiB") as (engine, stub):
        assert generate(stub, "huge").usage.completion_tokens == 2
        assert generate(stub, "other").usage.completion_tokens == 2
        assert loaded_ids(stub) == {"other"}
    assert "more than the whole memory budget" in engine.log()


def test_a_busy_model_is_never_evicted(tmp_path, default_model_path):
    """The real default model streams a long answer while tiny models come and go."""
    models = tmp_path / "models"
    write_models(models, "small-a", "small-b")
    write_tiny_llama(models / "large.gguf", seed=7, name="large", context_length=4096)
    (models / "busy.gguf").symlink_to(default_model_path)
    context = 4096
    small, large = accounted_bytes(models, "small-a", context), accounted_bytes(models, "large", context)
    assert large > small * 3 // 2
    # The busy model and one small model fit; the large one fits only without the busy one.
    budget = accounted_bytes(models, "busy", context) + small * 3 // 2
    env = {
        "LLM_MEMORY_BUDGET": str(budget),
        "LLM_CONTEXT_SIZE": str(context),
        "LLM_LOAD_WAIT": "2",
    }
    with running_engine(tmp_path, models, **env) as (engine, stub):
        with StateEvents(engine.address) as events, LongGeneration(stub, "busy", max_tokens=4000) as busy:
            stub.LoadModel(pb.LoadModelRequest(id="small-a"))
            # "busy" is the least recently used but serving: the idle small-a goes instead.
            stub.LoadModel(pb.LoadModelRequest(id="small-b"))
            assert loaded_ids(stub) == {"busy", "small-b"}
            status = {m.id: m for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models}
            assert status["busy"].active_requests == 1
            # While it serves, the full keep-alive remains.
            assert status["busy"].expires_in_seconds == 300

            # Only the busy model stands in the way: the load waits LLM_LOAD_WAIT, then gives up.
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as raised:
                stub.LoadModel(pb.LoadModelRequest(id="large"))
            assert time.monotonic() - started >= 1.9
            info = read_rpc_error(raised.value)
            assert (info.code, info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "MODEL_BUSY")
            assert "large" in info.message
            assert not busy.ended_early
            assert "busy" in loaded_ids(stub)
            assert state(stub, "large") == pb.MODEL_STATE_UNLOADED

            # A load that is waiting goes ahead as soon as the busy model's request ends.
            outcome: dict = {}

            def load_large():
                try:
                    outcome["model"] = stub.LoadModel(pb.LoadModelRequest(id="large")).model
                except grpc.RpcError as exc:
                    outcome["error"] = exc

            loader = threading.Thread(target=load_large)
            loader.start()
            time.sleep(0.3)
            pieces_before_cancel = busy.pieces
            busy.cancel()
            loader.join(30)
            assert "error" not in outcome, outcome.get("error")
            assert outcome["model"].state == pb.MODEL_STATE_READY
            assert loaded_ids(stub) == {"large"}
            assert pieces_before_cancel > 1 and not busy.ended_early
        assert "UNLOADED" in events.states("busy")
        assert "unloaded to make room for 'large'" in [r for m, s, r in events.changes if m == "busy"]


def test_a_load_whose_caller_goes_away_is_freed(tmp_path, default_model_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "real.gguf").symlink_to(default_model_path)
    with running_engine(tmp_path, models, LLM_CONTEXT_SIZE="512") as (engine, stub):
        stub.GetModel(pb.GetModelRequest(id="real"))  # the file's one-time check, outside the deadline
        with StateEvents(engine.address) as events:
            try:
                stub.LoadModel(pb.LoadModelRequest(id="real"), timeout=0.2)
                pytest.skip("the model loaded within the deadline: nothing was cancelled")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            wait_until(lambda: "freed real, whose load was cancelled" in engine.log(), what="the abandoned load")
        assert events.states("real") == ["LOADING", "UNLOADED"]
        assert state(stub, "real") == pb.MODEL_STATE_UNLOADED
        assert loaded_ids(stub) == set()
        assert stub.LoadModel(pb.LoadModelRequest(id="real")).model.state == pb.MODEL_STATE_READY


def test_concurrent_first_requests_load_the_model_once(tmp_path):
    models = tmp_path / "models"
    write_models(models, "shared", "bystander")
    with running_engine(tmp_path, models) as (engine, stub):
        results: list = []
        start = threading.Barrier(6)

        def request():
            start.wait()
            try:
                results.append(generate(stub, "shared").usage.completion_tokens)
            except grpc.RpcError as exc:
                results.append(exc)

        with StateEvents(engine.address) as events:
            threads = [threading.Thread(target=request) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        assert results == [2] * 6
        assert events.states("shared") == ["LOADING", "READY"]


def test_a_request_for_a_model_being_evicted_reloads_it(tmp_path):
    models = tmp_path / "models"
    write_models(models, "one", "two")
    budget = accounted_bytes(models, "one") * 3 // 2  # one model at a time
    with running_engine(tmp_path, models, LLM_MEMORY_BUDGET=str(budget)) as (_, stub):
        for _ in range(3):
            results: list = []

            def request(model_id, results=results):
                try:
                    results.append(generate(stub, model_id).usage.completion_tokens)
                except grpc.RpcError as exc:
                    results.append(exc)

            threads = [threading.Thread(target=request, args=(m,)) for m in ("one", "two", "one", "two")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert results == [2] * 4
            assert len(loaded_ids(stub)) == 1


@pytest.fixture(scope="module")
def keep_alive_engine(tmp_path_factory):
    """An engine whose default keep-alive is one second."""
    tmp_path = tmp_path_factory.mktemp("keep-alive")
    models = tmp_path / "models"
    write_models(models, "default", "never", "at-once", "loaded", "browser")
    write_tiny_llama(models / "plain-template.gguf", name="plain", chat_template="{{ messages[0].content }}")
    write_tiny_llama(
        models / "tool-template.gguf",
        name="tooly",
        chat_template="{% if tools %}{{ tools | tojson }}{% endif %}{{ messages[0].content }}",
    )
    (models / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00 this is not a model")
    with running_engine(tmp_path, models, LLM_KEEP_ALIVE="1") as running:
        yield running


def test_keep_alive_per_request(keep_alive_engine):
    engine, stub = keep_alive_engine
    # -1: stays loaded past the default keep-alive that unloads its neighbour.
    generate(stub, "never", keep_alive_seconds=-1)
    generate(stub, "default")
    assert stub.GetModel(pb.GetModelRequest(id="never")).model.expires_in_seconds < 0
    wait_until(lambda: state(stub, "default") == pb.MODEL_STATE_UNLOADED, what="the default keep-alive")
    assert state(stub, "never") == pb.MODEL_STATE_READY
    status = {m.id: m for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models}
    assert status["never"].expires_in_seconds < 0
    # The last request's keep-alive wins: 0 unloads it once idle.
    generate(stub, "never", keep_alive_seconds=0)
    wait_until(lambda: state(stub, "never") == pb.MODEL_STATE_UNLOADED, what="keep-alive 0 on 'never'")

    with StateEvents(engine.address) as events:
        generate(stub, "at-once", keep_alive_seconds=0)
        wait_until(lambda: events.states("at-once")[-1:] == ["UNLOADED"], what="keep-alive 0")
    assert events.states("at-once") == ["LOADING", "READY", "UNLOADED"]
    assert "unloading at-once after 0s idle (keep-alive 0s)" in engine.log()


def test_load_model_with_keep_alive(keep_alive_engine):
    _, stub = keep_alive_engine
    model = stub.LoadModel(pb.LoadModelRequest(id="loaded", keep_alive_seconds=120)).model
    assert model.state == pb.MODEL_STATE_READY
    assert 100 < model.expires_in_seconds <= 120
    # A request without keep-alive leaves the model's own as it is.
    generate(stub, "loaded")
    assert 100 < stub.GetModel(pb.GetModelRequest(id="loaded")).model.expires_in_seconds <= 120
    assert stub.LoadModel(pb.LoadModelRequest(id="loaded", keep_alive_seconds=-5)).model.expires_in_seconds < 0
    stub.LoadModel(pb.LoadModelRequest(id="loaded", keep_alive_seconds=0))
    wait_until(lambda: state(stub, "loaded") == pb.MODEL_STATE_UNLOADED, what="LoadModel keep-alive 0")
    # Not loaded: no expiry.
    assert stub.GetModel(pb.GetModelRequest(id="loaded")).model.expires_in_seconds == 0
    with pytest.raises(grpc.RpcError) as raised:
        stub.LoadModel(pb.LoadModelRequest(id="loaded", keep_alive_seconds=float("nan")))
    assert read_rpc_error(raised.value).reason == "INVALID_ARGUMENT"


def test_capabilities_are_listed(keep_alive_engine):
    _, stub = keep_alive_engine
    models = {m.id: m for m in stub.ListModels(pb.ListModelsRequest()).models}
    everything = [pb.CAPABILITY_CHAT, pb.CAPABILITY_COMPLETION, pb.CAPABILITY_EMBEDDINGS, pb.CAPABILITY_TOOLS]
    # No template in the file: a built-in one, which renders tools.
    assert list(models["browser"].capabilities) == everything
    assert list(models["tool-template"].capabilities) == everything
    # The file's own template knows nothing of tools.
    assert list(models["plain-template"].capabilities) == everything[:3]
    assert models["broken"].state == pb.MODEL_STATE_INVALID
    assert list(models["broken"].capabilities) == []


def test_default_budget_is_a_share_of_memory(keep_alive_engine):
    _, stub = keep_alive_engine
    status = stub.GetStatus(pb.GetStatusRequest())
    if status.gpu_offload:
        pytest.skip("layers are offloaded: the default budget is a share of the GPUs' memory")
    assert status.memory_budget_bytes == int(status.system_memory_total_bytes * 0.75)
