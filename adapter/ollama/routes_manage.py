"""DELETE /api/delete and POST /api/copy; what Hearth does not do
(/api/create, /api/push, /api/blobs/*) answers 501 saying so.

All of them are in /openapi.json like every other route (the schemathesis test
leaves them out itself: they change the models folder or only say they do not
exist). The API key guard covers them like every other route."""

from fastapi import APIRouter, Request, Response

from hearth.adapter.ollama.errors import not_supported
from hearth.adapter.ollama.lookup import resolve_model
from hearth.adapter.ollama.names import new_model_id
from hearth.adapter.ollama.protocol import CopyRequest, DeleteRequest
from hearth.adapter.openapi import OllamaErrorResponse

router = APIRouter()

# Routes that always answer 501: documented as such, with no success response.
NOT_SUPPORTED = {
    "status_code": 501,
    "response_class": Response,
    "responses": {501: {"model": OllamaErrorResponse, "description": "Hearth does not support it"}},
}


@router.delete("/api/delete", response_class=Response, responses={200: {"description": "The model is deleted"}})
async def delete(body: DeleteRequest, request: Request) -> Response:
    engine = request.app.state.engine
    model = await resolve_model(engine, body.model)
    await engine.delete_model(model.id)
    return Response(status_code=200)


@router.post("/api/copy", response_class=Response, responses={200: {"description": "The copy is made"}})
async def copy(body: CopyRequest, request: Request) -> Response:
    engine = request.app.state.engine
    source = await resolve_model(engine, body.source)
    await engine.copy_model(source.id, new_model_id(body.destination))
    return Response(status_code=200)


@router.post("/api/create", **NOT_SUPPORTED)
async def create() -> None:
    raise not_supported("creating models (/api/create); put a GGUF file in the models folder or declare it in the config file")


@router.post("/api/push", **NOT_SUPPORTED)
async def push() -> None:
    raise not_supported("pushing models (/api/push)")


@router.post("/api/blobs/{digest}", **NOT_SUPPORTED)
@router.head("/api/blobs/{digest}", **NOT_SUPPORTED)
async def blobs(digest: str) -> None:
    raise not_supported("blobs (/api/blobs); Hearth does not build models from uploaded files")
