"""A model's own load settings (LM Studio's per-model settings) through the
engine's UpdateModelSettings: kept in its config entry (an entry is made for a
file of the models folder), shown with the memory they would take, applied
on the model's next load (slots, context, KV cache type, keep-alive), and
refused clearly when a value is out of range."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.client import EngineCallError, EngineClient
from hearth.engine.llama.tiny_model import write_tiny_llama
from hearth.engine.v1 import engine_pb2 as pb
from tests.helpers.instruct_model import install_instruct_model
from tests.helpers.servers import EngineProcess, base_env

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("model-settings")
    models = tmp_path / "models"
    models.mkdir()
    # A tiny model (heads of 16 values) and a real one (heads of 64, which a q8_0 cache can hold).
    write_tiny_llama(models / "tiny.gguf", seed=5, chat_template=TEMPLATE, context_length=4096)
    (models / "coder.gguf").symlink_to(install_instruct_model(REPO / ".cache" / "models"))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"settings": {"port": 11434}, "models": []}))
    process = EngineProcess(
        models, config, tmp_path / "engine.log", LLM_PARALLEL="4", LLM_KEEP_ALIVE="300", LLM_CONTEXT_SIZE="4096"
    )
    try:
        with EngineClient(process.address) as client:
            yield client, config, process.address
    finally:
        process.stop()


def loaded(client: EngineClient, model_id: str) -> pb.LoadedModel:
    [model] = [m for m in client.status(timeout=10).loaded_models if m.id == model_id]
    return model


def test_settings_are_saved_shown_and_applied_on_the_next_load(engine):
    client, config, address = engine
    plain = client.get_model("coder", timeout=10)
    assert plain.estimated_memory_bytes > 0 and not plain.settings.HasField("parallel")
    client.load_model("coder", timeout=60)
    assert (loaded(client, "coder").slots, loaded(client, "coder").kv_cells) == (4, 4096)
    f16_kv_bytes = loaded(client, "coder").kv_bytes

    settings = pb.ModelSettings(
        context_window=1024,
        parallel=2,
        kv_cache_type="q8_0",
        keep_alive_seconds=-1,
        system="Answer briefly.",
        parameters={"temperature": "0.0", "stop": '["zzz"]'},
    )
    updated = client.update_model_settings("coder", settings)
    assert updated.settings == settings
    # A smaller context in a q8_0 cache needs less memory: the estimate says so before loading.
    assert 0 < updated.estimated_memory_bytes < plain.estimated_memory_bytes
    assert updated.context_window == 1024 and updated.system == "Answer briefly."
    # The folder's file got an entry of its own; the file's other keys are kept.
    document = json.loads(config.read_text())
    [entry] = document["models"]
    assert document["settings"] == {"port": 11434}
    assert entry["id"] == "coder" and entry["path"].endswith("coder.gguf") and entry["parallel"] == 2
    assert entry["parameters"] == {"temperature": 0.0, "stop": ["zzz"]}

    # `hearth show` tells them, with the estimate.
    env = base_env(config.parent / "models", config, LLM_ENGINE_ADDRESS=address)
    shown = subprocess.run([sys.executable, "-m", "hearth", "show", "coder"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "parallel slots      2" in shown.stdout and "kv cache            q8_0" in shown.stdout
    assert "keep alive          until unloaded" in shown.stdout and "Estimated memory once loaded" in shown.stdout

    # The loaded model keeps what it was loaded with until it is loaded again.
    assert loaded(client, "coder").slots == 4
    client.unload_model("coder", timeout=60)
    client.load_model("coder", timeout=60)
    now = loaded(client, "coder")
    assert (now.slots, now.kv_cells) == (2, 1024) and now.expires_in_seconds < 0
    # A quarter of the cells in q8_0 (34 bytes per 32 values against f16's 64).
    assert now.kv_bytes == f16_kv_bytes // 4 * 34 // 64
    # It serves with the q8_0 cache, and n may now be at most its two slots.
    request = pb.GenerateRequest(model="coder", messages=[pb.ChatMessage(role="user", content="hi")], max_tokens=4, n=2)
    finished = [m for m in client.generate(request) if m.HasField("usage")]
    assert finished and finished[-1].usage.completion_tokens > 0
    with pytest.raises(EngineCallError) as refused:
        list(client.generate(pb.GenerateRequest(model="coder", prompt="hi", max_tokens=4, n=3)))
    assert refused.value.param == "n"

    # Settings left out are removed: the engine's own apply again.
    cleared = client.update_model_settings("coder", pb.ModelSettings())
    assert cleared.settings == pb.ModelSettings() and cleared.context_window == 4096
    [entry] = json.loads(config.read_text())["models"]
    assert set(entry) == {"id", "path"}


@pytest.mark.parametrize(
    "settings, param",
    [
        (pb.ModelSettings(parallel=0), "settings.parallel"),
        (pb.ModelSettings(parallel=65), "settings.parallel"),
        (pb.ModelSettings(kv_cache_type="q2_k"), "settings.kv_cache_type"),
        (pb.ModelSettings(context_window=10), "settings.context_window"),
        (pb.ModelSettings(gpu_layers=-2), "settings.gpu_layers"),
        (pb.ModelSettings(parameters={"temperature": "hot"}), "settings.parameters.temperature"),
        (pb.ModelSettings(parameters={"temperature": "5"}), "settings.parameters.temperature"),
        (pb.ModelSettings(parameters={"stop": '"zzz"'}), "settings.parameters.stop"),
        (pb.ModelSettings(parameters={"tempreture": "0"}), "settings.parameters.tempreture"),
        # The tiny model's heads (16 values) do not fill a q8_0 block of 32.
        (pb.ModelSettings(kv_cache_type="q8_0"), "settings.kv_cache_type"),
    ],
)
def test_a_value_out_of_range_is_refused_and_nothing_is_written(engine, settings, param):
    client, config, _ = engine
    before = config.read_text()
    with pytest.raises(EngineCallError) as refused:
        client.update_model_settings("tiny", settings)
    assert refused.value.code == "INVALID_ARGUMENT" and refused.value.param == param
    assert config.read_text() == before
    with pytest.raises(EngineCallError) as missing:
        client.update_model_settings("nope", pb.ModelSettings(parallel=1))
    assert missing.value.code == "NOT_FOUND"


def test_a_hand_written_entry_the_model_cannot_load_with_fails_saying_why(engine):
    client, config, _ = engine
    before = config.read_text()
    entry = {"id": "tiny", "path": str(config.parent / "models" / "tiny.gguf"), "kv_cache_type": "q4_0"}
    config.write_text(json.dumps({"models": [entry]}))
    try:
        with pytest.raises(EngineCallError) as failed:
            client.load_model("tiny", timeout=60)
        assert "q4_0 KV cache needs attention heads of a multiple of 32" in failed.value.message
    finally:
        config.write_text(before)
    assert client.load_model("tiny", timeout=60).state == pb.MODEL_STATE_READY


def test_the_engines_kv_cache_type_applies_to_models_whose_entry_sets_none(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / "tiny.gguf", seed=5, chat_template=TEMPLATE)
    (models / "coder.gguf").symlink_to(install_instruct_model(REPO / ".cache" / "models"))
    config = tmp_path / "config.json"
    estimates = {}
    for kv_cache_type, flash_attention in (("f16", "auto"), ("q8_0", "auto"), ("q8_0", "off")):
        process = EngineProcess(
            models,
            config,
            tmp_path / f"engine-{kv_cache_type}-{flash_attention}.log",
            LLM_CONTEXT_SIZE="4096",
            LLM_KV_CACHE_TYPE=kv_cache_type,
            LLM_FLASH_ATTENTION=flash_attention,
        )
        try:
            with EngineClient(process.address) as client:
                estimates[kv_cache_type] = client.get_model("coder", timeout=10).estimated_memory_bytes
                if flash_attention == "off":
                    with pytest.raises(EngineCallError) as failed:
                        client.load_model("coder", timeout=60)
                    assert "needs flash attention" in failed.value.message
                    continue
                assert client.load_model("coder", timeout=60).state == pb.MODEL_STATE_READY
                if kv_cache_type == "q8_0":
                    # The tiny model's heads cannot hold it: its load says why; the other model served.
                    with pytest.raises(EngineCallError) as failed:
                        client.load_model("tiny", timeout=60)
                    assert "multiple of 32" in failed.value.message
                    request = pb.GenerateRequest(model="coder", prompt="def add(a, b):", max_tokens=4)
                    assert any(m.text for m in client.generate(request))
        finally:
            process.stop()
    assert estimates["q8_0"] < estimates["f16"]
