"""Deleting and copying models through a real `hearth engine` (DeleteModel,
CopyModel) and through `hearth rm` / `hearth cp` when no engine runs."""

import json
import subprocess
from pathlib import Path

import grpc
import pytest

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import read_rpc_error
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.servers import HEARTH, EngineProcess, base_env, free_port

SETTINGS = {"keep_alive": 120}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An engine over its own folder: tiny models named per test, a config file with settings."""
    root = tmp_path_factory.mktemp("store")
    models = root / "models"
    models.mkdir()
    for name in ("base", "doomed", "shared", "kept"):
        write_tiny_llama(models / f"{name}.gguf")
    outside = write_tiny_llama(root / "outside.gguf")
    config = root / "config.json"
    config.write_text(
        json.dumps(
            {
                "settings": SETTINGS,
                "models": [{"id": "declared-outside", "path": str(outside), "context_window": 256}],
                "unknown-key": [1, 2],
            }
        )
    )
    process = EngineProcess(models, config, root / "engine.log")
    yield process, models, config, outside
    process.stop()


@pytest.fixture
def stub(store):
    with grpc.insecure_channel(store[0].address) as channel:
        yield engine_pb2_grpc.EngineStub(channel)


def ids(stub) -> set[str]:
    return {m.id for m in stub.ListModels(pb.ListModelsRequest()).models}


def config_entries(config: Path) -> dict[str, dict]:
    return {e["id"]: e for e in json.loads(config.read_text())["models"]}


def completion_tokens(stub, model: str) -> int:
    replies = list(
        stub.Generate(pb.GenerateRequest(model=model, prompt="Hello", max_tokens=3, temperature=0), timeout=120)
    )
    return replies[-1].usage.completion_tokens


def rpc_error(call, request):
    with pytest.raises(grpc.RpcError) as raised:
        call(request)
    return read_rpc_error(raised.value)


def test_copy_makes_an_alias_that_generates(stub, store):
    _, models, config, _ = store
    copied = stub.CopyModel(pb.CopyModelRequest(source="base", destination="base-alias")).model
    assert copied.id == "base-alias"
    assert Path(copied.path) == models / "base.gguf"
    assert {"base", "base-alias"} <= ids(stub)
    assert completion_tokens(stub, "base-alias") == 3
    assert sorted(p.name for p in models.iterdir() if "base" in p.name) == ["base.gguf"]  # no file copied
    document = json.loads(config.read_text())
    assert document["settings"] == SETTINGS and document["unknown-key"] == [1, 2]
    assert config_entries(config)["base-alias"]["path"] == str(models / "base.gguf")


def test_copy_keeps_the_source_overrides(stub, store):
    copied = stub.CopyModel(pb.CopyModelRequest(source="declared-outside", destination="outside-copy")).model
    assert copied.context_window == 256
    assert config_entries(store[2])["outside-copy"]["context_window"] == 256


def test_copy_errors(stub):
    info = rpc_error(stub.CopyModel, pb.CopyModelRequest(source="kept", destination="base"))
    assert (info.code, info.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS")
    info = rpc_error(stub.CopyModel, pb.CopyModelRequest(source="kept", destination="no spaces/allowed"))
    assert (info.reason, info.metadata["param"]) == ("INVALID_ARGUMENT", "destination")
    info = rpc_error(stub.CopyModel, pb.CopyModelRequest(source="no-such-model", destination="x"))
    assert (info.reason, info.metadata["param"]) == ("MODEL_NOT_FOUND", "source")
    assert "x" not in ids(stub)


def test_deleting_an_alias_keeps_the_file(stub, store):
    _, models, config, _ = store
    stub.CopyModel(pb.CopyModelRequest(source="kept", destination="kept-alias"))
    stub.DeleteModel(pb.DeleteModelRequest(id="kept-alias"))
    assert "kept-alias" not in ids(stub)
    assert "kept-alias" not in config_entries(config)
    assert (models / "kept.gguf").is_file()
    assert completion_tokens(stub, "kept") == 3


def test_deleting_a_loaded_model_unloads_it_and_removes_its_file(stub, store):
    models = store[1]
    stub.LoadModel(pb.LoadModelRequest(id="doomed"))
    assert "doomed" in {m.id for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models}
    stub.DeleteModel(pb.DeleteModelRequest(id="doomed"))
    assert not (models / "doomed.gguf").exists()
    assert "doomed" not in ids(stub)
    assert "doomed" not in {m.id for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models}
    info = rpc_error(lambda r: list(stub.Generate(r)), pb.GenerateRequest(model="doomed", prompt="Hi", max_tokens=1))
    assert info.reason == "MODEL_NOT_FOUND"


def test_deleting_a_model_an_alias_uses_keeps_the_alias_working(stub, store):
    _, models, config, _ = store
    stub.CopyModel(pb.CopyModelRequest(source="shared", destination="shared-alias"))
    stub.DeleteModel(pb.DeleteModelRequest(id="shared"))
    assert "shared" not in ids(stub)
    assert completion_tokens(stub, "shared-alias") == 3
    # Deleting the last id that uses the file removes it.
    stub.DeleteModel(pb.DeleteModelRequest(id="shared-alias"))
    assert not [p for p in models.iterdir() if "shared" in p.name]
    assert "shared-alias" not in config_entries(config)


def test_deleting_a_declared_model_never_touches_a_file_outside_the_folder(stub, store):
    _, _, config, outside = store
    stub.DeleteModel(pb.DeleteModelRequest(id="declared-outside"))
    assert "declared-outside" not in ids(stub)
    assert "declared-outside" not in config_entries(config)
    assert outside.is_file()
    assert json.loads(config.read_text())["settings"] == SETTINGS


def test_deleting_an_unknown_model_is_not_found(stub):
    info = rpc_error(stub.DeleteModel, pb.DeleteModelRequest(id="no-such-model"))
    assert (info.code, info.reason) == (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND")


def test_cli_cp_and_rm_without_an_engine(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / "solo.gguf")
    config = tmp_path / "config.json"
    env = base_env(models, config, LLM_ENGINE_ADDRESS=f"127.0.0.1:{free_port()}")

    def hearth(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(HEARTH + list(args), env=env, capture_output=True, text=True, timeout=60)

    assert hearth("cp", "solo", "solo-copy").returncode == 0
    assert config_entries(config)["solo-copy"]["path"] == str(models / "solo.gguf")
    refused = hearth("cp", "solo", "solo-copy")
    assert refused.returncode == 1 and "already exists" in refused.stderr.splitlines()[-1]
    assert hearth("rm", "solo-copy").returncode == 0
    assert (models / "solo.gguf").is_file()
    assert hearth("rm", "solo").returncode == 0
    assert not (models / "solo.gguf").exists()
    missing = hearth("rm", "solo")
    assert missing.returncode == 1 and missing.stderr.splitlines()[-1] == "error: The model 'solo' does not exist"
