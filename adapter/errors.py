"""The one place OpenAI-style errors are built: {"error": {message, type, param, code}}."""

import logging
import re

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hearth.rpc_errors import read_rpc_error

log = logging.getLogger(__name__)


class OpenAIError(Exception):
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


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(404, f"The model '{model}' does not exist", param="model", code="model_not_found")


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
}


def from_rpc_error(error: grpc.RpcError) -> OpenAIError:
    info = read_rpc_error(error)
    if info.reason in _BY_REASON:
        status, type_, code = _BY_REASON[info.reason]
        return OpenAIError(status, info.message, type=type_, param=info.metadata.get("param"), code=code)
    if info.code == grpc.StatusCode.UNAUTHENTICATED:
        log.error("the engine refused the adapter's API key: %s", info.message)
        return OpenAIError(
            502,
            "The engine refused this server's API key; the adapter and the engine must share LLM_API_KEY",
            type="server_error",
            code="engine_unauthenticated",
        )
    if info.code == grpc.StatusCode.UNAVAILABLE:
        return OpenAIError(503, "The engine is not available; try again shortly", type="server_error", code="engine_unavailable")
    if info.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return OpenAIError(504, "The engine did not answer in time", type="server_error", code="engine_timeout")
    if info.code == grpc.StatusCode.CANCELLED:
        return OpenAIError(503, "The request was cancelled by the engine", type="server_error", code="cancelled")
    log.error("unexpected engine error: %s %s", info.code, info.message)
    return OpenAIError(500, "The engine failed to process the request", type="server_error", code="internal_error")


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


def _validation_error(exc: RequestValidationError) -> OpenAIError:
    errors = exc.errors()
    first = errors[0] if errors else {"msg": "Invalid request", "loc": ()}
    if first.get("type") == "json_invalid":
        return invalid_request("The request body is not valid JSON", code="invalid_json")
    location = tuple(first.get("loc", ()))
    param = _param_from_location(location)
    if first.get("type") == "missing":
        return invalid_request(f"Missing required parameter: '{param}'", param=param, code="missing_required_parameter")
    message = str(first.get("msg", "Invalid value"))
    return invalid_request(f"Invalid value for '{param}': {message}" if param else message, param=param, code="invalid_value")


# Ollama's native API lives under this prefix, and its clients read its error shape.
OLLAMA_PREFIX = "/api/"


def ollama_error_body(error: OpenAIError) -> dict:
    return {"error": error.message}


def error_response(path: str, error: OpenAIError) -> JSONResponse:
    """The one place that picks the shape: Ollama's {"error": "..."} under
    /api/, OpenAI's everywhere else."""
    if path.startswith(OLLAMA_PREFIX):
        return JSONResponse(ollama_error_body(error), status_code=error.status)
    return error.response()


def install_error_handlers(app: FastAPI) -> None:
    def respond(request: Request, error: OpenAIError) -> JSONResponse:
        return error_response(request.url.path, error)

    async def on_openai_error(request: Request, exc: OpenAIError) -> JSONResponse:
        return respond(request, exc)

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(request, _validation_error(exc))

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error = OpenAIError(404, f"Unknown path: {request.url.path}", code="unknown_url")
        elif exc.status_code == 405:
            error = OpenAIError(405, f"Method {request.method} is not allowed on {request.url.path}", code="method_not_allowed")
        else:
            error = OpenAIError(exc.status_code, str(exc.detail), type="invalid_request_error" if exc.status_code < 500 else "server_error")
        return respond(request, error)

    async def on_rpc_error(request: Request, exc: grpc.RpcError) -> JSONResponse:
        return respond(request, from_rpc_error(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return respond(request, OpenAIError(500, "Internal server error", type="server_error", code="internal_error"))

    app.add_exception_handler(OpenAIError, on_openai_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(grpc.RpcError, on_rpc_error)
    app.add_exception_handler(Exception, on_unexpected)
