"""The one place errors are built, in each API family's shape: OpenAI's
{"error": {message, type, param, code}} by default, Ollama's {"error": "..."}
under /api/, Anthropic's {"type": "error", "error": {type, message}} under
/v1/messages. Engine errors (EngineCallError) are mapped to HTTP here, once."""

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hearth.client import EngineCallError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def model_not_found(model: str) -> ApiError:
    return ApiError(404, f"The model '{model}' does not exist", param="model", code="model_not_found")


# ErrorInfo reason from the engine -> (HTTP status, OpenAI type, OpenAI code)
_BY_REASON: dict[str, tuple[int, str, str | None]] = {
    "MODEL_NOT_FOUND": (404, "invalid_request_error", "model_not_found"),
    "MODEL_INVALID": (400, "invalid_request_error", "model_invalid"),
    "MODEL_LOAD_FAILED": (500, "server_error", "model_load_failed"),
    "CONTEXT_LENGTH_EXCEEDED": (400, "invalid_request_error", "context_length_exceeded"),
    "INVALID_ARGUMENT": (400, "invalid_request_error", "invalid_value"),
    "TEMPLATE_ERROR": (400, "invalid_request_error", "template_error"),
    "QUEUE_FULL": (429, "rate_limit_error", "queue_full"),
    "MODEL_BUSY": (503, "server_error", "model_busy"),
    "PULL_FAILED": (502, "server_error", "pull_failed"),
    "CHECKSUM_MISMATCH": (502, "server_error", "checksum_mismatch"),
    "ALREADY_EXISTS": (409, "invalid_request_error", "already_exists"),
    "STREAM_TRUNCATED": (502, "server_error", "stream_truncated"),
}


def from_engine_error(error: EngineCallError) -> ApiError:
    if error.reason in _BY_REASON:
        status, type_, code = _BY_REASON[error.reason]
        return ApiError(status, error.message, type=type_, param=error.param, code=code)
    if error.code == "UNAUTHENTICATED":
        log.error("the engine refused the adapter's API key: %s", error.message)
        return ApiError(
            502,
            "The engine refused this server's API key; the adapter and the engine must share LLM_API_KEY",
            type="server_error",
            code="engine_unauthenticated",
        )
    if error.code == "UNAVAILABLE":
        return ApiError(
            503, "The engine is not available; try again shortly", type="server_error", code="engine_unavailable"
        )
    if error.code == "DEADLINE_EXCEEDED":
        return ApiError(504, "The engine did not answer in time", type="server_error", code="engine_timeout")
    if error.code == "CANCELLED":
        return ApiError(503, "The request was cancelled by the engine", type="server_error", code="cancelled")
    log.error("unexpected engine error: %s %s", error.code, error.message)
    return ApiError(500, "The engine failed to process the request", type="server_error", code="internal_error")


def as_api_error(exc: "ApiError | EngineCallError") -> ApiError:
    """The error a failure midway through a streamed answer is reported as."""
    return exc if isinstance(exc, ApiError) else from_engine_error(exc)


# Pydantic puts union members' type names into error locations; they are not params.
_TYPE_TAG = re.compile(r"^(str|int|float|bool|dict|list|none)$|[\[\](),-]")


def _param_from_location(location: tuple) -> str | None:
    param = ""
    for part in location[1:] if location and location[0] in ("body", "query", "path") else location:
        if isinstance(part, int):
            param += f"[{part}]"
        elif not _TYPE_TAG.search(str(part)):
            param += f".{part}" if param else str(part)
    return param or None


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    first = errors[0] if errors else {"msg": "Invalid request", "loc": ()}
    if first.get("type") == "json_invalid":
        return invalid_request("The request body is not valid JSON", code="invalid_json")
    location = tuple(first.get("loc", ()))
    param = _param_from_location(location)
    if first.get("type") == "missing":
        return invalid_request(f"Missing required parameter: '{param}'", param=param, code="missing_required_parameter")
    message = str(first.get("msg", "Invalid value"))
    return invalid_request(
        f"Invalid value for '{param}': {message}" if param else message, param=param, code="invalid_value"
    )


# Ollama's native API lives under this prefix, and its clients read its error shape.
OLLAMA_PREFIX = "/api/"


def ollama_error_body(error: ApiError) -> dict:
    return {"error": error.message}


# Anthropic's Messages API, whose SDKs read their own error shape and types.
ANTHROPIC_PREFIX = "/v1/messages"
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_error_body(error: ApiError) -> dict:
    default = "invalid_request_error" if error.status < 500 else "api_error"
    message = error.message
    if error.code == "context_length_exceeded":
        # Anthropic's wording, which Claude Code watches for to compact the conversation.
        message = f"prompt is too long: {message}"
    return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(error.status, default), "message": message}}


def error_response(path: str, error: ApiError) -> JSONResponse:
    """The one place that picks the shape: Ollama's {"error": "..."} under
    /api/, Anthropic's under /v1/messages, OpenAI's everywhere else."""
    if path.startswith(OLLAMA_PREFIX):
        return JSONResponse(ollama_error_body(error), status_code=error.status)
    if path.startswith(ANTHROPIC_PREFIX):
        return JSONResponse(anthropic_error_body(error), status_code=error.status)
    return error.response()


def install_error_handlers(app: FastAPI) -> None:
    def respond(request: Request, error: ApiError) -> JSONResponse:
        return error_response(request.url.path, error)

    async def on_openai_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(request, exc)

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(request, _validation_error(exc))

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error = ApiError(404, f"Unknown path: {request.url.path}", code="unknown_url")
        elif exc.status_code == 405:
            error = ApiError(
                405, f"Method {request.method} is not allowed on {request.url.path}", code="method_not_allowed"
            )
        else:
            error = ApiError(
                exc.status_code,
                str(exc.detail),
                type="invalid_request_error" if exc.status_code < 500 else "server_error",
            )
        return respond(request, error)

    async def on_engine_error(request: Request, exc: EngineCallError) -> JSONResponse:
        return respond(request, from_engine_error(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return respond(request, ApiError(500, "Internal server error", type="server_error", code="internal_error"))

    app.add_exception_handler(ApiError, on_openai_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(EngineCallError, on_engine_error)
    app.add_exception_handler(Exception, on_unexpected)
