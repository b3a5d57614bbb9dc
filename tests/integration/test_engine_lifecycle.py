"""Keep-alive unloading and config-file models, on their own engine."""

import json
import time

import grpc
import httpx

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.models import TINY_MODEL_ID
from tests.helpers.servers import EngineProcess, HearthServer


def test_idle_model_unloads_after_keep_alive(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / f"{TINY_MODEL_ID}.gguf")
    engine = EngineProcess(models, tmp_path / "config.json", tmp_path / "engine.log", LLM_KEEP_ALIVE="1")
    try:
        with grpc.insecure_channel(engine.address) as channel:
            stub = engine_pb2_grpc.EngineStub(channel)
            # Lazy load on first request.
            assert stub.GetModel(pb.GetModelRequest(id=TINY_MODEL_ID)).model.state == pb.MODEL_STATE_UNLOADED
            list(stub.Generate(pb.GenerateRequest(model=TINY_MODEL_ID, prompt="abc", max_tokens=2)))
            assert stub.GetModel(pb.GetModelRequest(id=TINY_MODEL_ID)).model.state == pb.MODEL_STATE_READY
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if stub.GetModel(pb.GetModelRequest(id=TINY_MODEL_ID)).model.state == pb.MODEL_STATE_UNLOADED:
                    break
                time.sleep(0.2)
            assert stub.GetModel(pb.GetModelRequest(id=TINY_MODEL_ID)).model.state == pb.MODEL_STATE_UNLOADED
            # And it loads again when asked.
            final = list(stub.Generate(pb.GenerateRequest(model=TINY_MODEL_ID, prompt="abc", max_tokens=2)))[-1]
            assert final.usage.completion_tokens == 2
    finally:
        engine.stop()
    assert "after 1s idle" in engine.log() or "unloading tiny" in engine.log()


def test_config_file_models_are_served_with_their_limits(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    write_tiny_llama(store / "weights.gguf", context_length=1024)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "id": "my-assistant",
                        "path": str(store / "weights.gguf"),
                        "context_window": 384,
                        "max_output_tokens": 64,
                        "chat_template": "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:",
                    }
                ]
            }
        )
    )
    empty = tmp_path / "models"
    empty.mkdir()
    server = HearthServer(empty, config, tmp_path / "serve.log")
    try:
        card = httpx.get(f"{server.base_url}/v1/models/my-assistant", timeout=10).json()
        assert (card["context_window"], card["max_output_tokens"]) == (384, 64)
        ok = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={"model": "my-assistant", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
            timeout=30,
        )
        assert ok.status_code == 200, ok.text
        # The config's template rendered the chat: the same tokens as that text sent raw.
        raw = httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": "my-assistant", "prompt": "user: hi\nassistant:", "max_tokens": 1},
            timeout=30,
        )
        assert ok.json()["usage"]["prompt_tokens"] == raw.json()["usage"]["prompt_tokens"]
        too_many = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={"model": "my-assistant", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 65},
            timeout=30,
        )
        assert too_many.status_code == 400
        assert too_many.json()["error"]["param"] == "max_tokens"
    finally:
        server.stop()
