"""The desktop window's settings: the form's validation and saving, and the
config file's "settings" object as a settings source for both halves."""

import json
import os

import pytest

from hearth.desktop import settings_form
from hearth.settings.adapter import AdapterSettings
from hearth.settings.engine import EngineSettings

# ---------------------------------------------------------------- settings form


GOOD = {
    "server_port": "8080",
    "models_dir": "/tmp/hearth-models",
    "use_gpu": False,
    "context_size": "4096",
    "keep_alive": "60",
    "api_key": "sk-local-123",
    "cors_origins": "http://localhost:3000\nhttps://app.example.com",
}


def test_valid_settings_parse_into_typed_values():
    values, errors = settings_form.validate(GOOD)
    assert errors == {}
    assert values.server_port == 8080 and values.context_size == 4096 and values.keep_alive == 60.0
    assert values.use_gpu is False
    assert values.cors_origins == ["http://localhost:3000", "https://app.example.com"]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("server_port", "70000", "less than or equal to 65535"),
        ("server_port", "", "whole number"),
        ("context_size", "100", "greater than or equal to 256"),
        ("keep_alive", "-1", "greater than or equal to 0"),
        ("keep_alive", "soon", "number"),
        ("models_dir", "  ", "folder"),
        ("api_key", "two words", "spaces"),
        ("cors_origins", "localhost:3000", "not an origin"),
        ("cors_origins", "http://a.example/path", "not an origin"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(field, value, message):
    values, errors = settings_form.validate(GOOD | {field: value})
    assert values is None
    assert set(errors) == {field}
    assert message in errors[field]


def test_a_file_where_a_folder_should_be_is_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    _, errors = settings_form.validate(GOOD | {"models_dir": str(a_file)})
    assert "not a folder" in errors["models_dir"]


def test_saving_keeps_the_models_list_and_other_keys(tmp_path):
    config = tmp_path / "hearth" / "config.json"
    config.parent.mkdir()
    models = [{"id": "mine", "path": "/data/mine.gguf", "context_window": 4096}]
    config.write_text(json.dumps({"models": models, "note": "kept", "settings": {"threads": 4, "api_key": "old"}}))
    values, _ = settings_form.validate(GOOD | {"api_key": ""})
    settings_form.save(config, values)
    saved = json.loads(config.read_text())
    assert saved["models"] == models and saved["note"] == "kept"
    assert saved["settings"] == {
        "threads": 4,  # a setting the panel does not edit stays
        "server_port": 8080,
        "models_dir": "/tmp/hearth-models",
        "use_gpu": False,
        "context_size": 4096,
        "keep_alive": 60.0,
        "cors_origins": ["http://localhost:3000", "https://app.example.com"],
    }  # and the emptied API key is gone
    # No temporary file is left; writers of the file share a lock file beside it.
    assert sorted(p.name for p in config.parent.iterdir()) == [".config.json.lock", "config.json"]


def test_saving_creates_the_file_and_never_replaces_one_it_cannot_read(tmp_path):
    values, _ = settings_form.validate(GOOD)
    fresh = tmp_path / "new" / "config.json"
    settings_form.save(fresh, values)
    assert json.loads(fresh.read_text())["settings"]["api_key"] == "sk-local-123"
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    with pytest.raises(ValueError):
        settings_form.save(broken, values)
    assert broken.read_text() == "[1, 2"


def test_the_save_report_names_what_needs_a_restart_and_what_the_environment_overrides(tmp_path):
    before = settings_form.SettingsValues(models_dir="/a")
    after, _ = settings_form.validate(GOOD)
    changed = settings_form.changed_fields(before, after)
    assert "server_port" in changed and "use_gpu" in changed
    report = settings_form.save_report(tmp_path / "c.json", changed, environ={"LLM_SERVER_PORT": "1"})
    assert "Restart the server for rest port" in report
    assert "LLM_SERVER_PORT" in report
    assert "nothing changed" in settings_form.save_report(tmp_path / "c.json", [], environ={})
    for name in settings_form.FIELDS:
        assert settings_form.RESTART_NOTES[name] and settings_form.LABELS[name]


# ---------------------------------------------------------------- the config file as a settings source


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """A config file with settings, and an environment without LLM_* variables."""
    for name in list(os.environ):
        if name.upper().startswith("LLM_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "models": [{"id": "x", "path": "x.gguf"}],
                "settings": {
                    "server_port": 8088,
                    "use_gpu": False,
                    "context_size": 4096,
                    "keep_alive": 10,
                    "cors_origins": ["http://localhost:3000"],
                    "models_dir": str(tmp_path / "from-file"),
                    "not_a_setting": 1,
                    "config_file": "/elsewhere.json",
                },
            }
        )
    )
    monkeypatch.setenv("LLM_CONFIG_FILE", str(path))
    return path


def test_the_config_file_sets_what_nothing_else_does(config_file, tmp_path):
    engine, adapter = EngineSettings(), AdapterSettings()
    assert engine.use_gpu is False and engine.context_size == 4096 and engine.keep_alive == 10
    assert engine.models_dir == tmp_path / "from-file"
    assert engine.config_file == config_file  # the file cannot move itself
    assert adapter.server_port == 8088 and adapter.cors_origins == ["http://localhost:3000"]
    assert engine.batch_size == 512  # not in the file: the default


def test_environment_beats_the_file_and_flags_beat_both(config_file, monkeypatch):
    monkeypatch.setenv("LLM_SERVER_PORT", "9000")
    monkeypatch.setenv("LLM_CONTEXT_SIZE", "2048")
    assert AdapterSettings().server_port == 9000
    assert EngineSettings().context_size == 2048
    assert AdapterSettings(server_port=9100).server_port == 9100
    assert EngineSettings(context_size=1024).context_size == 1024
    assert EngineSettings(use_gpu=True).use_gpu is True


def test_an_explicit_config_file_is_the_one_read(config_file, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"settings": {"context_size": 512}}))
    assert EngineSettings(config_file=other).context_size == 512


def test_bad_values_in_the_file_are_skipped_not_fatal(config_file, caplog):
    config_file.write_text(json.dumps({"settings": {"context_size": 10, "server_port": "x", "use_gpu": False}}))
    engine, adapter = EngineSettings(), AdapterSettings()
    assert engine.context_size == 0 and adapter.server_port == 11434
    assert engine.use_gpu is False  # the good value still applies
    assert "context_size" in caplog.text


@pytest.mark.parametrize("content", ["", "not json", "[1]", '{"settings": [1]}', '{"models": []}'])
def test_a_missing_or_odd_file_means_defaults(config_file, content):
    config_file.write_text(content)
    assert AdapterSettings().server_port == 11434
    config_file.unlink()
    assert EngineSettings().context_size == 0


def test_the_api_key_saved_by_the_window_reaches_both_halves(config_file, monkeypatch):
    config_file.write_text(json.dumps({"settings": {"api_key": "sk-from-file"}}))
    assert EngineSettings().api_key == "sk-from-file"
    assert AdapterSettings().api_key == "sk-from-file"
    monkeypatch.setenv("LLM_API_KEY", "sk-from-env")
    assert EngineSettings().api_key == "sk-from-env"
