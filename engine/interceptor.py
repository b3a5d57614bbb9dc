"""Maps engine exceptions to gRPC statuses in one place. Typed EngineErrors
become their status code plus an ErrorInfo reason; anything unexpected is
logged and answered with a generic INTERNAL message."""

import inspect
import logging

import grpc

from hearth.engine.errors import EngineError
from hearth.rpc_errors import status_with_reason

log = logging.getLogger(__name__)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, EngineError):
        metadata = {k: v for k, v in (("param", exc.param), ("model", exc.model)) if v}
        await context.abort(*status_with_reason(exc.status_code, exc.message, exc.reason, metadata))
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
