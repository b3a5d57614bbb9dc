"""POST /api/embed and the older POST /api/embeddings"""

import time

from fastapi import APIRouter, Request

from hearth.adapter.common.streaming import new_id
from hearth.adapter.ollama.errors import bad_request
from hearth.adapter.ollama.lookup import ensure_loaded, resolve_model
from hearth.adapter.ollama.options import keep_alive_seconds
from hearth.adapter.ollama.protocol import EmbeddingsRequest, EmbedRequest
from hearth.adapter.openai.protocol.embeddings import MAX_INPUTS
from hearth.engine.v1 import engine_pb2 as pb

router = APIRouter()



def embed_request(model_id: str, inputs: list[str], truncate: bool, keep_alive) -> pb.EmbedRequest:
    request = pb.EmbedRequest(model=model_id, inputs=inputs, truncate=truncate, request_id=new_id("ollama-embed"))
    seconds = keep_alive_seconds(keep_alive)
    if seconds is not None:
        request.keep_alive_seconds = seconds
    return request


@router.post("/api/embed")
async def embed(body: EmbedRequest, request: Request) -> dict:
    inputs = [body.input] if isinstance(body.input, str) else body.input
    if not inputs or any(not text for text in inputs):
        raise bad_request("input must be a non-empty string or a list of non-empty strings")
    if len(inputs) > MAX_INPUTS:
        raise bad_request(f"at most {MAX_INPUTS} inputs are allowed in one request")
    if body.dimensions is not None:
        raise bad_request("dimensions is not supported: Hearth returns each model's full embedding")
    engine = request.app.state.engine
    started = time.perf_counter_ns()
    model = await resolve_model(engine, body.model)
    embed_call = embed_request(model.id, inputs, body.truncate, body.keep_alive)
    load_ns = await ensure_loaded(engine, model)
    reply = await engine.embed(embed_call)
    return {
        "model": body.model,
        "embeddings": [list(e.values) for e in reply.embeddings],
        "total_duration": time.perf_counter_ns() - started,
        "load_duration": load_ns,
        "prompt_eval_count": reply.prompt_tokens,
    }


@router.post("/api/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request) -> dict:
    engine = request.app.state.engine
    model = await resolve_model(engine, body.model)
    if not body.prompt:
        # Ollama answers an empty prompt with an empty vector.
        return {"embedding": []}
    # The old endpoint never truncated: a prompt past the context is an error.
    reply = await engine.embed(embed_request(model.id, [body.prompt], False, body.keep_alive))
    return {"embedding": list(reply.embeddings[0].values)}
