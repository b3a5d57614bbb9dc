"""Finding the model an Ollama name means, and loading it before a request."""

import time

from hearth.adapter.engine_client import EngineClient
from hearth.adapter.errors import OpenAIError
from hearth.adapter.ollama.errors import model_not_found
from hearth.adapter.ollama.names import candidate_ids
from hearth.engine.v1 import engine_pb2 as pb


async def resolve_model(engine: EngineClient, name: str) -> pb.Model:
    """The model ``name`` means ("<id>", "<id>:latest", or an exact id), or a
    404 in Ollama's words. Files that cannot be used are not listed, and so
    not found either (`hearth models` says why)."""
    for candidate in candidate_ids(name):
        try:
            model = await engine.get_model(candidate)
        except OpenAIError as exc:
            if exc.status == 404:
                continue
            raise
        if model.state != pb.MODEL_STATE_INVALID:
            return model
    raise model_not_found(name)


async def ensure_loaded(engine: EngineClient, model: pb.Model) -> int:
    """Loads ``model`` unless it is ready; the nanoseconds that took (Ollama's
    load_duration). The request's own keep_alive travels with the request."""
    if model.state == pb.MODEL_STATE_READY:
        return 0
    started = time.perf_counter_ns()
    await engine.load_model(model.id)
    return time.perf_counter_ns() - started
