"""Ollama's native API (/api/*) of a started `hearth serve`, driven by the
official `ollama` Python client and by plain HTTP."""

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import ollama
import pytest

from tests.helpers.clients import ollama_refusal
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID
from tests.helpers.servers import cancelled_during

GREEDY = {"temperature": 0, "num_predict": 8}
WEEK = "Monday, Tuesday, Wednesday,"
GEMMA_EMBEDDING_SIZE = 640
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def client(server) -> ollama.Client:
    return ollama.Client(host=server.base_url, timeout=180)


def _loaded(client: ollama.Client) -> dict[str, ollama.ProcessResponse.Model]:
    return {m.model: m for m in client.ps().models}


# --- discovery ------------------------------------------------------------------


def test_root_and_version_answer_as_ollama_does(server):
    assert httpx.get(f"{server.base_url}/", timeout=10).text == "Ollama is running"
    assert httpx.head(f"{server.base_url}/", timeout=10).status_code == 200
    version = httpx.get(f"{server.base_url}/api/version", timeout=10).json()["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)


def test_list(client):
    models = {m.model: m for m in client.list().models}
    assert {f"{DEFAULT_MODEL_ID}:latest", f"{TINY_MODEL_ID}:latest"} <= set(models)
    # Files that cannot be used are not offered.
    assert not any(name.startswith("broken") for name in models)
    gemma = models[f"{DEFAULT_MODEL_ID}:latest"]
    assert gemma.size > 200_000_000
    assert gemma.modified_at.year >= 2024
    assert re.fullmatch(r"[0-9a-f]{64}", gemma.digest)
    assert gemma.details.format == "gguf"
    assert gemma.details.family == "gemma3"
    assert gemma.details.families == ["gemma3"]
    assert re.fullmatch(r"2\d\d(\.\d\d)?M", gemma.details.parameter_size)
    assert gemma.details.quantization_level == "Q4_K_M"


@pytest.mark.parametrize("name", [DEFAULT_MODEL_ID, f"{DEFAULT_MODEL_ID}:latest"])
def test_show(client, name):
    shown = client.show(name)
    assert shown.details.family == "gemma3"
    assert shown.details.format == "gguf"
    info = shown.modelinfo
    assert info["general.architecture"] == "gemma3"
    assert info["general.parameter_count"] > 200_000_000
    assert info["gemma3.context_length"] == 32768
    assert "num_ctx 32768" in shown.parameters
    assert "completion" in shown.capabilities
    assert shown.modified_at is not None


def test_unknown_models_are_404_and_never_replaced(client):
    for call in (
        lambda name: client.show(name),
        lambda name: client.chat(model=name, messages=[{"role": "user", "content": "Hi"}]),
        lambda name: client.generate(model=name, prompt="Hi"),
        lambda name: client.embed(model=name, input="Hi"),
    ):
        for name in ("no-such-model", f"{DEFAULT_MODEL_ID}:v2", "gemma3"):
            error = ollama_refusal(call, name)
            assert error.status_code == 404
            assert error.error == f"model '{name}' not found"


# --- chat and generate ------------------------------------------------------------------


def test_chat_not_streamed(client):
    reply = client.chat(
        model=DEFAULT_MODEL_ID, messages=[{"role": "user", "content": "Say hello."}], options=GREEDY, stream=False
    )
    assert reply.model == DEFAULT_MODEL_ID
    assert reply.message.role == "assistant"
    assert reply.message.content
    assert reply.done is True
    assert reply.done_reason in ("stop", "length")
    assert reply.prompt_eval_count > 5
    assert 0 < reply.eval_count <= 8
    assert reply.total_duration >= reply.prompt_eval_duration + reply.eval_duration > 0
    assert reply.created_at.endswith("Z")


def test_chat_streamed_matches_not_streamed(client):
    messages = [{"role": "user", "content": "Name three colours."}]
    # A seed makes the engine evaluate the whole prompt each time rather than
    # reuse a cached prefix, whose logits differ in the last bits.
    options = {**GREEDY, "seed": 7}
    whole = client.chat(model=DEFAULT_MODEL_ID, messages=messages, options=options)
    chunks = list(client.chat(model=DEFAULT_MODEL_ID, messages=messages, options=options, stream=True))
    assert len(chunks) >= 2
    assert all(c.done is False for c in chunks[:-1])
    final = chunks[-1]
    assert final.done is True and final.done_reason in ("stop", "length")
    assert final.message.content == ""
    assert final.eval_count == whole.eval_count
    # Greedy decoding: the same words, whether streamed or not.
    assert "".join(c.message.content for c in chunks) == whole.message.content


def test_generate_raw_continues_the_week(client):
    reply = client.generate(model=DEFAULT_MODEL_ID, prompt=WEEK, raw=True, options=GREEDY)
    assert reply.response.startswith(" Thursday")
    assert reply.done and reply.done_reason == "length"
    assert reply.eval_count == 8


def test_generate_with_logprobs(client):
    reply = client.generate(
        model=DEFAULT_MODEL_ID, prompt=WEEK, raw=True, options={"temperature": 0, "num_predict": 4}, logprobs=True, top_logprobs=2
    )
    assert len(reply.logprobs) == reply.eval_count == 4
    assert "".join(entry.token for entry in reply.logprobs) == reply.response
    for entry in reply.logprobs:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 2
        # Greedy: the chosen token is the most likely one.
        assert entry.top_logprobs[0].token == entry.token


def test_generate_with_template_and_system_streamed(client):
    chunks = list(
        client.generate(model=DEFAULT_MODEL_ID, prompt="Say hello.", system="Reply briefly.", options=GREEDY, stream=True)
    )
    assert chunks[-1].done is True
    assert "".join(c.response for c in chunks)
    assert chunks[-1].prompt_eval_count > 5


def test_num_predict_minus_one_means_no_limit(client):
    reply = client.generate(
        model=DEFAULT_MODEL_ID, prompt=WEEK, raw=True, options={"temperature": 0, "num_predict": -1, "stop": [" Saturday"]}
    )
    assert reply.done_reason == "stop"
    assert " Friday" in reply.response and "Saturday" not in reply.response


def test_chat_with_a_json_schema_format(client):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    reply = client.chat(
        model=DEFAULT_MODEL_ID,
        messages=[{"role": "user", "content": "Invent a person. Answer in JSON with name and age."}],
        format=schema,
        options={"temperature": 0, "num_predict": 64},
    )
    person = json.loads(reply.message.content)
    assert set(person) == {"name", "age"}
    assert isinstance(person["name"], str) and isinstance(person["age"], int)


def test_generate_with_format_json(client):
    # Raw lines of small objects: a base model continues with one more, and
    # the grammar ends the answer when that object closes.
    prompt = '{"colour": "red", "size": 3}\n{"colour": "blue", "size": 5}\n'
    reply = client.generate(
        model=DEFAULT_MODEL_ID, prompt=prompt, raw=True, format="json", options={"temperature": 0, "num_predict": 64}
    )
    assert reply.done_reason == "stop"
    assert isinstance(json.loads(reply.response), dict)


def test_chat_with_tools(client):
    reply = client.chat(
        model=DEFAULT_MODEL_ID,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        options={"temperature": 0, "num_predict": 48},
    )
    assert reply.done and reply.done_reason in ("stop", "length")
    # A base model may answer in words; whatever it calls must be the tool it was given.
    for call in reply.message.tool_calls or []:
        assert call.function.name == "get_weather"
        assert isinstance(call.function.arguments, dict)


def test_chat_history_with_a_tool_call_and_its_result(client):
    messages = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "Sunny, 24 degrees.", "tool_name": "get_weather"},
    ]
    reply = client.chat(model=DEFAULT_MODEL_ID, messages=messages, tools=[WEATHER_TOOL], options=GREEDY)
    assert reply.done
    assert reply.message.content or reply.message.tool_calls
    assert reply.prompt_eval_count > 20


