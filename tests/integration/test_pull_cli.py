"""`hearth pull` as a user types it, with and without an engine, and the
desktop window's Pull box, against the local Hugging Face stand-in."""

import queue
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hearth.engine.v1 import engine_pb2 as pb
from tests.helpers.pull_fixtures import GATED_TOKEN, hub_env, leftovers, sha256
from tests.helpers.servers import HEARTH, base_env, free_port

# The `hearth pull` command.


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(HEARTH + args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli_env(hub, tmp_path):
    """No engine answers at this address: the command pulls into the folder itself."""
    models = tmp_path / "models"
    env = base_env(models, tmp_path / "config.json", **hub_env(hub, tmp_path / "hf"))
    env["LLM_ENGINE_ADDRESS"] = f"127.0.0.1:{free_port()}"
    return env, models


def test_cli_pull_without_an_engine_installs_into_the_folder(cli_env, gguf_bytes):
    env, models = cli_env
    done = run_cli(["pull", "hearth-test/cli-GGUF"], env)
    assert done.returncode == 0, done.stderr
    model_id, path = done.stdout.strip().split("\t")
    assert model_id == "cli-Q4_K_M"
    assert Path(path) == models / "cli-Q4_K_M.gguf"
    assert sha256(Path(path).read_bytes()) == sha256(gguf_bytes["b"])
    assert "downloading cli-Q4_K_M.gguf" in done.stderr  # the progress bar

    failed = run_cli(["pull", "hearth-test/no-such-repo"], env)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "hearth-test/no-such-repo" in failed.stderr.splitlines()[-1]


def test_cli_pull_sends_hf_token(cli_env):
    env, models = cli_env
    refused = run_cli(["pull", "hearth-test/gated-GGUF"], env)
    assert refused.returncode == 1 and "HF_TOKEN" in refused.stderr
    done = run_cli(["pull", "hearth-test/gated-GGUF"], {**env, "HF_TOKEN": GATED_TOKEN})
    assert done.returncode == 0, done.stderr
    assert (models / "gated-Q4_K_M.gguf").is_file()


def test_cli_pull_goes_through_a_running_engine(stub, pull_engine, hub, tmp_path, pull_models_dir):
    env = base_env(tmp_path / "elsewhere", tmp_path / "config.json", **hub_env(hub, tmp_path / "hf"))
    done = run_cli(["pull", "hearth-test/cli-engine-GGUF", "--engine-address", pull_engine.address], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"clieng-Q4_K_M\t{pull_models_dir / 'clieng-Q4_K_M.gguf'}"
    assert not (tmp_path / "elsewhere").exists()  # the engine's folder, not this command's
    assert "clieng-Q4_K_M" in {m.id for m in stub.ListModels(pb.ListModelsRequest()).models}


def test_cli_pull_interrupted_cleans_up(cli_env):
    env, models = cli_env
    process = subprocess.Popen(
        HEARTH + ["pull", "hearth-test/cli-cancel-GGUF"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    hf_cache = Path(env["HF_HOME"])
    while time.monotonic() < deadline and not list(hf_cache.rglob("*.incomplete")):
        time.sleep(0.05)
    assert list(hf_cache.rglob("*.incomplete")), "the download never started"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "cancelled" in stderr
    assert not models.exists() or leftovers(models, "clicancel") == []
    assert list(hf_cache.rglob("*.incomplete")) == []


def test_cli_pull_with_the_hub_unreachable_says_so(cli_env):
    env, models = cli_env
    failed = run_cli(["pull", "hearth-test/cli-GGUF"], {**env, "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1].startswith("error: Cannot reach Hugging Face at http://127.0.0.1:")
    assert not models.exists() or not list(models.iterdir())


# The desktop window's Pull box.


def test_the_desktop_link_pulls_through_the_engine_with_progress(pull_engine, pull_models_dir, gguf_bytes):
    from hearth.desktop import messages as msg
    from hearth.desktop.engine_link import EngineLink

    outbox: queue.Queue = queue.Queue()
    link = EngineLink(pull_engine.address, f"http://127.0.0.1:{free_port()}", outbox)
    progress, ended = [], None
    try:
        link.pull_model("hearth-test/desktop-GGUF")
        while ended is None:
            message = outbox.get(timeout=60)
            if isinstance(message, msg.TaskProgress):
                progress.append(message)
            elif isinstance(message, msg.TaskEnded):
                ended = message
    finally:
        link.close()
    assert ended.ok, ended.detail
    assert ended.detail == "Pulled desktop-Q4_K_M from hearth-test/desktop-GGUF"
    downloading = [p for p in progress if p.label == "Downloading desktop-Q4_K_M.gguf"]
    assert len(downloading) >= 2
    assert downloading[-1].done == downloading[-1].total == len(gguf_bytes["a"])
    assert (pull_models_dir / "desktop-Q4_K_M.gguf").is_file()


def test_a_user_pulls_a_model_from_the_desktop_window(pull_engine, pull_models_dir, tmp_path):
    pytest.importorskip("dearpygui")
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    from tests.integration.test_desktop_window import assert_not_blank, run_window

    shot = tmp_path / "pulling.png"
    script = [
        {"wait": "engine", "timeout": 30},
        {"tab": "models"},
        {"set": "models.pull_reference", "value": "hf.co/hearth-test/window-GGUF:Q4_K_M"},
        {"click": "models.pull"},
        {"wait": "item", "item": "models.task.0", "timeout": 30},  # the pull's progress bar
        {"sleep": 1.0},  # into the download, whose bar shows bytes
        {"screenshot": str(shot)},
        {"wait": "text", "item": "footer", "contains": "Pulled window-Q4_K_M", "timeout": 60},
        {"wait": "model_state", "model": "window-Q4_K_M", "state": "unloaded", "timeout": 30},
        {"wait": "no_tasks", "timeout": 10},
        {"quit": True},
    ]
    env = base_env(
        pull_models_dir,
        tmp_path / "config.json",
        LLM_ENGINE_ADDRESS=pull_engine.address,
        LLM_SERVER_PORT=str(free_port()),
    )
    report, _ = run_window(script, tmp_path, env, "--no-start-server")
    assert "window-Q4_K_M" in {model["id"] for model in report["models"]}
    assert (pull_models_dir / "window-Q4_K_M.gguf").is_file()
    assert_not_blank(shot)
