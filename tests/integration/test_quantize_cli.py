"""`hearth quantize` as a user runs it: an F32 model becomes a new Q8_0 (or
Q4_K_M) model beside it, which the running engine lists and serves at once,
while the source stays byte for byte; types the source cannot become are
refused before anything is written."""

import hashlib
import subprocess
import sys

import httpx
import pytest

from hearth.engine.llama.tiny_model import write_tiny_llama
from tests.helpers.servers import HearthServer, base_env, free_port

HEARTH = [sys.executable, "-m", "hearth"]
TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("quantize")
    models = root / "models"
    models.mkdir()
    write_tiny_llama(models / "tiny-f32.gguf", seed=5, chat_template=TEMPLATE)
    return root


@pytest.fixture(scope="module")
def server(folder):
    running = HearthServer(folder / "models", folder / "config.json", folder / "server.log")
    try:
        yield running
    finally:
        running.stop()


def hearth(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(HEARTH + args, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_quantized_copy_is_listed_and_served_and_the_source_is_untouched(folder, server):
    env = base_env(folder / "models", folder / "config.json", LLM_ENGINE_ADDRESS=server.engine_address)
    source = folder / "models" / "tiny-f32.gguf"
    before = digest(source)
    made = hearth(["quantize", "tiny-f32", "--type", "q8_0"], env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.split("\t")[0] == "tiny-q8_0" and "quantizing to Q8_0" in made.stderr
    assert digest(source) == before
    cards = {m["id"]: m for m in httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]}
    assert cards["tiny-q8_0"]["quantization"] == "Q8_0" and cards["tiny-f32"]["quantization"] == "F32"
    body = {"model": "tiny-q8_0", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    reply = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] > 0
    # k-quants on tensors too small for them fall back as llama.cpp decides; the file is still a Q4_K_M model.
    named = hearth(["quantize", "tiny-f32", "--type", "Q4_K_M", "--as", "tiny-small"], env)
    assert named.returncode == 0, named.stderr
    assert (folder / "models" / "tiny-small.gguf").exists()
    # Never over an existing model, and nothing half-written is left.
    again = hearth(["quantize", "tiny-f32", "--type", "Q8_0"], env)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert sorted(p.name for p in (folder / "models").iterdir()) == [
        "tiny-f32.gguf",
        "tiny-q8_0.gguf",
        "tiny-small.gguf",
    ]


@pytest.mark.parametrize(
    "args, says",
    [
        (["tiny-f32", "--type", "IQ2_XS"], "importance matrix"),
        (["tiny-f32", "--type", "Q9_9"], "Unknown quantization type"),
        (["tiny-f32", "--type", "F32"], "Unknown quantization type"),
        (["tiny-q8_0", "--type", "Q4_0"], "--allow-requantize"),
        (["tiny-q8_0", "--type", "F16"], "cannot become F16"),
        (["tiny-q8_0", "--type", "Q8_0"], "is Q8_0 already"),
        (["nope", "--type", "Q4_0"], "does not exist"),
        (["tiny-f32", "--type", "Q4_0", "--as", "../escape"], "cannot name a model file"),
    ],
)
def test_what_cannot_be_made_is_refused_clearly(folder, server, args, says):
    env = base_env(folder / "models", folder / "config.json", LLM_ENGINE_ADDRESS=server.engine_address)
    if not (folder / "models" / "tiny-q8_0.gguf").exists():
        assert hearth(["quantize", "tiny-f32", "--type", "Q8_0"], env).returncode == 0
    listed = sorted(p.name for p in (folder / "models").iterdir())
    refused = hearth(["quantize", *args], env)
    assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    assert sorted(p.name for p in (folder / "models").iterdir()) == listed


def test_without_an_engine_it_works_on_the_folder(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_llama(models / "alone.gguf", seed=6)
    env = base_env(models, tmp_path / "config.json", LLM_ENGINE_ADDRESS=f"127.0.0.1:{free_port()}")
    made = hearth(["quantize", "alone", "--type", "Q8_0"], env)
    assert made.returncode == 0, made.stderr
    assert (models / "alone-q8_0.gguf").exists()
    requantized = hearth(["quantize", "alone-q8_0", "--type", "Q4_0", "--allow-requantize"], env)
    assert requantized.returncode == 0, requantized.stderr
    assert (models / "alone-q4_0.gguf").exists()
