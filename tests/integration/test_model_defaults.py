"""A model's own defaults, as Ollama's Modelfile SYSTEM and PARAMETER: the
config entry's system prompt goes before chats that have none, and its
sampling parameters fill what a request leaves unset (a request's own value
wins) — in every API, since the engine applies them; `/api/show` and `hearth
show` list them. Two ids serve one tiny model file: "tuned" with defaults,
"plain" without, so that each default can be compared with asking for it."""

import json
import subprocess
import sys

import httpx
import ollama
import pytest

from hearth.engine.llama.tiny_model import write_tiny_llama
from tests.helpers.servers import HearthServer, base_env

TEMPLATE = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"
SYSTEM = "Answer in five words."
QUESTION = [{"role": "user", "content": "Where is the harbour?"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("defaults")
    models = folder / "models"
    models.mkdir()
    path = write_tiny_llama(folder / "tiny.gguf", seed=4, chat_template=TEMPLATE)
    defaults = {"temperature": 0, "max_tokens": 5, "top_k": 1, "stop": ["zzz"]}
    config = {
        "models": [
            {"id": "tuned", "path": str(path), "system": SYSTEM, "parameters": defaults},
            {"id": "plain", "path": str(path)},
            # Samples freely with a fixed seed, and asks for more than the model may write (cut to its 8).
            {
                "id": "seeded",
                "path": str(path),
                "max_output_tokens": 8,
                "parameters": {"seed": 3, "temperature": 1.5, "top_k": 0, "max_tokens": 500},
            },
            # Out of the range a request may ask for: the entry is refused, as a request would be.
            {"id": "wild", "path": str(path), "parameters": {"temperature": 50}},
        ]
    }
    (folder / "config.json").write_text(json.dumps(config))
    running = HearthServer(models, folder / "config.json", folder / "server.log")
    try:
        yield running
    finally:
        running.stop()


def chat(server, model: str, messages: list[dict], **fields) -> dict:
    body = {"model": model, "messages": messages, **fields}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def answer(body: dict) -> tuple[str, int, int]:
    return body["choices"][0]["message"]["content"], body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]


def test_a_request_that_sets_nothing_gets_the_models_system_prompt_and_parameters(server):
    tuned = chat(server, "tuned", QUESTION)
    asked = chat(server, "plain", [{"role": "system", "content": SYSTEM}, *QUESTION], temperature=0, max_tokens=5)
    assert answer(tuned) == answer(asked) and answer(tuned)[2] == 5
    assert tuned["choices"][0]["finish_reason"] == "length"
    # Greedy by default: the same answer every time, with no seed.
    assert answer(chat(server, "tuned", QUESTION)) == answer(tuned)


def test_the_requests_own_values_win(server):
    own_system = [{"role": "system", "content": "Be brief."}, *QUESTION]
    tuned = chat(server, "tuned", own_system, max_tokens=3)
    asked = chat(server, "plain", own_system, temperature=0, max_tokens=3)
    assert answer(tuned) == answer(asked) and answer(tuned)[2] == 3
    # Explicit sampling (over the default greedy top_k 1) gives what the plain model gives for it.
    sampled = chat(server, "tuned", own_system, temperature=1.5, top_k=0, seed=7, max_tokens=5)
    plain = chat(server, "plain", own_system, temperature=1.5, top_k=0, seed=7, max_tokens=5)
    assert answer(sampled) == answer(plain)


def test_ollamas_chat_gets_them_too_and_show_lists_them(server):
    client = ollama.Client(host=server.base_url, timeout=60)
    reply = client.chat(model="tuned", messages=QUESTION)
    assert (reply.message.content, reply.prompt_eval_count, reply.eval_count) == answer(chat(server, "tuned", QUESTION))
    shown = httpx.post(f"{server.base_url}/api/show", json={"model": "tuned"}, timeout=30).json()
    lines = shown["parameters"].splitlines()
    assert {"temperature 0.0", "num_predict 5", "top_k 1", 'stop "zzz"'} <= set(lines)
    assert shown["system"] == SYSTEM and f"SYSTEM {json.dumps(SYSTEM)}" in shown["modelfile"]
    plain = httpx.post(f"{server.base_url}/api/show", json={"model": "plain"}, timeout=30).json()
    assert "system" not in plain and plain["parameters"].splitlines()[1:] == []


def test_hearth_show_prints_them(server, tmp_path):
    env = base_env(tmp_path, tmp_path / "config.json", LLM_ENGINE_ADDRESS=server.engine_address)
    shown = subprocess.run(
        [sys.executable, "-m", "hearth", "show", "tuned"], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "Parameters" in shown.stdout and "max_tokens          5" in shown.stdout
    assert "System" in shown.stdout and SYSTEM in shown.stdout


def test_ollamas_minus_one_asks_for_a_random_seed_and_no_limit_over_the_models_defaults(server):
    client = ollama.Client(host=server.base_url, timeout=60)

    def generate(model: str, **options) -> tuple[str, int]:
        reply = client.generate(model=model, prompt="Where is the harbour?", raw=True, options=options)
        return reply.response, reply.eval_count

    # The model's seed: the same draw each time, of as many tokens as it may write.
    fixed = generate("seeded")
    assert generate("seeded") == fixed and fixed[1] == 8
    # seed -1: a fresh seed each time (eight tokens drawn at temperature 1.5 from 259 do not repeat).
    drawn = {generate("seeded", seed=-1) for _ in range(3)}
    assert len(drawn) == 3
    # num_predict -1: no limit but the model's, over its default of five tokens.
    _, unlimited = generate("tuned", num_predict=-1)
    _, plain = generate("plain", temperature=0, top_k=1)
    assert unlimited == plain > 5


def test_a_default_no_request_could_ask_for_is_refused_with_its_entry(server):
    listed = {model["id"] for model in httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]}
    assert {"tuned", "plain", "seeded"} <= listed and "wild" not in listed
    assert "ignoring model entry 3 ('wild')" in server.log() and "temperature" in server.log()
