"""GET /health: 200 with the engine's status while it answers, 503 otherwise.
GET / (and HEAD /): "Ollama is running", which Ollama clients probe for."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from hearth.adapter.common.errors import ApiError, from_engine_error
from hearth.client import EngineCallError
from hearth.engine.v1 import engine_pb2 as pb

router = APIRouter()


# Text, documented as such; the error responses stay JSON.
ROOT_RESPONSES = {200: {"description": "Ollama is running", "content": {"text/plain": {"schema": {"type": "string"}}}}}


@router.get("/", response_model=None, response_class=Response, responses=ROOT_RESPONSES)
@router.head("/", response_model=None, response_class=Response, responses=ROOT_RESPONSES)
async def root() -> PlainTextResponse:
    # Ollama's exact words: clients (and `ollama` tools) check for them.
    return PlainTextResponse("Ollama is running")


@router.get("/health", response_model=None)
async def health(request: Request):
    try:
        status = await request.app.state.engine.status(request.app.state.settings.health_timeout)
    except EngineCallError as exc:
        if from_engine_error(exc).status < 500:
            raise
        return ApiError(
            503, "The engine is not available", type="server_error", code="engine_unavailable"
        ).response()
    return JSONResponse(
        {
            "status": "ok",
            "engine": {
                "address": request.app.state.engine.address,
                "backend": pb.Backend.Name(status.backend).removeprefix("BACKEND_").lower(),
                "gpu_offload": status.gpu_offload,
                "version": status.engine_version,
                "llama_cpp_python_version": status.llama_cpp_python_version,
                "uptime_seconds": round(status.uptime_seconds, 3),
                "loaded_models": [
                    {"id": m.id, "memory_bytes": m.memory_bytes, "active_requests": m.active_requests}
                    for m in status.loaded_models
                ],
            },
        }
    )
