"""Anthropic's Messages API driven by the official `anthropic` SDK against a
started `hearth serve` with the instruct model: answers, streams, tool round
trips, count_tokens and errors in Anthropic's shape."""

import json
import time
import uuid

import anthropic
import httpx
import jsonschema_rs
import pytest

from tests.helpers.models import INSTRUCT_MODEL_ID

MODEL = INSTRUCT_MODEL_ID
GREEDY = {"temperature": 0}  # anthropic 2.x takes no temperature argument: it goes in extra_body
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def client(instruct_server):
    return anthropic.Anthropic(base_url=instruct_server.base_url, api_key="unused", max_retries=0, timeout=120)


def test_a_message_ends_its_turn_and_counts_its_tokens(client):
    # max_tokens is a cap (Claude Code sends 32000), clamped to what the model can write.
    reply = client.messages.create(
        model=MODEL,
        max_tokens=32000,
        messages=[{"role": "user", "content": "Say hello in one short sentence."}],
        extra_body=GREEDY,
    )
    assert reply.type == "message" and reply.role == "assistant" and reply.id.startswith("msg_")
    assert reply.stop_reason == "end_turn"
    assert [block.type for block in reply.content] == ["text"] and reply.content[0].text.strip()
    assert reply.usage.input_tokens > 0 and 0 < reply.usage.output_tokens < 200


def test_max_tokens_cuts_with_max_tokens(client):
    reply = client.messages.create(
        model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Count from one to fifty."}], extra_body=GREEDY
    )
    assert reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 3


def test_a_stream_is_what_the_sdk_assembles(client):
    request = dict(
        model=MODEL,
        max_tokens=60,
        system=[{"type": "text", "text": "You answer briefly.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Name a colour."}],
        extra_body=GREEDY,
    )
    with client.messages.stream(**request) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces and "".join(pieces) == final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    # The same request unstreamed answers the same.
    assert client.messages.create(**request).content[0].text == final.content[0].text


def test_raw_events_come_in_anthropics_order(instruct_server):
    body = {
        "model": MODEL,
        "max_tokens": 20,
        "stream": True,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    with httpx.stream("POST", f"{instruct_server.base_url}/v1/messages?beta=true", json=body, timeout=60) as response:
        lines = [line for line in response.iter_lines() if line]
    names = [line[7:] for line in lines if line.startswith("event: ")]
    payloads = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert [p["type"] for p in payloads] == names
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert payloads[-2]["usage"]["output_tokens"] > 0 and payloads[-2]["delta"]["stop_reason"]


def test_a_stop_sequence_is_named(client):
    reply = client.messages.create(
        model=MODEL,
        max_tokens=60,
        stop_sequences=["3"],
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        extra_body=GREEDY,
    )
    assert reply.stop_reason == "stop_sequence" and reply.stop_sequence == "3"
    assert "3" not in reply.content[0].text and "2" in reply.content[0].text
    with client.messages.stream(
        model=MODEL,
        max_tokens=60,
        stop_sequences=["4", "3"],
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        extra_body=GREEDY,
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "3"


def test_a_tool_round_trip(client):
    ask = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = client.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=ask,
        extra_body=GREEDY,
    )
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    jsonschema_rs.validate(WEATHER["input_schema"], calls[0].input)
    history = ask + [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": calls[0].id, "content": "Sunny, 21 degrees"},
                {"type": "text", "text": "Using that result, describe the weather in Oslo in one sentence."},
            ],
        },
    ]
    # The result is read: asked not to call again, the model answers from it.
    second = client.messages.create(
        model=MODEL, max_tokens=200, tools=[WEATHER], tool_choice={"type": "none"}, messages=history, extra_body=GREEDY
    )
    assert second.stop_reason == "end_turn"
    assert "21" in second.content[0].text or "sunny" in second.content[0].text.lower()


def test_a_streamed_tool_call_arrives_as_input_json(client):
    with client.messages.stream(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        extra_body=GREEDY,
    ) as stream:
        final = stream.get_final_message()
    calls = [block for block in final.content if block.type == "tool_use"]
    assert final.stop_reason == "tool_use" and calls and calls[0].name == "get_weather"
    jsonschema_rs.validate(WEATHER["input_schema"], calls[0].input)


