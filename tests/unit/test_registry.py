"""Model discovery: the models folder, the config file, served context sizes."""

import json
from pathlib import Path

import pytest

from hearth.engine.errors import ModelNotFound
from hearth.engine.models.registry import ModelRegistry
from tests.helpers.gguf_factory import write_tiny_llama


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / "small.gguf", context_length=1024)
    (models / "junk.gguf").write_bytes(b"not gguf at all, just junk")
    (models / "notes.txt").write_text("not a model")
    (models / ".hidden.gguf").write_bytes(b"partial download")
    return models


def test_discovers_gguf_files_by_name(folder: Path, tmp_path: Path):
    records = ModelRegistry(folder, tmp_path / "absent.json", 8192).scan()
    assert set(records) == {"small", "junk"}
    small = records["small"]
    assert small.invalid_reason is None
    assert small.info.architecture == "llama"
    assert small.file_size == (folder / "small.gguf").stat().st_size
    # The served context is the smaller of the trained one and the limit.
    assert small.context_window == 1024
    assert records["junk"].invalid_reason and "magic" in records["junk"].invalid_reason


def test_context_limit_caps_the_served_context(folder: Path, tmp_path: Path):
    record = ModelRegistry(folder, tmp_path / "absent.json", 512).scan()["small"]
    assert record.context_window == 512
    assert record.max_output_tokens == 512


def test_config_file_declares_models(folder: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_tiny_llama(elsewhere / "x.gguf", context_length=4096)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "models": [
                    {"id": "assistant", "path": "elsewhere/x.gguf", "context_window": 2048, "max_output_tokens": 100},
                    {"id": "small", "path": str(elsewhere / "x.gguf")},
                    {"id": "gone", "path": "/nonexistent/model.gguf"},
                ]
            }
        )
    )
    records = ModelRegistry(folder, config, 8192).scan()
    assistant = records["assistant"]
    assert assistant.path == (elsewhere / "x.gguf").resolve()
    assert (assistant.context_window, assistant.max_output_tokens) == (2048, 100)
    # A declared model wins over a discovered file of the same id.
    assert records["small"].path == elsewhere / "x.gguf"
    assert records["small"].context_window == 4096
    assert "cannot read" in records["gone"].invalid_reason


def test_broken_config_file_is_ignored(folder: Path, tmp_path: Path):
    config = tmp_path / "config.json"
    config.write_text("{not json")
    assert set(ModelRegistry(folder, config, 8192).scan()) == {"small", "junk"}


def test_unknown_id_is_not_found_and_never_a_path(folder: Path, tmp_path: Path):
    registry = ModelRegistry(folder, tmp_path / "absent.json", 8192)
    for model_id in ("nope", "../models/small", str(folder / "small.gguf"), "small.gguf"):
        with pytest.raises(ModelNotFound):
            registry.get(model_id)


def test_changed_file_is_read_again(folder: Path, tmp_path: Path):
    registry = ModelRegistry(folder, tmp_path / "absent.json", 8192)
    assert registry.get("small").context_window == 1024
    write_tiny_llama(folder / "small.gguf", context_length=300)
    assert registry.get("small").context_window == 300
