"""Hostile schemas through every door a schema enters by (OpenAI's
response_format, a tool's parameters with tool_choice required, Ollama's
format) against a real `hearth serve` on the default model: each is answered
200 or 4xx, the engine process stays the same (no restart), and a plain
request to the same model still answers about as fast as normal while a
hostile one is in flight."""

import statistics
import threading
import time

import httpx
import pytest

from tests.helpers.models import DEFAULT_MODEL_ID

MODEL = DEFAULT_MODEL_ID
ASK = [{"role": "user", "content": "Answer in JSON."}]
MAX_TOKENS = 6

# Schemas that grew grammars past llama.cpp's stack or the decode thread's
# patience, reached through the paths a node can hide behind.
GROWTH = {
    "maxLength-50000": {"type": "string", "maxLength": 50_000},
    "minLength-50000": {"type": "string", "minLength": 50_000},
    "maxItems-50000": {"type": "array", "items": {"type": "integer"}, "maxItems": 50_000},
    "minItems-50000": {"type": "array", "items": {"type": "integer"}, "minItems": 50_000},
    "pattern-open": {"type": "string", "pattern": "^[ab]{10000000,}$"},
    "pattern-nested": {"type": "string", "pattern": "^((a{100}){100}){100}$"},
    "enum-20000": {"enum": [f"value-{i}" for i in range(20_000)]},
    "const-huge": {"const": "x" * 200_000},
}
# Upper bounds past the limit say nothing a grammar must enforce: dropped, as llama.cpp drops them.
LOOSENED = {"maxLength-50000", "maxItems-50000"}
PATHS = {
    "ref-into-any-key": lambda node: {"$ref": "#/x", "x": node},
    "property": lambda node: {"type": "object", "properties": {"p": node}, "required": ["p"]},
    "nested-defs": lambda node: {
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/a"}},
        "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"type": "null"}, node]}},
    },
}


def nested_lists(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


MALFORMED = {
    "pattern-star-first": {"type": "string", "pattern": "^*a$"},
    "pattern-not-a-string": {"type": "string", "pattern": 5},
    "ref-to-a-number": {"$ref": "#/x", "x": 5},
    "properties-list": {"type": "object", "properties": [1, 2]},
    "ref-nowhere": {"$ref": "#/nowhere"},
}
# Fine schemas, some of them large: answered 200 by a grammar that bounds the answer.
FINE = {
    "recursive-tree": {
        "$ref": "#/definitions/node",
        "definitions": {
            "node": {
                "type": "object",
                "properties": {
                    "v": {"type": "integer"},
                    "kids": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                },
                "required": ["v"],
            }
        },
    },
    "const-deep": {"const": nested_lists(200)},
    "enum-5000": {"enum": [f"choice-{i}" for i in range(5_000)]},
    "maxLength-50000-loosened": {"type": "object", "properties": {"s": {"type": "string", "maxLength": 50_000}}},
}


def as_object(schema: dict) -> dict:
    """A tool's parameters are an object schema: the schema under test as one of its properties."""
    definitions = {k: v for k, v in schema.items() if k in ("$defs", "definitions", "x")}
    return {"type": "object", "properties": {"arg": schema}, "required": ["arg"], **definitions}


def openai_response_format(server, schema: dict) -> httpx.Response:
    body = {
        "model": MODEL,
        "messages": ASK,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}},
    }
    return httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=120)


def openai_required_tool(server, schema: dict) -> httpx.Response:
    tool = {"type": "function", "function": {"name": "act", "parameters": as_object(schema)}}
    body = {"model": MODEL, "messages": ASK, "max_tokens": MAX_TOKENS, "tools": [tool], "tool_choice": "required"}
    return httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=120)


def ollama_format(server, schema: dict) -> httpx.Response:
    body = {"model": MODEL, "messages": ASK, "format": schema, "stream": False, "options": {"num_predict": MAX_TOKENS}}
    return httpx.post(f"{server.base_url}/api/chat", json=body, timeout=120)


DOORS = {
    "response_format": openai_response_format,
    "required-tool": openai_required_tool,
    "ollama-format": ollama_format,
}


def plain_seconds(server) -> float:
    started = time.monotonic()
    response = httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": MODEL, "prompt": "Hello", "max_tokens": 2, "temperature": 0},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return time.monotonic() - started


@pytest.fixture(scope="module")
def normal_seconds(server) -> float:
    plain_seconds(server)  # loads the model
    return statistics.median(plain_seconds(server) for _ in range(5))


@pytest.fixture(scope="module")
def engine_pid(server) -> int:
    return server.engine_pid()


def assert_refused(response: httpx.Response, door: str) -> None:
    assert response.status_code == 400, response.text[:500]
    text = response.text
    assert len(text) < 2000, "the error repeats the schema"
    if door == "ollama-format":
        assert isinstance(response.json()["error"], str)
    else:
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]


def while_in_flight(server, send, schema) -> tuple[httpx.Response, float]:
    """Sends the hostile request and, while it is in flight, a plain one; the
    hostile response and the plain request's time."""
    result: dict = {}
    hostile = threading.Thread(target=lambda: result.setdefault("response", send(server, schema)))
    hostile.start()
    time.sleep(0.05)
    seconds = plain_seconds(server)
    hostile.join(120)
    assert not hostile.is_alive()
    return result["response"], seconds


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("growth", GROWTH)
@pytest.mark.parametrize("door", DOORS)
def test_growth_is_refused_and_never_holds_the_model(server, normal_seconds, engine_pid, door, growth, path):
    schema = PATHS[path](GROWTH[growth])
    response, seconds = while_in_flight(server, DOORS[door], schema)
    if growth in LOOSENED:
        # A large maximum is loosened to "any length", not refused: the token budget bounds the answer.
        assert response.status_code == 200, response.text[:500]
    else:
        assert_refused(response, door)
    assert seconds < normal_seconds + 1.0
    assert server.engine_pid() == engine_pid


@pytest.mark.parametrize("name", MALFORMED)
@pytest.mark.parametrize("door", DOORS)
def test_malformed_schemas_are_400(server, engine_pid, door, name):
    assert_refused(DOORS[door](server, MALFORMED[name]), door)
    assert server.engine_pid() == engine_pid


@pytest.mark.parametrize("name", FINE)
@pytest.mark.parametrize("door", DOORS)
def test_fine_schemas_answer_while_others_are_served(server, normal_seconds, engine_pid, door, name):
    response, seconds = while_in_flight(server, DOORS[door], FINE[name])
    if door == "required-tool" and name == "enum-5000":
        # A tool's schema is also written into the prompt, where 5000 values do not fit the context.
        assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"
    else:
        assert response.status_code == 200, response.text[:500]
    assert seconds < normal_seconds + 1.0
    assert server.engine_pid() == engine_pid


def test_no_restart_was_logged(server, engine_pid):
    assert server.engine_pid() == engine_pid
    assert "engine exited" not in server.log() and "restarting" not in server.log()
