"""Ollama's model management (/api/copy, /api/delete, /api/pull from a
Hugging Face stand-in), each on a `hearth serve` of its own, driven by the
official `ollama` Python client."""

import json
import shutil

import httpx
import ollama
import pytest

from tests.helpers.clients import ollama_refusal
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.hub_standin import HubFile, HubRepo, HubStandIn
from tests.helpers.servers import HearthServer

# --- copy and delete, on a server of their own -------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A local stand-in for Hugging Face with one repository of two quantizations."""
    folder = tmp_path_factory.mktemp("hub-files")
    files = {
        f"tiny-{quant}.gguf": HubFile(write_tiny_llama(folder / f"{quant}.gguf", seed=seed).read_bytes())
        for seed, quant in enumerate(("Q4_K_M", "Q8_0"))
    }
    with HubStandIn() as standin:
        standin.add_repo(HubRepo("hearth-test/tiny-GGUF", files))
        yield standin


@pytest.fixture
def own_server(tmp_path, hub):
    """A `hearth serve` whose models folder and config file tests may change,
    pulling from the hub stand-in: nothing leaves the machine."""
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / "scratch.gguf")
    shutil.copy(models / "scratch.gguf", models / "spare.gguf")
    process = HearthServer(
        models,
        tmp_path / "config.json",
        tmp_path / "serve.log",
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        # Progress every 16 KiB, so that a small file shows some.
        LLM_PULL_CHUNK_BYTES="16384",
    )
    yield process, models
    process.stop()


def test_copy_and_delete(own_server):
    process, models = own_server
    client = ollama.Client(host=process.base_url, timeout=120)
    assert client.copy("scratch:latest", "notes").status == "success"
    listed = {m.model for m in client.list().models}
    assert {"scratch:latest", "notes:latest", "spare:latest"} <= listed
    # The copy answers like its source.
    reply = client.generate(model="notes", prompt="Hello", raw=True, options={"num_predict": 2, "temperature": 0})
    assert reply.done
    assert client.delete("notes:latest").status == "success"
    assert "notes:latest" not in {m.model for m in client.list().models}
    assert (models / "scratch.gguf").exists()
    assert client.delete("spare").status == "success"
    assert not (models / "spare.gguf").exists()
    assert "spare:latest" not in {m.model for m in client.list().models}
    assert ollama_refusal(client.delete, "spare").status_code == 404
    assert ollama_refusal(client.copy, "missing", "other").status_code == 404


def test_pull_from_hugging_face(own_server, hub):
    process, models = own_server
    client = ollama.Client(host=process.base_url, timeout=120)
    progress = list(client.pull("hf.co/hearth-test/tiny-GGUF:Q8_0", stream=True))
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses
    downloading = [p for p in progress if p.status.startswith("pulling ") and p.digest]
    content = hub.repos["hearth-test/tiny-GGUF"].files["tiny-Q8_0.gguf"]
    assert {p.digest for p in downloading} == {f"sha256:{content.sha256}"}
    assert {p.total for p in downloading} == {len(content.content)}
    completed = [p.completed for p in downloading]
    assert completed == sorted(completed) and completed[-1] == len(content.content)
    assert (models / "tiny-Q8_0.gguf").read_bytes() == content.content
    # The model answers to the name it was pulled by, as in Ollama, and to its file's.
    for name in ("hf.co/hearth-test/tiny-GGUF:Q8_0", "tiny-Q8_0:latest"):
        reply = client.generate(model=name, prompt="Hello", raw=True, options={"num_predict": 2})
        assert reply.done
    # Not streamed: one object once it is done.
    assert client.pull("hf.co/hearth-test/tiny-GGUF", stream=False).status == "success"
    listed = {m.model for m in client.list().models}
    assert {"tiny-Q4_K_M:latest", "tiny-Q8_0:latest", "hf.co/hearth-test/tiny-GGUF:Q8_0"} <= listed
    assert "hf.co/hearth-test/tiny-GGUF:latest" in listed
    assert client.show("hf.co/hearth-test/tiny-GGUF").details.quantization_level
    # Pulling again is a no-op that still succeeds.
    assert client.pull("hf.co/hearth-test/tiny-GGUF:Q8_0", stream=False).status == "success"


def test_a_failed_pull_says_why(own_server):
    process, models = own_server
    client = ollama.Client(host=process.base_url, timeout=120)
    for name in ("hf.co/hearth-test/no-such-repo-GGUF", "hf.co/hearth-test/tiny-GGUF:Q2_K"):
        # Streamed, the failure comes as an HTTP error or, once progress has
        # begun, as an {"error": ...} line; the client raises either way.
        streamed = ollama_refusal(lambda name=name: list(client.pull(name, stream=True)))
        assert "hearth-test/" in streamed.error
        error = ollama_refusal(client.pull, name, stream=False)
        assert error.status_code == 404 and "hearth-test/" in error.error
        with httpx.stream("POST", f"{process.base_url}/api/pull", json={"model": name}, timeout=120) as response:
            body = response.read().decode()
        last = json.loads(body.strip().split("\n")[-1])
        assert list(last) == ["error"] and last["error"]
        if response.status_code == 200:
            assert response.headers["content-type"] == "application/x-ndjson"
        else:
            assert response.status_code == 404
    assert sorted(p.name for p in models.iterdir()) == ["scratch.gguf", "spare.gguf"]


def test_model_management_needs_the_api_key(tmp_path):
    """Model management (listed in /openapi.json like every route) is behind the API key like the rest."""
    key = "ollama-test-key-5d1e"
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / "scratch.gguf")
    process = HearthServer(models, tmp_path / "config.json", tmp_path / "serve.log", LLM_API_KEY=key)
    try:
        body = {"model": "scratch", "source": "scratch", "destination": "other"}
        for method, path in (("DELETE", "/api/delete"), ("POST", "/api/copy"), ("POST", "/api/pull"), ("POST", "/api/chat")):
            response = httpx.request(method, f"{process.base_url}{path}", json=body, timeout=30)
            assert response.status_code == 401, path
        assert (models / "scratch.gguf").exists()
        keyed = ollama.Client(host=process.base_url, timeout=60, headers={"Authorization": f"Bearer {key}"})
        assert "scratch:latest" in {m.model for m in keyed.list().models}
        assert ollama_refusal(ollama.Client(host=process.base_url, timeout=60).list).status_code == 401
    finally:
        process.stop()
