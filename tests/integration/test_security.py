"""Safe by default: loopback binding, Host and Origin checks against DNS
rebinding and foreign pages, and the API key on every REST route and every
gRPC method, checked on real `hearth serve` and `hearth engine` processes."""

import asyncio
import socket
import subprocess

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hearth.adapter.app import create_app
from hearth.auth import UnsafeBind, check_bind
from hearth.engine.v1 import engine_pb2 as pb
from hearth.settings.adapter import AdapterSettings
from tests.helpers.models import TINY_MODEL_ID
from tests.helpers.servers import (
    HEARTH,
    EngineProcess,
    HearthServer,
    base_env,
    free_port,
)

KEY = "test-key-8f2c41d0"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = {"model": TINY_MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def tiny_only(tmp_path_factory, models_dir):
    folder = tmp_path_factory.mktemp("tiny-models")
    (folder / f"{TINY_MODEL_ID}.gguf").symlink_to(models_dir / f"{TINY_MODEL_ID}.gguf")
    return folder


@pytest.fixture(scope="module")
def keyed_server(tiny_only, tmp_path_factory):
    logs = tmp_path_factory.mktemp("keyed")
    server = HearthServer(tiny_only, logs / "config.json", logs / "serve.log", LLM_API_KEY=KEY)
    yield server
    server.stop()


def _routes(server: HearthServer) -> list[tuple[str, str]]:
    """Every route the adapter serves: the OpenAPI operations (all of them, /metrics and Ollama's model
    management included) plus the documentation routes."""
    schema = httpx.get(f"{server.base_url}/openapi.json", headers=AUTH, timeout=10).json()
    routes = [
        (method.upper(), path.replace("{model_id}", TINY_MODEL_ID))
        for path, operations in schema["paths"].items()
        for method in operations
    ]
    extra = [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/docs/oauth2-redirect")]
    return routes + extra + [("GET", "/no/such/route"), ("POST", "/v1/models")]


def test_every_rest_route_but_health_requires_the_key(keyed_server):
    routes = _routes(keyed_server)
    assert ("POST", "/v1/chat/completions") in routes and ("GET", "/health") in routes
    for method, path in routes:
        body = CHAT if method == "POST" else None
        for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
            response = httpx.request(method, f"{keyed_server.base_url}{path}", json=body, headers=headers, timeout=30)
            if path == "/health":
                assert response.status_code == 200, (method, path, headers)
                continue
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            if method == "HEAD":
                continue  # no body to read
            if path.startswith("/api/"):
                # Ollama's clients read Ollama's shape: {"error": "<message>"}.
                assert "API key" in response.json()["error"]
                continue
            if path.startswith("/v1/messages"):
                # Anthropic's clients read Anthropic's shape.
                assert response.json() == {
                    "type": "error",
                    "error": {"type": "authentication_error", "message": response.json()["error"]["message"]},
                }
                continue
            assert response.json()["error"]["code"] == "invalid_api_key"
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        allowed = httpx.request(method, f"{keyed_server.base_url}{path}", json=body, headers=AUTH, timeout=60)
        assert allowed.status_code != 401, (method, path)
        # Anthropic's clients send the key as x-api-key.
        anthropic_style = httpx.request(
            method, f"{keyed_server.base_url}{path}", json=body, headers={"x-api-key": KEY}, timeout=60
        )
        assert anthropic_style.status_code != 401, (method, path)


def test_the_key_in_the_openai_sdk(keyed_server):
    client = openai.OpenAI(base_url=f"{keyed_server.base_url}/v1", api_key=KEY, max_retries=0, timeout=60)
    reply = client.chat.completions.create(**CHAT)
    assert reply.choices[0].finish_reason in ("stop", "length")
    wrong = openai.OpenAI(base_url=f"{keyed_server.base_url}/v1", api_key="nope", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as raised:
        wrong.models.list()
    assert raised.value.body["code"] == "invalid_api_key"


def _grpc_calls() -> list[tuple[str, bool, object]]:
    """(full method path, server-streaming, request) for every method of the Engine service and of reflection."""
    service = pb.DESCRIPTOR.services_by_name["Engine"]
    calls = []
    for method in service.methods:
        request_class = getattr(pb, method.input_type.name)
        request = request_class(model=TINY_MODEL_ID, prompt="hi", max_tokens=1) if method.name == "Generate" else request_class()
        if hasattr(request, "id"):
            request.id = TINY_MODEL_ID
        calls.append((f"/{service.full_name}/{method.name}", method.server_streaming, request))
    return calls


def _call(channel: grpc.Channel, path: str, streaming: bool, request, metadata) -> grpc.StatusCode:
    serialize, deserialize = type(request).SerializeToString, lambda raw: raw
    try:
        if streaming:
            call = channel.unary_stream(path, request_serializer=serialize, response_deserializer=deserialize)(
                request, metadata=metadata, timeout=3
            )
            # WatchEvents never ends by itself: one message (or the error) is the answer.
            next(iter(call), None)
            call.cancel()
        else:
            channel.unary_unary(path, request_serializer=serialize, response_deserializer=deserialize)(
                request, metadata=metadata, timeout=30
            )
    except grpc.RpcError as exc:
        if exc.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
            return grpc.StatusCode.OK  # let in, and then waited on or stopped
        return exc.code()
    return grpc.StatusCode.OK


def test_every_grpc_method_but_health_requires_the_key(tiny_only, tmp_path):
    engine = EngineProcess(tiny_only, tmp_path / "config.json", tmp_path / "engine.log", LLM_API_KEY=KEY)
    try:
        with grpc.insecure_channel(engine.address) as channel:
            calls = _grpc_calls()
            assert len(calls) >= 7
            for path, streaming, request in calls:
                for metadata in (None, (("authorization", "Bearer wrong"),), (("authorization", KEY),)):
                    assert _call(channel, path, streaming, request, metadata) == grpc.StatusCode.UNAUTHENTICATED, (
                        path,
                        metadata,
                    )
                code = _call(channel, path, streaming, request, (("authorization", f"Bearer {KEY}"),))
                assert code != grpc.StatusCode.UNAUTHENTICATED, path
            # Reflection needs the key too.
            from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            listing = reflection_pb2.ServerReflectionRequest(list_services="")
            with pytest.raises(grpc.RpcError) as raised:
                list(reflection.ServerReflectionInfo(iter([listing]), timeout=10))
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = list(
                reflection.ServerReflectionInfo(iter([listing]), timeout=10, metadata=(("authorization", f"Bearer {KEY}"),))
            )
            assert answer[0].list_services_response.service
            # Health answers anyone: supervisors and load balancers have no key.
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        engine.stop()


# Host values a DNS-rebinding page (or a confused proxy) would send.
REBINDING_HOSTS = [
    "evil.example",
    "evil.example:11434",
    "127.0.0.1.nip.io",
    "localhost.evil.example",
    "attacker.localhost.evil",
    "192.168.1.20",
    "10.0.0.1:11434",
    "0.0.0.0",
    "[::ffff:c0a8:114]",
    "127.0.0.1@evil.example",
    "",
]
LOCAL_HOSTS = ["127.0.0.1", "localhost", "LOCALHOST", "[::1]", "127.0.0.2", "localhost."]


@pytest.mark.parametrize("host", REBINDING_HOSTS)
def test_dns_rebinding_hosts_are_refused(keyed_server, host: str):
    for path in ("/health", "/v1/models"):
        response = httpx.get(f"{keyed_server.base_url}{path}", headers={"Host": host, **AUTH}, timeout=10)
        assert response.status_code == 403, (host, path)
        assert response.json()["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize("host", LOCAL_HOSTS)
def test_loopback_hosts_are_served(keyed_server, host: str):
    response = httpx.get(
        f"{keyed_server.base_url}/v1/models", headers={"Host": f"{host}:{keyed_server.port}", **AUTH}, timeout=10
    )
    assert response.status_code == 200, host


def test_a_request_without_host_is_refused(keyed_server):
    with socket.create_connection(("127.0.0.1", keyed_server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 403"), reply[:200]
    assert b"host_not_allowed" in reply


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example", "null", "http://127.0.0.1.nip.io:3000"])
def test_foreign_origins_are_refused(keyed_server, origin: str):
    preflight = httpx.options(
        f"{keyed_server.base_url}/v1/chat/completions",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in preflight.headers
    # A simple request (no preflight) from such a page is refused too, not merely unreadable.
    simple = httpx.post(
        f"{keyed_server.base_url}/v1/chat/completions",
        content=b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}',
        headers={"Origin": origin, "Content-Type": "text/plain", **AUTH},
        timeout=10,
    )
    assert simple.status_code == 403
    assert simple.json()["error"]["code"] == "origin_not_allowed"


def test_local_origins_are_allowed_without_credentials(keyed_server):
    origin = "http://localhost:5173"
    preflight = httpx.options(
        f"{keyed_server.base_url}/v1/chat/completions",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in preflight.headers
    response = httpx.get(f"{keyed_server.base_url}/v1/models", headers={"Origin": origin, **AUTH}, timeout=10)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    # A 401 is readable by the page too, so that it can tell the user why.
    refused = httpx.get(f"{keyed_server.base_url}/v1/models", headers={"Origin": origin}, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == origin


def _in_process(settings: AdapterSettings, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    """A request to an adapter app in this process (its engine is absent: engine routes answer 503)."""

    async def go():
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:11434") as client:
                return await client.request(method, path, headers=headers)

    return asyncio.run(go())


def test_configured_hosts_and_origins():
    settings = AdapterSettings(
        engine_address=f"127.0.0.1:{free_port()}",
        allowed_hosts=["hearth.lan", "Box.Example:8080"],
        cors_origins=["https://app.example"],
    )
    for host, status in [("hearth.lan", 503), ("hearth.lan:11434", 503), ("box.example", 503), ("evil.example", 403)]:
        assert _in_process(settings, "GET", "/health", {"Host": host}).status_code == status, host
    allowed = _in_process(
        settings, "OPTIONS", "/v1/models", {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = _in_process(settings, "GET", "/health", {"Origin": "https://other.example"})
    assert other.status_code == 403


def test_any_origin_is_opt_in_and_never_with_credentials():
    settings = AdapterSettings(engine_address=f"127.0.0.1:{free_port()}", cors_origins=["*"])
    response = _in_process(
        settings, "OPTIONS", "/v1/models", {"Origin": "https://anything.example", "Access-Control-Request-Method": "GET"}
    )
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    default = AdapterSettings(engine_address=f"127.0.0.1:{free_port()}")
    refused = _in_process(
        default, "OPTIONS", "/v1/models", {"Origin": "https://anything.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in refused.headers


def test_any_host_is_opt_in():
    settings = AdapterSettings(engine_address=f"127.0.0.1:{free_port()}", allowed_hosts=["*"])
    assert _in_process(settings, "GET", "/health", {"Host": "anything.example"}).status_code == 503
    assert _in_process(settings, "GET", "/health", {"Host": ""}).status_code == 403


def test_bind_rule():
    for host in ("127.0.0.1", "::1", "localhost", "127.8.9.10"):
        check_bind(host, api_key=None, allow_remote=False, what="test")
    for host in ("0.0.0.0", "::", "", "192.168.1.2", "my-laptop.lan"):
        with pytest.raises(UnsafeBind):
            check_bind(host, api_key=None, allow_remote=False, what="test")
        with pytest.raises(UnsafeBind):
            check_bind(host, api_key="   ", allow_remote=False, what="test")
        check_bind(host, api_key=KEY, allow_remote=False, what="test")
        check_bind(host, api_key=None, allow_remote=True, what="test")


@pytest.mark.parametrize(
    "args",
    [
        ["adapter", "--host", "0.0.0.0"],
        ["serve", "--host", "0.0.0.0"],
        ["engine", "--engine-address", "0.0.0.0:{port}"],
        ["serve", "--engine-address", "[::]:{port}"],
    ],
)
def test_non_loopback_bind_without_key_is_refused(tiny_only, tmp_path, args: list[str]):
    """Refused before anything listens: the processes exit with status 2 and say why."""
    port = str(free_port())
    argv = HEARTH + [a.replace("{port}", port) for a in args] + ["--port", port] * (args[0] != "engine")
    env = base_env(tiny_only, tmp_path / "config.json")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "LLM_API_KEY" in done.stdout + done.stderr
    # The adapter may opt out of the key; an engine beyond loopback never may (tests/integration/test_engine_tls.py).
    engine_bind = args[0] == "engine" or "--engine-address" in args
    assert ("--allow-remote" in done.stdout + done.stderr) != engine_bind
