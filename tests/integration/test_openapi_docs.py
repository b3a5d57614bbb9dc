"""FastAPI's /docs and /openapi.json on a real `hearth serve`: every route the
app serves is documented, under its API family's tag, with the models it reads
its body with and answers with, and with its family's error body (validation
errors are 400s in that shape, never FastAPI's 422).

Which routes exist comes from the app's own route table (the app built as
`hearth serve` builds it), not from a list here: a route added without docs fails."""

import json

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from jsonschema import Draft202012Validator

from hearth.adapter.app import create_app
from hearth.adapter.common.errors import ApiError, error_response
from hearth.adapter.openapi import ANTHROPIC, OLLAMA, OPENAI, SERVER
from tests.helpers.models import TINY_MODEL_ID

# The documentation's own routes, which FastAPI serves and leaves out of the schema.
DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
FAMILIES = {OPENAI, ANTHROPIC, OLLAMA, SERVER}
REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def schema(server) -> dict:
    response = httpx.get(f"{server.base_url}/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


@pytest.fixture(scope="module")
def routes():
    """The app's routes as FastAPI resolves them (included routers' tags and responses applied).
    Its lifespan never runs: only the route table is read."""
    return list(iter_route_contexts(create_app().routes))


def _api_routes(routes) -> list:
    return [route for route in routes if isinstance(route.original_route, APIRoute)]


def _operations(schema: dict) -> dict[tuple[str, str], dict]:
    return {(method.upper(), path): op for path, item in schema["paths"].items() for method, op in item.items()}


def _concrete(path: str) -> str:
    """A path with its parameters filled in ("/v1/models/{model_id}" -> "/v1/models/x")."""
    return path.replace("{model_id}", "x").replace("{response_id}", "x").replace("{digest}", "sha256-x")


def _validator(schema: dict, part: dict) -> Draft202012Validator:
    """A validator for ``part`` (a schema of the document) with the document's $refs resolvable."""
    return Draft202012Validator({**part, "components": schema["components"]})


def _json_schema(schema: dict, method: str, path: str, status: str) -> dict:
    return schema["paths"][path][method.lower()]["responses"][status]["content"]["application/json"]["schema"]


def _ref_title(schema: dict, ref: dict) -> str:
    """The model a {"$ref": ...} names (FastAPI lengthens component names that clash; titles stay)."""
    assert set(ref) == {"$ref"} and ref["$ref"].startswith(REF), ref
    return schema["components"]["schemas"][ref["$ref"].removeprefix(REF)]["title"]


def test_docs_is_the_swagger_page(server):
    docs = httpx.get(f"{server.base_url}/docs", timeout=30)
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text and "/openapi.json" in docs.text
    redoc = httpx.get(f"{server.base_url}/redoc", timeout=30)
    assert redoc.status_code == 200 and redoc.headers["content-type"].startswith("text/html")


def test_every_served_route_is_documented(schema, routes):
    served = {(method, route.path_format) for route in _api_routes(routes) for method in route.methods}
    documented = set(_operations(schema))
    assert served == documented, {"undocumented": served - documented, "not served": documented - served}
    # Nothing else is served (no mounted app, no plain Starlette route) but the docs themselves.
    assert {route.path for route in routes if not isinstance(route.original_route, APIRoute)} == DOC_ROUTES
    # Each family is there, its model management and health routes included.
    tags = {op["tags"][0] for op in _operations(schema).values()}
    assert tags == FAMILIES
    assert {("DELETE", "/api/delete"), ("POST", "/api/pull"), ("GET", "/metrics"), ("GET", "/health")} <= served


def test_every_documented_route_is_served(server, schema):
    """Each operation, sent as documented but with no body (which validation refuses
    before any work), reaches a route: no "Unknown path" and no 405."""
    for method, path in _operations(schema):
        response = httpx.request(method, f"{server.base_url}{_concrete(path)}", timeout=60)
        assert response.status_code != 405, (method, path)
        if method == "HEAD":
            assert response.status_code != 404, (method, path)
        else:
            assert "Unknown path" not in response.text, (method, path, response.text)


def test_operations_are_tagged_by_family(schema):
    assert [tag["name"] for tag in schema["tags"]] == [OPENAI, ANTHROPIC, OLLAMA, SERVER]
    for (method, path), op in _operations(schema).items():
        assert len(op["tags"]) == 1 and op["tags"][0] in FAMILIES, (method, path, op.get("tags"))
        tag = op["tags"][0]
        if path.startswith("/api/"):
            assert tag == OLLAMA, (method, path)
        elif path.startswith("/v1/messages"):
            assert tag == ANTHROPIC, (method, path)
        elif path.startswith("/v1/"):
            assert tag == OPENAI, (method, path)
        else:
            assert tag in (OPENAI, SERVER), (method, path)


def test_json_bodies_are_the_models_the_routes_validate_with(schema, routes):
    operations = _operations(schema)
    with_body = set()
    for route in _api_routes(routes):
        for method in route.methods:
            op = operations.get((method, route.path_format))
            assert op is not None, f"{method} {route.path_format} is not in /openapi.json"
            if route.body_field is None:
                assert "requestBody" not in op, (method, route.path_format)
                continue
            with_body.add(op["tags"][0])
            body = op["requestBody"]
            assert body["required"] is True, (method, route.path_format)
            assert list(body["content"]) == ["application/json"], (method, route.path_format)
            model = route.body_field.field_info.annotation
            assert _ref_title(schema, body["content"]["application/json"]["schema"]) == model.__name__
    assert with_body >= {OPENAI, ANTHROPIC, OLLAMA}
    # A POST without a body is one that only answers 501 (what Hearth does not do).
    for (method, path), op in operations.items():
        if method == "POST" and "requestBody" not in op:
            assert not any(status.startswith("2") for status in op["responses"]), path


def test_answers_are_the_models_the_routes_answer_with(schema, routes):
    for route in _api_routes(routes):
        status = str(route.status_code or 200)
        model = route.response_model or route.responses.get(route.status_code or 200, {}).get("model")
        if model is None or model is dict:
            continue
        for method in route.methods:
            answer = _json_schema(schema, method, route.path_format, status)
            assert _ref_title(schema, answer) == model.__name__, (method, route.path_format)
    # The generation routes answer JSON or a stream; both are documented.
    for path, stream in (
        ("/v1/chat/completions", "text/event-stream"),
        ("/v1/completions", "text/event-stream"),
        ("/v1/responses", "text/event-stream"),
        ("/v1/messages", "text/event-stream"),
        ("/api/chat", "application/x-ndjson"),
        ("/api/generate", "application/x-ndjson"),
        ("/api/pull", "application/x-ndjson"),
    ):
        assert set(schema["paths"][path]["post"]["responses"]["200"]["content"]) == {"application/json", stream}


def test_error_responses_are_each_familys_error_body(schema):
    """No route documents FastAPI's 422 (validation errors are 400s), and each documents
    the error body the adapter's one error renderer gives on its path."""
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for (method, path), op in _operations(schema).items():
        assert "422" not in op["responses"], (method, path)
        for status, error in (("4XX", ApiError(400, "bad", param="model", code="c")), ("5XX", ApiError(503, "down"))):
            body = json.loads(error_response(_concrete(path), error).body)
            _validator(schema, _json_schema(schema, method, path, status)).validate(body)


def test_live_errors_match_the_documented_schema(server, schema):
    """A body of the wrong type, to every operation that takes one: a 400 in the documented shape."""
    checked = set()
    for (method, path), op in _operations(schema).items():
        if "requestBody" not in op:
            continue
        response = httpx.request(method, f"{server.base_url}{_concrete(path)}", json=[], timeout=60)
        assert response.status_code == 400, (method, path, response.status_code, response.text)
        _validator(schema, _json_schema(schema, method, path, "4XX")).validate(response.json())
        checked.add(op["tags"][0])
    missing = httpx.get(f"{server.base_url}/v1/models/no-such-model", timeout=30)
    assert missing.status_code == 404
    _validator(schema, _json_schema(schema, "GET", "/v1/models/{model_id}", "4XX")).validate(missing.json())
    assert checked >= {OPENAI, ANTHROPIC, OLLAMA}


def test_live_answers_match_the_documented_schema(server, schema):
    """Real answers, validated against what /openapi.json says they are: every GET
    without parameters that answers JSON, and a non-streamed answer of each family."""
    for (method, path), op in _operations(schema).items():
        if method != "GET" or "{" in path or "application/json" not in op["responses"]["200"].get("content", {}):
            continue
        response = httpx.get(f"{server.base_url}{path}", timeout=60)
        assert response.status_code == 200, path
        _validator(schema, _json_schema(schema, "GET", path, "200")).validate(response.json())
    chat = {"model": TINY_MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    tokenized = {"model": TINY_MODEL_ID, "prompt": "hi there"}
    samples = [
        ("GET", f"/v1/models/{TINY_MODEL_ID}", "/v1/models/{model_id}", None),
        ("POST", "/v1/chat/completions", "/v1/chat/completions", {**chat, "logprobs": True, "top_logprobs": 2}),
        ("POST", "/v1/completions", "/v1/completions", {"model": TINY_MODEL_ID, "prompt": "hi", "max_tokens": 2}),
        ("POST", "/tokenize", "/tokenize", tokenized),
        ("POST", "/detokenize", "/detokenize", {"model": TINY_MODEL_ID, "tokens": [1, 2]}),
        ("POST", "/v1/messages", "/v1/messages", chat),
        ("POST", "/v1/messages/count_tokens", "/v1/messages/count_tokens", chat),
        ("POST", "/api/show", "/api/show", {"model": TINY_MODEL_ID}),
        ("POST", "/api/chat", "/api/chat", {**chat, "stream": False, "options": {"num_predict": 2}}),
    ]
    for method, url, path, body in samples:
        response = httpx.request(method, f"{server.base_url}{url}", json=body, timeout=120)
        assert response.status_code == 200, (url, response.text)
        _validator(schema, _json_schema(schema, method, path, "200")).validate(response.json())