# --- loaded models and keep_alive -------------------------------------------------------


def test_ps_after_a_chat(client, server):
    client.chat(model=DEFAULT_MODEL_ID, messages=[{"role": "user", "content": "Hi"}], options=GREEDY, keep_alive="10m")
    running = _loaded(client)[f"{DEFAULT_MODEL_ID}:latest"]
    assert running.size > 100_000_000
    backend = httpx.get(f"{server.base_url}/health", timeout=10).json()["engine"]["backend"]
    if backend == "cpu":
        assert running.size_vram == 0
    assert running.context_length == 32768
    assert running.details.family == "gemma3"
    now = datetime.now(UTC)
    assert now < running.expires_at <= now + timedelta(minutes=10, seconds=5)


def test_load_and_unload_with_keep_alive(client):
    loaded = client.generate(model=TINY_MODEL_ID, prompt="", keep_alive="5m")
    assert loaded.done and loaded.done_reason == "load"
    assert f"{TINY_MODEL_ID}:latest" in _loaded(client)
    unloaded = client.chat(model=f"{TINY_MODEL_ID}:latest", messages=[], keep_alive=0)
    assert unloaded.done and unloaded.done_reason == "unload"
    assert f"{TINY_MODEL_ID}:latest" not in _loaded(client)


def test_keep_alive_forever_and_zero(client):
    client.generate(model=TINY_MODEL_ID, prompt="", keep_alive=-1)
    forever = _loaded(client)[f"{TINY_MODEL_ID}:latest"]
    assert forever.expires_at.year > 2200
    # keep_alive 0 on a real request: answered, then unloaded.
    client.generate(model=TINY_MODEL_ID, prompt="Hello", raw=True, options={"num_predict": 2}, keep_alive=0)
    deadline = time.monotonic() + 10
    while f"{TINY_MODEL_ID}:latest" in _loaded(client) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"{TINY_MODEL_ID}:latest" not in _loaded(client)


