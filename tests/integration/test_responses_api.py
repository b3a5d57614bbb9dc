"""OpenAI's Responses API driven by the openai SDK's `client.responses`
against a started `hearth serve` with the instruct model: answers, typed
stream events, function-call round trips, strict JSON, stored responses
(previous_response_id, retrieve, input_items, delete) and errors."""

import json

import httpx
import jsonschema_rs
import openai
import pytest

from tests.helpers.models import INSTRUCT_MODEL_ID

MODEL = INSTRUCT_MODEL_ID
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def client(instruct_server):
    return openai.OpenAI(base_url=f"{instruct_server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_a_response_with_instructions(client):
    response = client.responses.create(
        model=MODEL, instructions="Answer in one short sentence.", input="Say hello.", temperature=0
    )
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output[0].type == "message" and response.output_text.strip()
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_max_output_tokens_ends_incomplete(client):
    response = client.responses.create(
        model=MODEL, input="Count from one to fifty.", max_output_tokens=3, temperature=0
    )
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 3


def test_stream_events_in_order_with_rising_sequence_numbers(client):
    request = dict(model=MODEL, input=[{"role": "user", "content": "Name a colour."}], temperature=0)
    events = list(client.responses.create(stream=True, **request))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    completed = events[-1].response
    assert deltas == completed.output_text == events[-4].text
    assert completed.output_text == client.responses.create(**request).output_text


def test_a_function_call_round_trip(client):
    ask = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = client.responses.create(model=MODEL, input=ask, tools=[WEATHER], tool_choice="required", temperature=0)
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    jsonschema_rs.validate(WEATHER["parameters"], json.loads(calls[0].arguments))
    history = (
        ask
        + [item.model_dump(exclude_none=True) for item in first.output]
        + [
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 degrees"},
            {"role": "user", "content": "Using that result, describe the weather in Oslo in one sentence."},
        ]
    )
    second = client.responses.create(model=MODEL, input=history, tools=[WEATHER], tool_choice="none", temperature=0)
    assert second.status == "completed"
    assert "21" in second.output_text or "sunny" in second.output_text.lower()


def test_streamed_function_call_events(client):
    events = list(
        client.responses.create(
            model=MODEL,
            input="Weather in Lima?",
            tools=[WEATHER],
            tool_choice={"type": "function", "name": "get_weather"},
            stream=True,
            temperature=0,
        )
    )
    types = [event.type for event in events]
    assert "response.function_call_arguments.delta" in types
    done = next(event for event in events if event.type == "response.function_call_arguments.done")
    jsonschema_rs.validate(WEATHER["parameters"], json.loads(done.arguments))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output[-1].type == "function_call"


def test_strict_json_schema_text_format(client):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "legs": {"type": "integer"}},
        "required": ["name", "legs"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model=MODEL,
        input="Describe a cat as JSON.",
        text={"format": {"type": "json_schema", "name": "animal", "schema": schema, "strict": True}},
        temperature=0,
    )
    jsonschema_rs.validate(schema, json.loads(response.output_text))


def test_what_codex_sends_is_accepted(instruct_server):
    body = {
        "model": MODEL,
        "instructions": "You are a coding agent.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say ok."}]},
        ],
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}, "strict": False},
            {"type": "web_search"},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "medium", "summary": "auto"},
        "prompt_cache_key": "abc",
        "client_metadata": {"x": "y"},
        "temperature": 0,
    }
    with httpx.stream("POST", f"{instruct_server.base_url}/v1/responses", json=body, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["x-hearth-tools-left-out"] == "web_search,apply_patch"
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert json.loads(lines[-1][6:])["type"] == "response.completed"


def test_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="x")
    with pytest.raises(openai.NotFoundError) as raised:
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_123")
    assert raised.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(
            model=MODEL, input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]
        )
    assert raised.value.body["param"] == "input[0].content[0].type"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown")


