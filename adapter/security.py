"""What a request must pass before any route sees it, as plain ASGI middleware:

- its ``Host`` names this machine (loopback, ``localhost``) or a host the user
  allowed, which defeats DNS rebinding; an empty or missing ``Host`` is refused;
- a browser ``Origin``, when sent, is a localhost page or one the user allowed;
- with an API key set, ``Authorization: Bearer <key>`` on every route but ``/health``;
- the body is no larger than ``max_body_bytes`` (413 otherwise) and arrives
  within ``body_timeout`` seconds (408 otherwise).

Refusals are OpenAI-style error bodies like every other error."""

import asyncio
import hmac
import re
from collections.abc import Iterable

from starlette.datastructures import Headers

from hearth.adapter.common.errors import ApiError, error_response
from hearth.auth import is_loopback_host, normalized_key

# Browser pages served from this machine may call the API; others only when configured.
LOCAL_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$"
_LOCAL_ORIGIN = re.compile(LOCAL_ORIGINS)
# Routes that answer without the API key.
OPEN_PATHS = frozenset({"/health"})
# Addresses that mean "every interface": not a name a client puts in Host.
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})


def host_of(host_header: str) -> str:
    """The host part of a Host header value, lowercased, without port or brackets."""
    value = host_header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else ""
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        value = host
    return value.rstrip(".")


class HostPolicy:
    """Which Host and Origin values are accepted."""

    def __init__(self, allowed_hosts: Iterable[str], cors_origins: Iterable[str], bind_host: str | None = None):
        hosts = {host_of(h) for h in allowed_hosts if h.strip()}
        if bind_host is not None and bind_host.strip("[]") not in _WILDCARD_BINDS:
            # A server bound to one address is reached by that address.
            hosts.add(bind_host.strip().strip("[]").lower().rstrip("."))
        self.any_host = "*" in hosts
        self.hosts = frozenset(hosts - {"*"})
        origins = {o.strip().rstrip("/") for o in cors_origins if o.strip()}
        self.any_origin = "*" in origins
        self.origins = frozenset(origins - {"*"})

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header or not host_header.strip():
            return False
        host = host_of(host_header)
        if not host:
            return False
        return is_loopback_host(host) or self.any_host or host in self.hosts

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.strip().rstrip("/")
        return bool(_LOCAL_ORIGIN.match(origin)) or self.any_origin or origin in self.origins


async def _refuse(scope, receive, send, error: ApiError, headers: dict[str, str] | None = None) -> None:
    response = error_response(scope.get("path", ""), error)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    await response(scope, receive, send)


class HostOriginGuard:
    """Refuses requests for a Host that is not this machine (DNS rebinding) and
    requests from browser pages of origins that were not allowed."""

    def __init__(self, app, policy: HostPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.policy.host_allowed(host):
            shown = (host or "")[:100]
            return await _refuse(
                scope,
                receive,
                send,
                ApiError(
                    403,
                    f"Host '{shown}' is not allowed; add it to LLM_ALLOWED_HOSTS to serve it",
                    code="host_not_allowed",
                ),
            )
        origin = headers.get("origin")
        if origin is not None and not self.policy.origin_allowed(origin):
            return await _refuse(
                scope,
                receive,
                send,
                ApiError(
                    403,
                    f"Origin '{origin[:100]}' is not allowed; add it to LLM_CORS_ORIGINS to allow it",
                    code="origin_not_allowed",
                ),
            )
        return await self.app(scope, receive, send)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class ApiKeyGuard:
    """With a key set, every route but /health needs ``Authorization: Bearer <key>``
    (or, as Anthropic's clients send it, ``x-api-key: <key>``)."""

    def __init__(self, app, api_key: str):
        key = normalized_key(api_key)
        if key is None:
            raise ValueError("ApiKeyGuard needs a key")
        self.app = app
        self._key = key.encode("utf-8")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        # Anthropic's clients send the key as x-api-key.
        token = bearer_token(headers.get("authorization")) or headers.get("x-api-key")
        if token is not None and hmac.compare_digest(token.encode("utf-8", "surrogateescape"), self._key):
            return await self.app(scope, receive, send)
        message = (
            "Missing API key: send 'Authorization: Bearer <key>'"
            if token is None
            else "Incorrect API key provided"
        )
        return await _refuse(
            scope,
            receive,
            send,
            ApiError(401, message, type="invalid_request_error", code="invalid_api_key"),
            {"WWW-Authenticate": "Bearer"},
        )


class BodySizeLimit:
    """Reads the request body up to ``max_bytes`` before the app runs; larger
    bodies get 413, and one not complete within ``timeout`` seconds 408."""

    def __init__(self, app, max_bytes: int, timeout: float = 60.0):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    def _too_large(self) -> ApiError:
        return ApiError(
            413, f"The request body is larger than {self.max_bytes} bytes", code="request_too_large"
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                invalid = ApiError(400, "Invalid Content-Length header", code="invalid_request")
                return await _refuse(scope, receive, send, invalid)
            if int(declared) > self.max_bytes:
                return await _refuse(scope, receive, send, self._too_large())
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self.timeout):
                complete = await self._read(receive, chunks)
        except TimeoutError:
            slow = ApiError(408, f"The request body did not arrive within {self.timeout:g} s", code="request_timeout")
            return await _refuse(scope, receive, send, slow, {"Connection": "close"})
        if complete is None:
            return  # the client left before sending its body: nothing to answer
        if not complete:
            return await _refuse(scope, receive, send, self._too_large())
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            # After the body: disconnects, which streaming responses watch for.
            return await receive()

        return await self.app(scope, replay, send)

    async def _read(self, receive, chunks: list[bytes]) -> bool | None:
        """Reads the body into ``chunks``: True when whole, False past the
        limit, None when the client left."""
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return False
            chunks.append(body)
            if not message.get("more_body", False):
                return True
