"""Ollama's errors: {"error": "<message>"} with the status Ollama uses.

The adapter has one error type (ApiError, which carries a status and a
message); `hearth.adapter.common.errors.error_response` renders it in this shape for
paths under /api/, and streams that fail midway end with an `ollama_error_body` line."""

from hearth.adapter.common.errors import ApiError


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def model_not_found(name: str) -> ApiError:
    return ApiError(404, f"model '{name}' not found", param="model", code="model_not_found")


def not_supported(what: str) -> ApiError:
    return ApiError(501, f"Hearth does not support {what}", type="server_error", code="not_implemented")
