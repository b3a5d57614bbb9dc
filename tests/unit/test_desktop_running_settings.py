"""The Settings tab's "running now" column: what the server uses, and which saved values a restart would apply."""

import pytest

from hearth.desktop.settings_form import SettingsValues, differing, running_values
from hearth.engine.v1 import engine_pb2 as pb

pytestmark = pytest.mark.unit


def test_running_values_come_from_the_status_and_the_rest_url():
    status = pb.GetStatusResponse(models_dir="/srv/models", gpu_offload=False, keep_alive_seconds=300)
    running = running_values(status, "http://127.0.0.1:8080")
    assert running == {"server_port": "8080", "models_dir": "/srv/models", "use_gpu": "off", "keep_alive": "300"}
    assert running_values(None, "http://127.0.0.1:8080") == {"server_port": "8080"}


def test_only_values_a_restart_would_change_are_marked():
    running = {"server_port": "8080", "models_dir": "/srv/models", "use_gpu": "off", "keep_alive": "300"}
    same = SettingsValues(server_port=8080, models_dir="/srv/models", use_gpu=True, keep_alive=300.0)
    # GPU asked for but not offloading (a CPU build) is not a difference a restart would fix.
    assert differing(same, running) == set()
    saved = SettingsValues(server_port=9090, models_dir="/elsewhere", use_gpu=False, keep_alive=120.0)
    assert differing(saved, running) == {"server_port", "models_dir", "keep_alive"}
    assert differing(saved, {**running, "use_gpu": "on"}) == {"server_port", "models_dir", "keep_alive", "use_gpu"}


def test_one_folder_written_two_ways_is_no_difference(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    running = {"models_dir": str(tmp_path / "models")}
    for written in ("~/models", "~/models/", str(tmp_path / "models" / ".." / "models")):
        assert differing(SettingsValues(models_dir=written), running) == set(), written
    assert differing(SettingsValues(models_dir="~/other"), running) == {"models_dir"}
