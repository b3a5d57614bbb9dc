"""The engine's gRPC interceptors: the API key on every method but health,
and the one place engine exceptions become gRPC statuses. Typed EngineErrors
become the status code of their reason plus an ErrorInfo; anything unexpected
is logged and answered with a generic INTERNAL message."""

import inspect
import logging

import grpc

from hearth.auth import AUTH_METADATA_KEY, key_matches, normalized_key
from hearth.engine.errors import EngineError
from hearth.rpc_errors import status_with_reason

log = logging.getLogger(__name__)

# Standard health checks answer without a key: supervisors and load balancers have none.
HEALTH_SERVICE_PREFIX = "/grpc.health.v1.Health/"

# ErrorInfo reason -> gRPC status code; a reason not here is INTERNAL.
STATUS_BY_REASON = {
    "MODEL_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "MODEL_INVALID": grpc.StatusCode.FAILED_PRECONDITION,
    "MODEL_LOAD_FAILED": grpc.StatusCode.INTERNAL,
    "CONTEXT_LENGTH_EXCEEDED": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "TEMPLATE_ERROR": grpc.StatusCode.INVALID_ARGUMENT,
    "QUEUE_FULL": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "MODEL_BUSY": grpc.StatusCode.FAILED_PRECONDITION,
    "PULL_FAILED": grpc.StatusCode.UNAVAILABLE,
    "CHECKSUM_MISMATCH": grpc.StatusCode.DATA_LOSS,
    "ALREADY_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
}
# gRPC sends the message in a header: a longer one would overflow the
# trailers' size limit and lose the status altogether.
MAX_ERROR_MESSAGE_CHARS = 2000


def status_of(exc: EngineError):
    """(code, details, trailing metadata) for ``context.abort``."""
    metadata = {k: v[:200] for k, v in (("param", exc.param), ("model", exc.model)) if v}
    message = exc.message
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        message = message[: MAX_ERROR_MESSAGE_CHARS - 1] + "\u2026"
    code = STATUS_BY_REASON.get(exc.reason, grpc.StatusCode.INTERNAL)
    return status_with_reason(code, message, exc.reason, metadata)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, EngineError):
        await context.abort(*status_of(exc))
    log.exception("unexpected error in engine call", exc_info=exc)
    await context.abort(*status_with_reason(grpc.StatusCode.INTERNAL, "internal engine error", "INTERNAL", {}))
class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        if handler.unary_unary and inspect.iscoroutinefunction(handler.unary_unary):
            behavior = handler.unary_unary

            async def unary(request, context):
                try:
                    return await behavior(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await _abort(context, exc)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream and inspect.isasyncgenfunction(handler.unary_stream):
            stream_behavior = handler.unary_stream

            async def stream(request, context):
                try:
                    async for response in stream_behavior(request, context):
                        yield response
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await _abort(context, exc)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


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

