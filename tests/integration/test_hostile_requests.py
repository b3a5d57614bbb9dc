"""Requests no client should send: each gets a 4xx in the OpenAI error shape,
quickly, and neither process crashes, hangs or keeps anything afterwards.
Model ids are names, never paths."""

import json
import time
from urllib.parse import quote

import httpx
import psutil
import pytest

from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID

WEEK = [{"role": "user", "content": "Monday, Tuesday,"}]
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MAX_BODY = 8 * 1024 * 1024  # the default LLM_MAX_BODY_BYTES


def _post(server, path: str, content: bytes, content_type: str | None = "application/json") -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.post(f"{server.base_url}{path}", content=content, headers=headers, timeout=30)


def _chat(**fields) -> bytes:
    return json.dumps({"model": TINY_MODEL_ID, "messages": WEEK, "max_tokens": 2, **fields}).encode()


def _assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


# (name, path, raw body, expected param or None where the body has no meaningful param)
BAD_BODIES = [
    ("empty", CHAT, b"", None),
    ("null", CHAT, b"null", None),
    ("number", CHAT, b"12", None),
    ("true", CHAT, b"true", None),
    ("array", COMPLETIONS, b"[]", None),
    ("truncated", CHAT, b'{"model": "tiny", "messages": [', None),
    ("trailing garbage", CHAT, _chat() + b"}}", None),
    ("latin-1", CHAT, _chat().replace(b"Monday", "Mondäy".encode("latin-1")), None),
    ("invalid utf-8 in a string", CHAT, _chat().replace(b"Monday", b"Mon\xffday"), None),
    ("overlong utf-8", CHAT, _chat().replace(b"Monday", b"Mon\xc0\xafday"), None),
    ("deep nesting", CHAT, b'{"model": "tiny", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    ("lone surrogate in model", CHAT, _chat().replace(b'"tiny"', b'"ti\\ud800ny"'), "model"),
    ("lone surrogate in content", CHAT, _chat().replace(b"Monday", b"\\udc00"), "messages[0].content"),
    ("lone surrogate in a stop string", COMPLETIONS, b'{"model": "tiny", "prompt": "a", "stop": ["\\ud83d"]}', "stop[0]"),
    ("lone surrogate on /tokenize", "/tokenize", b'{"model": "tiny", "content": "a\\ud800b"}', "content"),
    ("lone surrogate on /v1/tokenize", "/v1/tokenize", b'{"model": "tiny", "prompt": "a\\udc00"}', "prompt"),
    ("lone surrogate in an embedding input", "/v1/embeddings", b'{"model": "tiny", "input": "\\udbff"}', "input"),
    ("lone surrogate in embedding inputs", "/v1/embeddings", b'{"model": "tiny", "input": ["ok", "x\\ud801"]}', "input[1]"),
    (
        "deeply nested tool call arguments",
        CHAT,
        _chat(
            messages=[
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[" * 100_000 + "]" * 100_000},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
            ]
        ),
        None,
    ),
    ("lone surrogate in a key", CHAT, _chat(metadata={"k": 1}).replace(b'"k"', b'"\\udfff"'), None),
    ("NaN temperature", CHAT, _chat().replace(b'"max_tokens"', b'"temperature": NaN, "max_tokens"'), "temperature"),
    ("Infinity top_p", CHAT, _chat().replace(b'"max_tokens"', b'"top_p": Infinity, "max_tokens"'), "top_p"),
    ("huge float max_tokens", CHAT, _chat().replace(b'"max_tokens": 2', b'"max_tokens": 1e400'), "max_tokens"),
    ("max_tokens beyond the model", CHAT, _chat(max_tokens=10**30), "max_tokens"),
    ("max_tokens just beyond the model", CHAT, _chat(max_tokens=513), "max_tokens"),
    ("negative max_tokens", COMPLETIONS, b'{"model": "tiny", "prompt": "a", "max_tokens": -5}', "max_tokens"),
    ("absurd n", CHAT, _chat(n=10**6), "n"),
    ("n zero", CHAT, _chat(n=0), "n"),
    ("n as text", CHAT, _chat(n="two"), "n"),
    ("too many stop strings", CHAT, _chat(stop=[f"s{i}" for i in range(17)]), "stop"),
    ("a hundred thousand stop strings", CHAT, _chat(stop=["x"] * 100_000), "stop"),
    ("stop of the wrong type", CHAT, _chat(stop={"a": 1}), "stop"),
    ("top_k out of range", CHAT, _chat(top_k=10**12), "top_k"),
    ("seed out of range", CHAT, _chat(seed=2**70), "seed"),
    ("content of the wrong type", CHAT, _chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    ("content part of the wrong type", CHAT, _chat(messages=[{"role": "user", "content": [{"type": 5}]}]), None),
    ("message not an object", CHAT, _chat(messages=["hello"]), "messages[0]"),
    ("too many messages", CHAT, _chat(messages=[{"role": "user", "content": "x"}] * 10_001), "messages"),
    ("model too long", CHAT, _chat(model="m" * 10_000), "model"),
    ("model of the wrong type", CHAT, _chat(model=["tiny"]), "model"),
    ("stream of the wrong type", CHAT, _chat(stream=[1]), "stream"),
    ("stream_options of the wrong type", CHAT, _chat(stream=True, stream_options=[1]), "stream_options"),
    ("prompt of the wrong type", COMPLETIONS, b'{"model": "tiny", "prompt": {"a": 1}}', "prompt"),
    ("empty prompt", COMPLETIONS, b'{"model": "tiny", "prompt": ""}', "prompt"),
    ("token-id prompt", COMPLETIONS, b'{"model": "tiny", "prompt": [1, 2, 3]}', "prompt"),
]


@pytest.mark.parametrize("name, path, body, param", BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
def test_bad_bodies_are_400(server, name: str, path: str, body: bytes, param: str | None):
    started = time.monotonic()
    response = _post(server, path, body)
    _assert_openai_error(response, 400, param)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_other_content_types_are_400(server, content_type: str | None):
    response = _post(server, CHAT, b"model=tiny&messages=hi", content_type)
    _assert_openai_error(response, 400)


def test_bodies_over_the_limit_are_413(server):
    big = b'{"model": "tiny", "prompt": "' + b"a" * MAX_BODY + b'"}'
    _assert_openai_error(_post(server, COMPLETIONS, big), 413)

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        yield b'{"model": "tiny", "prompt": "'
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = httpx.post(
        f"{server.base_url}{COMPLETIONS}", content=chunks(), headers={"content-type": "application/json"}, timeout=60
    )
    _assert_openai_error(response, 413)
    # Just under the limit is read and answered.
    under = b'{"model": "tiny", "prompt": "a", "max_tokens": 1, "user": "' + b"u" * (MAX_BODY - 100) + b'"}'
    assert len(under) <= MAX_BODY
    assert _post(server, COMPLETIONS, under).status_code == 200


def test_model_ids_are_never_paths(server, models_dir):
    """An id that names a file outside the models folder, or a file name, gets the same 404
    as an id that names nothing; nothing outside the folder is read."""
    outside = models_dir.parent / "outside-the-models-folder"
    outside.mkdir(exist_ok=True)
    write_tiny_llama(outside / "secret.gguf")
    relative = f"../{outside.name}/secret"
    existing = [relative, f"{relative}.gguf", str(outside / "secret.gguf"), str(outside / "secret"), f"{TINY_MODEL_ID}.gguf"]
    missing = [f"../{outside.name}/nothing", str(outside / "nothing.gguf"), "nothing.gguf"]
    answers = {}
    for model in existing + missing:
        chat = httpx.post(
            f"{server.base_url}{CHAT}", json={"model": model, "messages": WEEK, "max_tokens": 1}, timeout=30
        )
        error = _assert_openai_error(chat, 404, "model")
        assert error["code"] == "model_not_found"
        retrieved = httpx.get(f"{server.base_url}/v1/models/{quote(model, safe='')}", timeout=30)
        assert _assert_openai_error(retrieved, 404, "model")["code"] == "model_not_found"
        answers[model] = (chat.json()["error"]["message"].replace(model, "<id>"), retrieved.json()["error"]["message"].replace(model, "<id>"))
    assert len(set(answers.values())) == 1, answers
    # Encoded traversal in the URL path is a name too.
    encoded = httpx.get(f"{server.base_url}/v1/models/%2e%2e%2f{outside.name}%2fsecret", timeout=30)
    assert _assert_openai_error(encoded, 404, "model")["code"] == "model_not_found"
    listed = {m["id"] for m in httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]}
    assert not any("secret" in m or "/" in m for m in listed)


def test_nothing_crashed_hung_or_leaked(server):
    """After a burst of bad requests: same processes, quick answers, no request left
    running in the engine, and the adapter's memory about where it was."""
    serve = psutil.Process(server.pid)
    engine_before = server.engine_pid()

    def burst():
        for name, path, body, _param in BAD_BODIES:
            if name not in ("deep nesting", "a hundred thousand stop strings", "too many messages"):
                assert _post(server, path, body).status_code == 400

    burst()
    rss_before = serve.memory_info().rss
    for _ in range(5):
        burst()
    growth = serve.memory_info().rss - rss_before
    assert growth < 30 * 2**20, f"the adapter grew by {growth / 2**20:.1f} MiB over {5 * len(BAD_BODIES)} bad requests"
    assert server.engine_pid() == engine_before
    assert server.popen.poll() is None
    started = time.monotonic()
    ok = httpx.post(
        f"{server.base_url}{COMPLETIONS}", json={"model": DEFAULT_MODEL_ID, "prompt": "Hello", "max_tokens": 2}, timeout=60
    )
    assert ok.status_code == 200
    assert time.monotonic() - started < 30
    health = httpx.get(f"{server.base_url}/health", timeout=10).json()
    assert all(m["active_requests"] == 0 for m in health["engine"]["loaded_models"])
