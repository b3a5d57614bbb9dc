"""Finding the model an Ollama name means, and loading it before a request."""

import time

from hearth.adapter.ollama.errors import model_not_found
from hearth.adapter.ollama.names import candidate_ids
from hearth.client import AsyncEngineClient
from hearth.engine.v1 import engine_pb2 as pb


async def resolve_model(engine: AsyncEngineClient, name: str) -> pb.Model:
    """The model ``name`` means ("<id>", "<id>:latest", or an exact id), or a
    404 in Ollama's words; one engine call. Files that cannot be used are not
    listed, and so not found either (`hearth models` says why)."""
    models = {model.id: model for model in await engine.list_models()}
    for candidate in candidate_ids(name):
        model = models.get(candidate)
        if model is not None and model.state != pb.MODEL_STATE_INVALID:
            return model
    raise model_not_found(name)


async def ensure_loaded(engine: AsyncEngineClient, model: pb.Model) -> int:
    """Loads ``model`` unless it is ready; the nanoseconds that took (Ollama's
    load_duration). The request's own keep_alive travels with the request."""
    if model.state == pb.MODEL_STATE_READY:
        return 0
    started = time.perf_counter_ns()
    await engine.load_model(model.id)
    return time.perf_counter_ns() - started