def test_what_claude_code_sends_is_accepted(instruct_server):
    # A system message inside messages, system blocks with cache_control, thinking,
    # metadata, context_management, a server tool, the beta header and ?beta=true.
    body = {
        "model": MODEL,
        "max_tokens": 32000,
        "temperature": 0,
        "system": [{"type": "text", "text": "You are a coding assistant.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "system", "content": "Answer in one line."},
            {"role": "user", "content": [{"type": "text", "text": "Say ok.", "cache_control": {"type": "ephemeral"}}]},
        ],
        "tools": [WEATHER, {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        "thinking": {"type": "adaptive"},
        "metadata": {"user_id": "someone"},
        "context_management": {"edits": []},
        "output_config": {"effort": "low"},
    }
    response = httpx.post(
        f"{instruct_server.base_url}/v1/messages?beta=true",
        json=body,
        headers={"anthropic-beta": "claude-code-20250219", "anthropic-version": "2023-06-01"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-hearth-tools-left-out"] == "web_search"
    assert response.json()["stop_reason"] in ("end_turn", "tool_use")


def test_count_tokens_counts_the_rendered_prompt(client):
    short = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    longer = client.messages.count_tokens(
        model=MODEL, system="You are terse.", messages=[{"role": "user", "content": "Hi " * 50}]
    )
    assert 0 < short.input_tokens < longer.input_tokens
    # The same count a generation reports for the same prompt.
    reply = client.messages.create(
        model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "Hi"}], extra_body=GREEDY
    )
    assert reply.usage.input_tokens + reply.usage.cache_read_input_tokens == short.input_tokens


def test_count_tokens_counts_the_tools_the_model_is_shown(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    bare = client.messages.count_tokens(model=MODEL, messages=messages)
    with_tools = client.messages.count_tokens(model=MODEL, messages=messages, tools=[WEATHER])
    assert with_tools.input_tokens > bare.input_tokens + 20
    # tool_choice none shows the model no tools, so they count for nothing.
    hidden = client.messages.count_tokens(model=MODEL, messages=messages, tools=[WEATHER], tool_choice={"type": "none"})
    assert hidden.input_tokens == bare.input_tokens
    reply = client.messages.create(model=MODEL, max_tokens=1, messages=messages, tools=[WEATHER], extra_body=GREEDY)
    assert reply.usage.input_tokens + reply.usage.cache_read_input_tokens == with_tools.input_tokens


def test_a_prompt_too_long_is_said_in_anthropics_words(client):
    """Claude Code compacts the conversation when it reads "prompt is too long"."""
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "word " * 40000}])
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert raised.value.body["error"]["message"].startswith("prompt is too long: ")


def test_pings_keep_a_stream_alive_while_a_long_prompt_is_read(agent_server):
    """The stream starts at once; pings follow every few seconds (one here) until the first token."""
    from tests.conftest import AGENT_PING_INTERVAL

    # About 2,500 tokens no cache holds (the nonce comes first).
    text = f"{uuid.uuid4()} " + " ".join(f"Line {i}: the quick brown fox jumps over the lazy dog." for i in range(200))
    body = {
        "model": MODEL,
        "max_tokens": 5,
        "stream": True,
        "temperature": 0,
        "messages": [{"role": "user", "content": text + "\nSay ok."}],
    }
    started = time.monotonic()
    seen: list[tuple[float, str]] = []
    with httpx.stream("POST", f"{agent_server.base_url}/v1/messages", json=body, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                seen.append((time.monotonic() - started, line[7:]))
    names = [name for _, name in seen]
    first_block = names.index("content_block_start")
    pings = [at for at, name in seen[:first_block] if name == "ping"]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    # The prompt took seconds; the client heard from the server throughout.
    reading = seen[first_block][0]
    assert reading > 3 * AGENT_PING_INTERVAL, reading
    gaps = [b - a for a, b in zip([0.0, *pings], [*pings, reading])]
    assert len(pings) >= 3 and max(gaps) < 2.5 * AGENT_PING_INTERVAL, seen[: first_block + 1]


@pytest.mark.parametrize(
    "call, error_type, status",
    [
        (
            lambda c: c.messages.create(
                model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            ),
            "not_found_error",
            404,
        ),
        (
            lambda c: c.messages.create(model=MODEL, max_tokens=0, messages=[{"role": "user", "content": "x"}]),
            "invalid_request_error",
            400,
        ),
        (lambda c: c.messages.create(model=MODEL, max_tokens=5, messages=[]), "invalid_request_error", 400),
        (
            lambda c: c.messages.create(
                model=MODEL,
                max_tokens=5,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
                        ],
                    }
                ],
            ),
            "invalid_request_error",
            400,
        ),
        (
            lambda c: c.messages.create(
                model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}], stop_sequences=["s"] * 17
            ),
            "invalid_request_error",
            400,
        ),
    ],
    ids=["unknown-model", "zero-max-tokens", "no-messages", "image", "too-many-stops"],
)
def test_errors_are_in_anthropics_shape(client, call, error_type, status):
    with pytest.raises(anthropic.APIStatusError) as raised:
        call(client)
    assert raised.value.status_code == status
    body = raised.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type and body["error"]["message"]


def test_a_lone_surrogate_is_an_anthropic_400(instruct_server):
    body = b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x\\ud800"}]}'
    response = httpx.post(
        f"{instruct_server.base_url}/v1/messages",
        content=body,
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "messages[0].content" in response.json()["error"]["message"]


def test_unknown_paths_under_messages_are_anthropic_404s(instruct_server):
    response = httpx.get(f"{instruct_server.base_url}/v1/messages/nope", timeout=10)
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
