"""The OpenAI REST API of a started `hearth serve`, driven by the clients
people use: the openai SDK, LangChain, and plain HTTP."""

import json

import httpx
import openai
import pytest

from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID

WEEK = [{"role": "user", "content": "Monday, Tuesday, Wednesday,"}]


def test_models_list(openai_client):
    models = {m.id: m for m in openai_client.models.list()}
    assert {DEFAULT_MODEL_ID, TINY_MODEL_ID} <= set(models)
    # Files that cannot be used are not offered.
    assert "broken" not in models
    gemma = models[DEFAULT_MODEL_ID]
    assert gemma.object == "model"
    assert gemma.owned_by == "hearth"
    assert gemma.created > 1.6e9
    assert gemma.context_window == 32768  # its trained context
    assert gemma.max_output_tokens == 32768


def test_model_retrieve_and_unknown(openai_client):
    assert openai_client.models.retrieve(DEFAULT_MODEL_ID).id == DEFAULT_MODEL_ID
    with pytest.raises(openai.NotFoundError) as raised:
        openai_client.models.retrieve("no-such-model")
    assert raised.value.body["code"] == "model_not_found"


def test_chat_completion(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=[{"role": "system", "content": "Reply briefly."}, {"role": "user", "content": "Say hello."}],
        max_tokens=12,
        temperature=0,
    )
    assert reply.id.startswith("chatcmpl-")
    assert reply.object == "chat.completion"
    assert reply.model == DEFAULT_MODEL_ID
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 10
    assert 0 < reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_completion_stream(openai_client):
    stream = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID, messages=WEEK, max_tokens=10, temperature=0, stream=True
    )
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].choices[0].finish_reason == "length"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    full = openai_client.chat.completions.create(model=DEFAULT_MODEL_ID, messages=WEEK, max_tokens=10, temperature=0)
    assert text == full.choices[0].message.content


def test_stream_include_usage(openai_client):
    chunks = list(
        openai_client.chat.completions.create(
            model=DEFAULT_MODEL_ID,
            messages=WEEK,
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_raw_sse_format(server):
    body = {"model": DEFAULT_MODEL_ID, "messages": WEEK, "max_tokens": 4, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"][0]["delta"] == {}
    assert payloads[-1]["choices"][0]["finish_reason"] == "length"
    # Without stream_options.include_usage, chunks carry no usage field at all.
    assert all("usage" not in p for p in payloads)


def test_completions(openai_client):
    reply = openai_client.completions.create(
        model=DEFAULT_MODEL_ID, prompt="Monday, Tuesday, Wednesday,", max_tokens=6, temperature=0
    )
    assert reply.object == "text_completion"
    assert "Thursday" in reply.choices[0].text
    assert reply.usage.completion_tokens == 6
    streamed = openai_client.completions.create(
        model=DEFAULT_MODEL_ID, prompt="Monday, Tuesday, Wednesday,", max_tokens=6, temperature=0, stream=True
    )
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == reply.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_completions_default_max_tokens_is_openais_16(openai_client):
    reply = openai_client.completions.create(model=DEFAULT_MODEL_ID, prompt="Once upon a time", temperature=0)
    assert reply.usage.completion_tokens <= 16


def test_unknown_model_is_404_and_never_replaced(openai_client):
    with pytest.raises(openai.NotFoundError) as raised:
        openai_client.chat.completions.create(model="gpt-4o", messages=WEEK)
    error = raised.value.body
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert error["type"] == "invalid_request_error"
    assert "gpt-4o" in error["message"]


def test_missing_field_is_400_with_param(server):
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json={"model": DEFAULT_MODEL_ID}, timeout=30)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Missing required parameter: 'messages'",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "missing_required_parameter",
        }
    }


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": DEFAULT_MODEL_ID, "messages": WEEK, "temperature": "hot"}, "temperature"),
        ({"model": DEFAULT_MODEL_ID, "messages": WEEK, "temperature": 3}, "temperature"),
        ({"model": DEFAULT_MODEL_ID, "messages": [{"role": "user"}], "max_tokens": -1}, "max_tokens"),
        ({"model": DEFAULT_MODEL_ID, "messages": [{"role": "alien", "content": "x"}]}, "messages[0].role"),
        ({"model": DEFAULT_MODEL_ID, "messages": []}, "messages"),
        ({"model": DEFAULT_MODEL_ID, "messages": WEEK, "max_tokens": 100000}, "max_tokens"),
        ({"model": DEFAULT_MODEL_ID, "messages": WEEK, "n": 5}, "n"),
    ],
)
def test_bad_values_are_400_naming_the_param(server, body: dict, param: str):
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b'"a string"', b"\xff\xfe"])
def test_malformed_bodies_are_400(server, payload: bytes):
    response = httpx.post(
        f"{server.base_url}/v1/chat/completions", content=payload, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_context_length_exceeded(openai_client):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client.chat.completions.create(
            model=TINY_MODEL_ID, messages=[{"role": "user", "content": "word " * 600}], max_tokens=5
        )
    assert raised.value.body["code"] == "context_length_exceeded"
    assert raised.value.body["param"] == "messages"


def test_what_real_clients_send_is_accepted(server):
    body = {
        "model": DEFAULT_MODEL_ID,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Monday, Tuesday,"}, {"type": "text", "text": "Wednesday,"}]},
        ],
        "max_completion_tokens": 3,
        "temperature": 0,
        "user": "alice",
        "metadata": {"app": "test"},
        "store": False,
        "parallel_tool_calls": False,
        "some_vendor_extension": {"anything": True},
    }
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] <= 3


def test_stop_sequences(openai_client):
    full = openai_client.completions.create(model=DEFAULT_MODEL_ID, prompt="Monday, Tuesday, Wednesday,", max_tokens=8, temperature=0)
    text = full.choices[0].text
    cut = openai_client.completions.create(
        model=DEFAULT_MODEL_ID, prompt="Monday, Tuesday, Wednesday,", max_tokens=8, temperature=0, stop=["Friday"]
    )
    assert "Friday" in text
    assert cut.choices[0].text == text[: text.index("Friday")]
    assert cut.choices[0].finish_reason == "stop"


def test_unknown_path_and_method(server):
    response = httpx.get(f"{server.base_url}/v1/nothing-here", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"
    response = httpx.get(f"{server.base_url}/v1/chat/completions", timeout=10)
    assert response.status_code == 405


def test_health(server):
    response = httpx.get(f"{server.base_url}/health", timeout=10)
    assert response.status_code == 200
    engine = response.json()["engine"]
    assert engine["backend"] == "cpu"
    assert engine["llama_cpp_python_version"] == "0.3.36"


def test_cors_allows_local_pages_only(server):
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{server.base_url}/v1/chat/completions",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            timeout=10,
        )

    assert preflight("http://localhost:3000").headers.get("access-control-allow-origin") == "http://localhost:3000"
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers


def test_langchain_chat_openai(server):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model=DEFAULT_MODEL_ID, base_url=f"{server.base_url}/v1", api_key="unused", temperature=0, max_tokens=8, max_retries=0
    )
    reply = llm.invoke("Monday, Tuesday, Wednesday,")
    assert reply.content
    assert reply.usage_metadata["output_tokens"] <= 8
    streamed = "".join(chunk.content for chunk in llm.stream("Monday, Tuesday, Wednesday,"))
    assert streamed == reply.content
