"""POST /api/chat and POST /api/generate"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hearth.adapter.common.streaming import new_id
from hearth.adapter.ollama.answers import (
    NDJSON,
    BodyOf,
    Clock,
    answer,
    chat_body,
    generate_body,
    loaded_answer,
)
from hearth.adapter.ollama.lookup import ensure_loaded, resolve_model
from hearth.adapter.ollama.options import keep_alive_seconds
from hearth.adapter.ollama.protocol import (
    ChatRequest,
    GenerateRequest,
    GenerationFields,
)
from hearth.adapter.ollama.translate import chat_to_generate, check_think, generate_to_generate
from hearth.adapter.openapi import streamed
from hearth.engine.v1 import engine_pb2 as pb

router = APIRouter()


async def _load_or_unload(request: Request, body: GenerationFields, model: pb.Model, body_of: BodyOf) -> JSONResponse:
    """A request with nothing to answer loads the model (keep_alive applies
    from now), or with keep_alive 0 unloads it, as Ollama does."""
    engine = request.app.state.engine
    keep_alive = keep_alive_seconds(body.keep_alive)
    if keep_alive == 0:
        if model.state in (pb.MODEL_STATE_READY, pb.MODEL_STATE_LOADING):
            await engine.unload_model(model.id)
        return JSONResponse(loaded_answer(body.model, body_of, "unload"))
    await engine.load_model(model.id, keep_alive)
    return JSONResponse(loaded_answer(body.model, body_of, "load"))


async def _run(request: Request, body: GenerationFields, model: pb.Model, generate: pb.GenerateRequest, body_of: BodyOf):
    clock = Clock()
    engine = request.app.state.engine
    clock.load_ns = await ensure_loaded(engine, model)
    stream = await engine.generate(generate)
    return await answer(stream, clock, body.model, body_of, body.stream)


@router.post(
    "/api/chat",
    response_model=None,
    responses=streamed(
        None,
        NDJSON,
        "Newline-delimited JSON objects, each a piece of the message, the last with done: true and the counts; "
        "with stream: false one such object",
    ),
)
async def chat(body: ChatRequest, request: Request):
    model = await resolve_model(request.app.state.engine, body.model)
    # Checked before anything loads: a bad request changes nothing.
    check_think(body, model)
    generate = chat_to_generate(body, model.id, new_id("ollama-chat"))
    if not body.messages:
        return await _load_or_unload(request, body, model, chat_body)
    return await _run(request, body, model, generate, chat_body)


@router.post(
    "/api/generate",
    response_model=None,
    responses=streamed(
        None,
        NDJSON,
        "Newline-delimited JSON objects, each a piece of the response, the last with done: true and the counts; "
        "with stream: false one such object",
    ),
)
async def generate(body: GenerateRequest, request: Request):
    model = await resolve_model(request.app.state.engine, body.model)
    check_think(body, model)
    generate = generate_to_generate(body, model.id, new_id("ollama-generate"))
    if not body.prompt:
        return await _load_or_unload(request, body, model, generate_body)
    return await _run(request, body, model, generate, generate_body)
