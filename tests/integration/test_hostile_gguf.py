"""Hostile model files: a generated corpus of malformed GGUF files (see
hostile_gguf.py) is refused by the header check with a reason, or handed to
llama.cpp, which refuses it or loads it; the engine never goes down."""

import logging
from collections import Counter
from pathlib import Path

import grpc
import pytest

from hearth.engine.models import gguf_info
from hearth.engine.models.gguf_info import GGUFReadError, read_gguf_info
from hearth.engine.models.registry import ModelRegistry, probe_with_llama_cpp
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import read_rpc_error
from tests.helpers.hostile_gguf import KINDS, write_corpus
from tests.helpers.models import TINY_MODEL_ID
from tests.helpers.servers import EngineProcess

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, models_dir) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("hostile-models")
    kinds = write_corpus(models_dir / f"{TINY_MODEL_ID}.gguf", folder)
    (folder / f"{TINY_MODEL_ID}.gguf").symlink_to(models_dir / f"{TINY_MODEL_ID}.gguf")
    return folder, kinds


def test_the_corpus_is_broad():
    names = [k.name for k in KINDS]
    assert len(names) == len(set(names)) >= 30
    for family in ("cut-", "magic", "version", "count", "key", "string", "array", "alignment", "tensor", "duplicate", "overflow"):
        assert any(family in name for name in names), family


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_the_header_check(corpus, kind):
    folder, _ = corpus
    path = folder / f"{kind.name}.gguf"
    if kind.expect == "refused":
        with pytest.raises(GGUFReadError) as raised:
            read_gguf_info(path)
        assert str(raised.value)
    else:
        read_gguf_info(path)


ABORTING = [k for k in KINDS if k.aborts_llama_cpp]


@pytest.mark.parametrize("kind", ABORTING, ids=[k.name for k in ABORTING])
def test_files_that_abort_llama_cpp_are_caught_twice(corpus, kind):
    """The header check refuses these; the llama.cpp probe, run in a throwaway
    process before a model is first used, would catch them if it did not."""
    folder, _ = corpus
    assert kind.expect == "refused"
    reason = probe_with_llama_cpp(folder / f"{kind.name}.gguf")
    assert reason is not None and "crashes" in reason, reason


def test_the_probe_catches_what_the_header_check_misses(corpus, tmp_path, monkeypatch):
    folder, _ = corpus
    monkeypatch.setattr(gguf_info, "_check_model_keys", lambda cursor, metadata: None)
    models = tmp_path / "models"
    models.mkdir()
    for name in ("duplicate-token", "block-count-513", TINY_MODEL_ID):
        (models / f"{name}.gguf").symlink_to((folder / f"{name}.gguf").resolve())
    registry = ModelRegistry(models, tmp_path / "config.json", 8192)
    assert all(record.invalid_reason is None for record in registry.scan().values())
    for name in ("duplicate-token", "block-count-513"):
        assert "crashes" in (registry.get(name).invalid_reason or "")
        assert registry.scan()[name].invalid_reason == registry.get(name).invalid_reason
    assert registry.get(TINY_MODEL_ID).invalid_reason is None


def test_the_engine_survives_every_file(corpus, tmp_path):
    folder, kinds = corpus
    engine = EngineProcess(folder, tmp_path / "config.json", tmp_path / "engine.log")
    outcomes: Counter[str] = Counter()
    try:
        with grpc.insecure_channel(engine.address) as channel:
            stub = engine_pb2_grpc.EngineStub(channel)
            listed = {m.id: m for m in stub.ListModels(pb.ListModelsRequest(), timeout=60).models}
            assert set(kinds) | {TINY_MODEL_ID} == set(listed)
            for name, kind in kinds.items():
                model = listed[name]
                if kind.expect == "refused":
                    assert model.state == pb.MODEL_STATE_INVALID, name
                    assert model.state_reason, name
                else:
                    assert model.state != pb.MODEL_STATE_INVALID, (name, model.state_reason)
            for name, kind in kinds.items():
                request = pb.GenerateRequest(model=name, prompt="Hello é ü 日本 \x00 <s>", max_tokens=2)
                try:
                    list(stub.Generate(request, timeout=120))
                    outcomes["served"] += 1
                    assert kind.expect == "llama.cpp", name
                except grpc.RpcError as exc:
                    info = read_rpc_error(exc)
                    assert exc.code() != grpc.StatusCode.UNAVAILABLE, f"the engine went down on {name}"
                    expected = "MODEL_INVALID" if kind.expect == "refused" else "MODEL_LOAD_FAILED"
                    assert info.reason == expected, (name, info)
                    outcomes[info.reason] += 1
                assert engine.popen.poll() is None, f"the engine died on {name}:\n{engine.log()[-3000:]}"
            # Still serving, and the files llama.cpp refused are listed with why.
            reply = list(stub.Generate(pb.GenerateRequest(model=TINY_MODEL_ID, prompt="Hello", max_tokens=3), timeout=60))
            assert reply[-1].usage.completion_tokens == 3
            after = {m.id: m for m in stub.ListModels(pb.ListModelsRequest(), timeout=60).models}
            for name, kind in kinds.items():
                if kind.expect == "llama.cpp" and after[name].state == pb.MODEL_STATE_FAILED:
                    assert after[name].state_reason
    finally:
        code = engine.stop()
    assert code == 0, engine.log()[-3000:]
    refused = sum(k.expect == "refused" for k in kinds.values())
    log.info(
        "hostile GGUF corpus: %d kinds, %d refused by the header check, %d passed to llama.cpp "
        "(%d refused by it, %d loaded and served), 0 engine crashes",
        len(kinds),
        refused,
        len(kinds) - refused,
        outcomes["MODEL_LOAD_FAILED"],
        outcomes["served"],
    )
    assert outcomes["MODEL_INVALID"] == refused
