"""The Models tab's per-model settings in the window under Xvfb: a user opens
a model's settings, a mistake is marked before anything is sent, a setting
the engine refuses says why, and saved settings land in the config entry,
show their memory estimate and apply when the model is loaded next; the
Logs tab then shows the engine's own line about that load."""

import json

import grpc

from hearth.engine.llama.tiny_model import write_tiny_llama
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from tests.helpers.servers import EngineProcess, base_env, free_port
from tests.integration.test_desktop_window import assert_not_blank, run_window

TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"


def test_a_models_own_settings_are_edited_saved_and_applied_from_the_window(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / "tiny.gguf", seed=2, chat_template=TEMPLATE, context_length=4096)
    config = tmp_path / "config.json"
    engine = EngineProcess(models, config, tmp_path / "engine.log", LLM_PARALLEL="4", LLM_CONTEXT_SIZE="4096")
    try:
        script = [
            {"wait": "engine", "timeout": 30},
            {"wait": "on_screen", "item": "models.settings.tiny", "timeout": 20},
            {"click": "models.settings.tiny"},
            {"wait": "on_screen", "item": "model_settings.save", "timeout": 10},
            {"wait": "text", "item": "model_settings.estimate", "contains": "(context 4096)", "timeout": 10},
            # A mistake is marked in its field and nothing is sent.
            {"set": "model_settings.parallel", "value": "0"},
            {"click": "model_settings.save"},
            {"wait": "text", "item": "model_settings.error.parallel", "contains": "between 1 and 64", "timeout": 5},
            # A KV cache this model's heads cannot fill: the engine says why.
            {"set": "model_settings.parallel", "value": "2"},
            {"set": "model_settings.kv_cache_type", "value": "q8_0"},
            {"click": "model_settings.save"},
            {"wait": "text", "item": "model_settings.report", "contains": "multiple of 32", "timeout": 20},
            {"set": "model_settings.kv_cache_type", "value": "f16"},
            {"set": "model_settings.context_window", "value": "1024"},
            {"set": "model_settings.keep_alive", "value": "-1"},
            {"set": "model_settings.system", "value": "Answer briefly."},
            {"set": "model_settings.parameters", "value": "temperature 0.3\nstop ###"},
            {"click": "model_settings.save"},
            {"wait": "text", "item": "model_settings.report", "contains": "Saved the settings of tiny", "timeout": 20},
            {"wait": "text", "item": "model_settings.estimate", "contains": "(context 1024)", "timeout": 20},
            {"screenshot": str(tmp_path / "model_settings.png")},
            {"click": "model_settings.close"},
            {"click": "models.load.tiny"},
            {"wait": "model_state", "model": "tiny", "state": "ready", "timeout": 60},
            # The Logs tab has the engine's line about that load.
            {"tab": "logs"},
            {"set": "logs.filter", "value": "loaded tiny"},
            {"wait": "text", "item": "logs.message.0", "contains": "(context 1024,", "timeout": 20},
            {"screenshot": str(tmp_path / "logs_filtered.png")},
            {"set": "logs.filter", "value": ""},
            {"wait": "item", "item": "logs.message.1", "timeout": 10},
            {"screenshot": str(tmp_path / "logs.png")},
            {"quit": True},
        ]
        env = base_env(models, config, LLM_ENGINE_ADDRESS=engine.address, LLM_SERVER_PORT=str(free_port()))
        run_window(script, tmp_path, env, "--no-start-server")
        with grpc.insecure_channel(engine.address) as channel:
            status = engine_pb2_grpc.EngineStub(channel).GetStatus(pb.GetStatusRequest(), timeout=10)
    finally:
        engine.stop()
    [entry] = json.loads(config.read_text())["models"]
    assert entry["parallel"] == 2 and entry["context_window"] == 1024 and entry["keep_alive"] == -1
    assert entry["kv_cache_type"] == "f16" and entry["system"] == "Answer briefly."
    assert entry["parameters"] == {"temperature": 0.3, "stop": ["###"]}
    [loaded] = status.loaded_models
    assert (loaded.id, loaded.slots, loaded.kv_cells) == ("tiny", 2, 1024) and loaded.expires_in_seconds < 0
    assert_not_blank(tmp_path / "model_settings.png")
    assert_not_blank(tmp_path / "logs.png")
