"""The engine's gRPC contract, driven by a client built from proto/ against a
real `hearth engine` process with real models."""

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import read_rpc_error
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID
from tests.helpers.servers import watch_events_during


@pytest.fixture
def stub(engine):
    with grpc.insecure_channel(engine.address) as channel:
        yield engine_pb2_grpc.EngineStub(channel)


def generate(stub, **fields) -> tuple[list[str], pb.GenerateResponse]:
    messages = list(stub.Generate(pb.GenerateRequest(**fields), timeout=120))
    return [m.text for m in messages[:-1] if m.text], messages[-1]


def test_list_models_describes_every_file(stub):
    models = {m.id: m for m in stub.ListModels(pb.ListModelsRequest()).models}
    assert set(models) == {DEFAULT_MODEL_ID, TINY_MODEL_ID, "broken"}
    gemma = models[DEFAULT_MODEL_ID]
    assert gemma.architecture == "gemma3"
    assert gemma.quantization == "Q4_K_M"
    assert gemma.file_size_bytes == 253113024
    assert 250e6 < gemma.parameter_count < 300e6
    assert gemma.trained_context_length == 32768
    assert gemma.context_window == 32768  # its trained context
    assert not gemma.has_chat_template
    assert gemma.chat_template_source == "builtin:gemma"
    assert gemma.state in (pb.MODEL_STATE_UNLOADED, pb.MODEL_STATE_READY)
    broken = models["broken"]
    assert broken.state == pb.MODEL_STATE_INVALID
    assert "tensor count" in broken.state_reason


def test_get_model_and_unknown_model(stub):
    assert stub.GetModel(pb.GetModelRequest(id=TINY_MODEL_ID)).model.architecture == "llama"
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetModel(pb.GetModelRequest(id="no-such-model"))
    info = read_rpc_error(raised.value)
    assert info.code == grpc.StatusCode.NOT_FOUND
    assert info.reason == "MODEL_NOT_FOUND"
    assert info.metadata["param"] == "model"


def test_load_and_unload_change_state(stub):
    loaded = stub.LoadModel(pb.LoadModelRequest(id=TINY_MODEL_ID)).model
    assert loaded.state == pb.MODEL_STATE_READY
    assert loaded.memory_bytes > 0
    status = stub.GetStatus(pb.GetStatusRequest())
    assert TINY_MODEL_ID in [m.id for m in status.loaded_models]
    unloaded = stub.UnloadModel(pb.UnloadModelRequest(id=TINY_MODEL_ID)).model
    assert unloaded.state == pb.MODEL_STATE_UNLOADED
    assert TINY_MODEL_ID not in [m.id for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models]


def test_loading_an_invalid_file_fails_cleanly(stub):
    with pytest.raises(grpc.RpcError) as raised:
        stub.LoadModel(pb.LoadModelRequest(id="broken"))
    info = read_rpc_error(raised.value)
    assert (info.code, info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "MODEL_INVALID")
    # The engine is still serving.
    assert stub.GetStatus(pb.GetStatusRequest()).engine_version


def test_generate_streams_pieces_then_finish_and_usage(stub):
    pieces, final = generate(stub, model=DEFAULT_MODEL_ID, prompt="Monday, Tuesday, Wednesday,", max_tokens=12, temperature=0)
    assert len(pieces) >= 5
    # Real inference: the model continues the week.
    assert "Thursday" in "".join(pieces)
    assert final.finish_reason == pb.FINISH_REASON_LENGTH
    assert final.usage.completion_tokens == 12
    assert final.usage.prompt_tokens == 7


def test_generate_chat_uses_the_builtin_gemma_template(stub):
    pieces, final = generate(
        stub,
        model=DEFAULT_MODEL_ID,
        messages=[pb.ChatMessage(role="system", content="Answer briefly."), pb.ChatMessage(role="user", content="Hello")],
        max_tokens=8,
        temperature=0,
    )
    # <bos><start_of_turn>user\nAnswer briefly.\n\nHello<end_of_turn>\n<start_of_turn>model\n
    assert 12 <= final.usage.prompt_tokens <= 20
    assert final.finish_reason in (pb.FINISH_REASON_LENGTH, pb.FINISH_REASON_STOP)
    assert "<end_of_turn>" not in "".join(pieces)


def test_stop_strings_end_generation(stub):
    pieces, _ = generate(stub, model=DEFAULT_MODEL_ID, prompt="The capital of France is", max_tokens=12, temperature=0)
    full = "".join(pieces)
    stop = full.split()[2]
    pieces, final = generate(
        stub, model=DEFAULT_MODEL_ID, prompt="The capital of France is", max_tokens=12, temperature=0, stop=[stop]
    )
    assert "".join(pieces) == full[: full.index(stop)]
    assert final.finish_reason == pb.FINISH_REASON_STOP


def test_same_seed_same_text(stub):
    args = dict(model=DEFAULT_MODEL_ID, prompt="Once upon a time", max_tokens=16, temperature=1.0, seed=1234)
    assert generate(stub, **args)[0] == generate(stub, **args)[0]


