"""Shared fixtures: real model files, a real engine, a real `hearth serve`.

Tests under unit/ need no model and no server and are marked ``unit``
(`pytest -m unit` runs them in seconds); the rest are marked ``integration``."""

import os
from pathlib import Path

import pytest

from hearth.default_model import install_default_model
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.instruct_model import install_instruct_model
from tests.helpers.models import TINY_MODEL_ID
from tests.helpers.servers import EngineProcess, HearthServer

# Fixtures of the pull tests (a Hugging Face stand-in and an engine using it).
pytest_plugins = ["tests.helpers.pull_fixtures"]

REPO = Path(__file__).resolve().parent.parent
UNIT_DIR = Path(__file__).resolve().parent / "unit"


def pytest_collection_modifyitems(config, items):
    for item in items:
        unit = UNIT_DIR in Path(str(item.fspath)).resolve().parents
        item.add_marker(pytest.mark.unit if unit else pytest.mark.integration)


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    """The real default model, assembled once per machine into .cache/ (sha256-checked)."""
    path = install_default_model(REPO / ".cache" / "models")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, default_model_path: Path) -> Path:
    """A models folder as a user has one: the default model, a tiny model and a broken file."""
    folder = tmp_path_factory.mktemp("models")
    (folder / default_model_path.name).symlink_to(default_model_path)
    write_tiny_llama(folder / f"{TINY_MODEL_ID}.gguf")
    (folder / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00 this is not a model")
    return folder


@pytest.fixture(scope="session")
def no_config(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("config") / "config.json"


@pytest.fixture(scope="session")
def engine(models_dir: Path, no_config: Path, tmp_path_factory):
    process = EngineProcess(models_dir, no_config, tmp_path_factory.mktemp("logs") / "engine.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def server(models_dir: Path, no_config: Path, tmp_path_factory):
    """One `hearth serve` shared by the API tests."""
    process = HearthServer(models_dir, no_config, tmp_path_factory.mktemp("logs") / "serve.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def instruct_server(tmp_path_factory):
    """A `hearth serve` with the instruct model only, for tests that need a model
    that follows instructions and ends its turn by itself."""
    folder = tmp_path_factory.mktemp("instruct-models")
    path = install_instruct_model(REPO / ".cache" / "models")
    (folder / path.name).symlink_to(path)
    logs = tmp_path_factory.mktemp("instruct-logs")
    process = HearthServer(folder, logs / "config.json", logs / "serve.log")
    yield process
    process.stop()


# Seconds between Anthropic pings while the agent server reads a long prompt (5 by default).
AGENT_PING_INTERVAL = 1.0


@pytest.fixture(scope="session")
def agent_server(tmp_path_factory):
    """A `hearth serve` with the instruct model on the default context and slots
    (coding agents' prompts must fit them), pinging often while it reads a prompt."""
    folder = tmp_path_factory.mktemp("agent-models")
    path = install_instruct_model(REPO / ".cache" / "models")
    (folder / path.name).symlink_to(path)
    logs = tmp_path_factory.mktemp("agent-logs")
    process = HearthServer(
        folder, logs / "config.json", logs / "serve.log", LLM_STREAM_PING_INTERVAL=str(AGENT_PING_INTERVAL)
    )
    yield process
    process.stop()


@pytest.fixture
def openai_client(server):
    import openai

    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def pytest_configure(config):
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
