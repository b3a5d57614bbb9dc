"""GET /v1/models and GET /v1/models/{id}"""

from fastapi import APIRouter, Request

from hearth.adapter.common.errors import model_not_found
from hearth.adapter.openai.protocol.models import ModelCard, ModelList
from hearth.client import EngineCallError, model_state_name
from hearth.engine.v1 import engine_pb2 as pb

router = APIRouter()


def _card(model: pb.Model) -> ModelCard:
    return ModelCard(
        id=model.id,
        created=model.modified_unix_seconds,
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        architecture=model.architecture,
        quantization=model.quantization,
        parameter_count=model.parameter_count,
        state=model_state_name(model.state),
        loaded=model.state == pb.MODEL_STATE_READY,
        memory_bytes=model.memory_bytes,
        capabilities=[pb.Capability.Name(c).removeprefix("CAPABILITY_").lower() for c in model.capabilities],
        reasoning_format=model.reasoning_format or "none",
    )


@router.get("/v1/models")
async def list_models(request: Request) -> ModelList:
    models = await request.app.state.engine.list_models()
    # Files that cannot be served are not offered to clients; `hearth models` shows them.
    return ModelList(data=[_card(m) for m in models if m.state != pb.MODEL_STATE_INVALID])


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> ModelCard:
    try:
        model = await request.app.state.engine.get_model(model_id)
    except EngineCallError as exc:
        if exc.reason == "MODEL_NOT_FOUND":
            raise model_not_found(model_id) from exc
        raise
    if model.state == pb.MODEL_STATE_INVALID:
        raise model_not_found(model_id)
    return _card(model)