# --- embeddings --------------------------------------------------------------------------


def test_embed_one_and_many(client):
    one = client.embed(model=DEFAULT_MODEL_ID, input="The sky is blue.")
    assert len(one.embeddings) == 1
    many = client.embed(model=DEFAULT_MODEL_ID, input=["The sky is blue.", "Grass is green.", "The sky is blue."])
    assert len(many.embeddings) == 3
    for vector in [*one.embeddings, *many.embeddings]:
        assert len(vector) == GEMMA_EMBEDDING_SIZE
        assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, abs_tol=1e-3)
    assert many.embeddings[0] == pytest.approx(many.embeddings[2], abs=1e-4)
    assert many.embeddings[0] != pytest.approx(many.embeddings[1], abs=1e-2)
    assert many.prompt_eval_count > one.prompt_eval_count > 0
    assert many.total_duration > 0


def test_legacy_embeddings(client):
    vector = client.embeddings(model=DEFAULT_MODEL_ID, prompt="The sky is blue.").embedding
    assert len(vector) == GEMMA_EMBEDDING_SIZE
    assert vector == pytest.approx(client.embed(model=DEFAULT_MODEL_ID, input="The sky is blue.").embeddings[0], abs=1e-4)


# --- errors ------------------------------------------------------------------------------


def test_unsupported_inputs_are_400(client):
    hello = [{"role": "user", "content": "What is in this picture?", "images": [b"\x89PNG\r\n\x1a\n"]}]
    refused = {
        "images": lambda: client.chat(model=DEFAULT_MODEL_ID, messages=hello),
        "think": lambda: client.chat(model=DEFAULT_MODEL_ID, messages=[{"role": "user", "content": "Hi"}], think=True),
        "suffix": lambda: client.generate(model=DEFAULT_MODEL_ID, prompt="def f(", suffix="return 1"),
        "mirostat": lambda: client.generate(model=DEFAULT_MODEL_ID, prompt="Hi", options={"mirostat": 2}),
        "temperature": lambda: client.generate(model=DEFAULT_MODEL_ID, prompt="Hi", options={"temperature": "hot"}),
        "keep_alive": lambda: client.generate(model=DEFAULT_MODEL_ID, prompt="Hi", keep_alive="soon"),
        "Hugging Face": lambda: client.pull("llama3.2"),
    }
    for named, call in refused.items():
        error = ollama_refusal(call)
        assert error.status_code == 400, named
        assert named in error.error


