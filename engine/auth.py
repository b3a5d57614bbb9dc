"""Who may talk to Hearth: the optional API key (LLM_API_KEY) on every gRPC
method but health, and the rule that a non-loopback address is bound only with
a key or an explicit opt-in. Shared by the engine, the adapter and the CLI."""

import hmac
import ipaddress
import logging

import grpc

from hearth.rpc_errors import status_with_reason

log = logging.getLogger(__name__)

AUTH_METADATA_KEY = "authorization"
BEARER = "Bearer "
# Standard health checks answer without a key: supervisors and load balancers have none.
HEALTH_SERVICE_PREFIX = "/grpc.health.v1.Health/"


def normalized_key(api_key: str | None) -> str | None:
    """The key, or None when unset or blank."""
    if api_key is None:
        return None
    api_key = api_key.strip()
    return api_key or None


def key_matches(presented: str | None, api_key: str) -> bool:
    """Constant-time comparison of a presented ``Authorization`` value with ``Bearer <key>``."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), (BEARER + api_key).encode("utf-8"))


def auth_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying the key; empty without one."""
    api_key = normalized_key(api_key)
    return ((AUTH_METADATA_KEY, BEARER + api_key),) if api_key else ()


def split_host_port(address: str) -> tuple[str, str]:
    """('host', 'port') of 'host:port' or '[v6]:port'; the host without brackets."""
    host, sep, port = address.rpartition(":")
    if not sep:
        return address.strip("[]"), ""
    return host.strip("[]"), port


def address_host(address: str) -> str:
    """The host part of a gRPC address; 'localhost' for Unix sockets, which never leave the machine."""
    if address.startswith(("unix:", "unix-abstract:")):
        return "localhost"
    for scheme in ("ipv4:", "ipv6:", "dns:///", "dns:"):
        if address.startswith(scheme):
            address = address[len(scheme) :]
            break
    return split_host_port(address)[0]


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that can only reach this machine."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UnsafeBind(Exception):
    """Binding this address would expose Hearth without a key, and nobody said to."""


def check_bind(host: str, *, api_key: str | None, allow_remote: bool, what: str) -> None:
    """Raise UnsafeBind when ``host`` is not loopback, no key is set and remote access was not allowed."""
    if is_loopback_host(host) or normalized_key(api_key):
        return
    if allow_remote:
        log.warning("%s listens on %s without an API key: anyone who can reach it may use it", what, host or "*")
        return
    raise UnsafeBind(
        f"refusing to listen on {host or 'all interfaces'} for {what} without an API key: set LLM_API_KEY, "
        "or pass --allow-remote (LLM_ALLOW_REMOTE=true) to allow it without one"
    )


def _denied_handler(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that answers UNAUTHENTICATED."""
    status = status_with_reason(grpc.StatusCode.UNAUTHENTICATED, message, "UNAUTHENTICATED", {})

    async def deny_unary(request_or_iterator, context):
        await context.abort(*status)

    async def deny_stream(request_or_iterator, context):
        await context.abort(*status)
        yield  # pragma: no cover  (an async generator, like the handler it replaces)

    codec = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(deny_unary, **codec)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(deny_stream, **codec)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(deny_unary, **codec)
    return grpc.stream_stream_rpc_method_handler(deny_stream, **codec)


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    """Every method but the standard health service requires ``authorization: Bearer <key>``."""

    def __init__(self, api_key: str):
        key = normalized_key(api_key)
        if key is None:
            raise ValueError("ApiKeyInterceptor needs a key")
        self._key = key

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or method.startswith(HEALTH_SERVICE_PREFIX):
            return handler
        presented = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == AUTH_METADATA_KEY:
                presented = value if isinstance(value, str) else None
                break
        if key_matches(presented, self._key):
            return handler
        message = "missing API key" if presented is None else "invalid API key"
        return _denied_handler(handler, f"{message}: send metadata 'authorization: Bearer <key>'")