def test_invalid_arguments_name_the_param(stub):
    cases = [
        (dict(model=TINY_MODEL_ID), "messages"),
        (dict(model=TINY_MODEL_ID, prompt="x", temperature=5.0), "temperature"),
        (dict(model=TINY_MODEL_ID, prompt="x", max_tokens=100_000), "max_tokens"),
        (dict(model=TINY_MODEL_ID, messages=[pb.ChatMessage(role="wizard", content="x")]), "messages.role"),
        (dict(model=TINY_MODEL_ID, prompt="x", stop=["s"] * 17), "stop"),
    ]
    for fields, param in cases:
        with pytest.raises(grpc.RpcError) as raised:
            generate(stub, **fields)
        info = read_rpc_error(raised.value)
        assert (info.code, info.reason, info.metadata.get("param")) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
            param,
        ), fields


def test_prompt_longer_than_context(stub):
    with pytest.raises(grpc.RpcError) as raised:
        generate(stub, model=TINY_MODEL_ID, prompt="word " * 600)
    info = read_rpc_error(raised.value)
    assert info.reason == "CONTEXT_LENGTH_EXCEEDED"
    assert "maximum context length is 512" in info.message


def test_cancelled_call_stops_decoding_and_frees_the_model(stub, engine):
    events = watch_events_during(engine.address, lambda: _cancel_a_long_generation(stub))
    cancelled = [e.request_finished for e in events if e.HasField("request_finished")]
    assert cancelled and cancelled[-1].outcome == pb.REQUEST_OUTCOME_CANCELLED
    # Stopped within a few tokens of the cancel, far short of the 2000 asked for.
    assert cancelled[-1].completion_tokens < 200
    started = time.monotonic()
    _, final = generate(stub, model=DEFAULT_MODEL_ID, prompt="Hello", max_tokens=4, temperature=0)
    assert final.usage.completion_tokens == 4
    assert time.monotonic() - started < 10


def _cancel_a_long_generation(stub) -> None:
    call = stub.Generate(pb.GenerateRequest(model=DEFAULT_MODEL_ID, prompt="Count: 1, 2, 3,", max_tokens=2000, temperature=0))
    for received, _ in enumerate(call):
        if received == 5:
            call.cancel()
            break


def test_watch_events_reports_state_changes_and_requests(stub, engine):
    def action():
        stub.UnloadModel(pb.UnloadModelRequest(id=TINY_MODEL_ID))
        generate(stub, model=TINY_MODEL_ID, prompt="abc", max_tokens=3, temperature=0, request_id="watched-1")

    events = watch_events_during(engine.address, action)
    states = [(e.model_state_changed.model, e.model_state_changed.state) for e in events if e.HasField("model_state_changed")]
    assert (TINY_MODEL_ID, pb.MODEL_STATE_LOADING) in states
    assert (TINY_MODEL_ID, pb.MODEL_STATE_READY) in states
    finished = [e.request_finished for e in events if e.HasField("request_finished")]
    record = next(f for f in finished if f.request_id == "watched-1")
    assert record.model == TINY_MODEL_ID
    assert record.outcome == pb.REQUEST_OUTCOME_COMPLETED
    assert record.completion_tokens == 3
    assert record.duration_seconds > 0
    assert all(e.timestamp > 1.7e9 for e in events)


def test_status_reports_backend_and_versions(stub):
    status = stub.GetStatus(pb.GetStatusRequest())
    assert status.backend == pb.BACKEND_CPU  # CI has no GPU
    assert not status.gpu_offload
    assert status.llama_cpp_python_version == "0.3.36"
    assert status.process_memory_bytes > 0
    assert status.system_memory_total_bytes >= status.system_memory_available_bytes > 0
    assert status.keep_alive_seconds == 300
    assert "CPU" in status.system_info


def test_health_and_reflection(engine):
    with grpc.insecure_channel(engine.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "hearth.engine.v1.Engine"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"hearth.engine.v1.Engine", "grpc.health.v1.Health"} <= names


def test_a_new_watcher_gets_the_recent_past_first(stub, engine):
    generate(stub, model=TINY_MODEL_ID, prompt="abc", max_tokens=2, temperature=0, request_id="before-watching")
    with grpc.insecure_channel(engine.address) as channel:
        # A watch that got no past would wait for new events: the deadline ends it (and fails the test).
        call = engine_pb2_grpc.EngineStub(channel).WatchEvents(pb.WatchEventsRequest(), timeout=20)
        replayed = []
        for event in call:
            if not event.replayed:
                break
            replayed.append(event)
            if event.HasField("request_finished") and event.request_finished.request_id == "before-watching":
                break
        call.cancel()
    record = replayed[-1].request_finished
    assert record.request_id == "before-watching" and record.completion_tokens == 2
    # Oldest first, as they happened.
    assert [e.timestamp for e in replayed] == sorted(e.timestamp for e in replayed)