def test_runner_options_and_unknown_keys_are_accepted(client):
    options = {**GREEDY, "num_ctx": 2048, "num_thread": 2, "num_gpu": 0, "use_mmap": True, "some_new_option": 1}
    assert client.generate(model=DEFAULT_MODEL_ID, prompt=WEEK, raw=True, options=options).done


def test_what_hearth_does_not_do_is_501(server):
    for method, path in (("POST", "/api/create"), ("POST", "/api/push"), ("POST", "/api/blobs/sha256:00")):
        response = httpx.request(method, f"{server.base_url}{path}", json={"model": "x"}, timeout=10)
        assert response.status_code == 501
        assert "Hearth does not support" in response.json()["error"]


# --- raw HTTP: framing and error shapes ---------------------------------------------------------


def test_ndjson_framing(server):
    body = {"model": DEFAULT_MODEL_ID, "prompt": WEEK, "raw": True, "options": GREEDY}
    with httpx.stream("POST", f"{server.base_url}/api/generate", json=body, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        raw = response.read().decode()
    assert raw.endswith("\n")
    lines = [json.loads(line) for line in raw.split("\n") if line]
    assert all(not line["done"] for line in lines[:-1]) and lines[-1]["done"]
    assert {"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"} <= set(lines[-1])
    not_streamed = httpx.post(f"{server.base_url}/api/generate", json={**body, "stream": False}, timeout=120)
    assert not_streamed.headers["content-type"] == "application/json"
    assert not_streamed.json()["response"] == "".join(line["response"] for line in lines)


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("POST", "/api/chat", {"messages": []}, 400),
        ("POST", "/api/chat", {"model": DEFAULT_MODEL_ID, "messages": [{"role": "robot", "content": "x"}]}, 400),
        ("POST", "/api/generate", {"model": DEFAULT_MODEL_ID, "prompt": 5}, 400),
        ("POST", "/api/show", {"model": "nothing-here"}, 404),
        ("GET", "/api/no-such-endpoint", None, 404),
    ],
)
def test_errors_under_api_have_ollamas_shape(server, method, path, body, status):
    response = httpx.request(method, f"{server.base_url}{path}", json=body, timeout=30)
    assert response.status_code == status
    error = response.json()
    assert list(error) == ["error"] and isinstance(error["error"], str) and error["error"]


def test_malformed_json_under_api_is_400(server):
    response = httpx.post(
        f"{server.base_url}/api/chat", content=b'{"model": ', headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 400
    assert list(response.json()) == ["error"]


def test_openai_errors_keep_openais_shape(server):
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json={"model": "no-such-model", "messages": []}, timeout=30)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    response = httpx.get(f"{server.base_url}/v1/models/no-such-model", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_cors_preflight_allows_delete_from_local_pages(server):
    response = httpx.options(
        f"{server.base_url}/api/delete",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "DELETE"},
        timeout=10,
    )
    assert response.status_code == 200
    assert "DELETE" in response.headers["access-control-allow-methods"]


def test_stream_disconnect_cancels_generation(server):
    body = {
        "model": DEFAULT_MODEL_ID,
        "messages": [{"role": "user", "content": "Count from 1 to 1000."}],
        "options": {"num_predict": 3000},
    }

    def read_a_little_then_leave():
        with httpx.stream("POST", f"{server.base_url}/api/chat", json=body, timeout=60) as response:
            for n, _ in enumerate(response.iter_lines()):
                if n > 5:
                    break

    cancelled = cancelled_during(server.engine_address, read_a_little_then_leave)
    assert cancelled[-1].completion_tokens < 300