def test_an_item_cut_by_max_output_tokens_is_incomplete(client):
    request = dict(model=MODEL, input="Count from one to fifty.", max_output_tokens=3, temperature=0)
    response = client.responses.create(**request)
    assert response.output[0].type == "message" and response.output[0].status == "incomplete"
    events = list(client.responses.create(stream=True, **request))
    assert events[-1].type == "response.incomplete"
    done = [event.item for event in events if event.type == "response.output_item.done"]
    assert [item.status for item in done] == ["incomplete"]
    assert events[-1].response.output[0].content[0].text == done[0].content[0].text


def test_previous_response_id_continues_the_conversation(client):
    first = client.responses.create(
        model=MODEL,
        instructions="Answer in one short sentence.",
        input="My name is Ada. Please remember my name.",
        temperature=0,
    )
    assert first.to_dict()["store"] is True
    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, input="What is my name?", temperature=0
    )
    assert second.previous_response_id == first.id
    assert "Ada" in second.output_text
    # The follow-up reads only what is new: the earlier turn comes from the prefix cache.
    assert second.usage.input_tokens_details.cached_tokens > 0
    # Streamed follow-ups are stored too, and chain on.
    events = list(
        client.responses.create(
            model=MODEL, previous_response_id=second.id, input="Repeat my name once more.", temperature=0, stream=True
        )
    )
    third = events[-1].response
    assert client.responses.retrieve(third.id).output_text == third.output_text


def test_a_stored_response_is_retrieved_listed_and_deleted(client, instruct_server):
    response = client.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": "Say ok."}]},
        ],
        temperature=0,
    )
    again = client.responses.retrieve(response.id)
    assert again.id == response.id and again.output_text == response.output_text
    items = client.responses.input_items.list(response.id)
    # Newest first, as OpenAI lists them; each with an id.
    assert [item.role for item in items.data] == ["user", "developer"]
    assert items.data[0].content[0].text == "Say ok." and all(item.id for item in items.data)
    ascending = client.responses.input_items.list(response.id, order="asc", limit=1)
    assert [item.role for item in ascending.data] == ["developer"] and ascending.has_more
    rest = client.responses.input_items.list(response.id, order="asc", after=ascending.data[0].id)
    assert [item.role for item in rest.data] == ["user"] and not rest.has_more
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)


def test_store_false_keeps_nothing(client):
    response = client.responses.create(model=MODEL, input="Say ok.", store=False, max_output_tokens=4)
    assert response.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as raised:
        client.responses.create(model=MODEL, input="x", previous_response_id=response.id)
    assert raised.value.body["param"] == "previous_response_id"


def test_stored_responses_outlive_the_adapter(client, instruct_server):
    """A new adapter on the same database (as after a restart) still has them."""
    from fastapi.testclient import TestClient

    from hearth.adapter.app import create_app
    from hearth.settings.adapter import AdapterSettings

    response = client.responses.create(model=MODEL, input="Say ok.", max_output_tokens=4)
    settings = AdapterSettings(engine_address=instruct_server.engine_address, responses_db=instruct_server.responses_db)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as restarted:
        again = restarted.get(f"/v1/responses/{response.id}")
    assert again.status_code == 200 and again.json()["output_text"] == response.output_text


def test_a_namespaced_function_is_called_by_its_own_name(client):
    """Codex offers MCP tools as a namespace of functions; its calls come back named within the namespace."""
    namespace = {
        "type": "namespace",
        "name": "mcp__weather",
        "description": "Weather tools.",
        "tools": [{**WEATHER, "strict": False}],
    }
    response = client.responses.create(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[namespace],
        tool_choice="required",
        temperature=0,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert calls[0].to_dict()["namespace"] == "mcp__weather"
    # Sent back in the next turn's input with its namespace, the call is understood.
    follow_up = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "type": "function_call",
                "call_id": calls[0].call_id,
                "name": "get_weather",
                "namespace": "mcp__weather",
                "arguments": calls[0].arguments,
            },
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 24 C"},
        ],
        tools=[namespace],
        temperature=0,
    )
    assert follow_up.status == "completed" and follow_up.output
