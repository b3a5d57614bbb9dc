"""The `hearth` command as a user types it."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID
from tests.helpers.servers import base_env, free_port

HEARTH = [sys.executable, "-m", "hearth"]


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(HEARTH + args, env=env, capture_output=True, text=True, timeout=timeout)


def test_models_from_a_running_engine(engine, models_dir, no_config):
    result = run(["models", "--engine-address", engine.address], base_env(models_dir, no_config))
    assert result.returncode == 0, result.stderr
    assert f"engine at {engine.address}" in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert {DEFAULT_MODEL_ID, TINY_MODEL_ID, "broken"} <= set(rows)
    assert "Q4_K_M" in rows[DEFAULT_MODEL_ID] and "builtin:gemma" in rows[DEFAULT_MODEL_ID]
    assert "invalid" in rows["broken"]


def test_models_without_an_engine_reads_the_folder(models_dir, no_config):
    address = f"127.0.0.1:{free_port()}"
    result = run(["models", "--json", "--engine-address", address], base_env(models_dir, no_config))
    assert result.returncode == 0, result.stderr
    models = {m["id"]: m for m in json.loads(result.stdout)}
    assert models[DEFAULT_MODEL_ID]["state"] == "MODEL_STATE_UNLOADED"
    assert models[DEFAULT_MODEL_ID]["architecture"] == "gemma3"
    assert models["broken"]["state"] == "MODEL_STATE_INVALID"


def test_pull_default_installs_a_checked_model(tmp_path, default_model_path, no_config):
    target_dir = tmp_path / "fresh"
    result = run(["pull-default", "--models-dir", str(target_dir)], base_env(target_dir, no_config))
    assert result.returncode == 0, result.stderr
    installed = Path(result.stdout.strip())
    assert installed == target_dir / "gemma-3-270m-q4_k_m.gguf"
    digest = hashlib.sha256(installed.read_bytes()).hexdigest()
    assert digest == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert [p.name for p in target_dir.iterdir()] == [installed.name]


def test_pull_default_if_missing_leaves_a_folder_with_models_alone(tmp_path, no_config):
    folder = tmp_path / "has-models"
    folder.mkdir()
    write_tiny_llama(folder / "mine.gguf")
    result = run(["pull-default", "--if-missing", "--models-dir", str(folder)], base_env(folder, no_config))
    assert result.returncode == 0, result.stderr
    assert [p.name for p in folder.iterdir()] == ["mine.gguf"]


def test_help_lists_the_commands():
    result = subprocess.run(HEARTH + ["--help"], capture_output=True, text=True)
    for command in ("serve", "engine", "adapter", "models", "pull-default"):
        assert command in result.stdout
