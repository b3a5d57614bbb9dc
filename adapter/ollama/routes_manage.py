"""DELETE /api/delete and POST /api/copy; what Hearth does not do
(/api/create, /api/push, /api/blobs/*) answers 501 saying so.

None of these is in /openapi.json: generic OpenAPI tools (fuzzers, generated
clients) must not find operations that delete or alias models, nor ones
that only say they do not exist. The API key guard covers them like every
other route."""

from fastapi import APIRouter, Request, Response

from hearth.adapter.ollama.errors import not_supported
from hearth.adapter.ollama.lookup import resolve_model
from hearth.adapter.ollama.names import new_model_id
from hearth.adapter.ollama.protocol import CopyRequest, DeleteRequest

router = APIRouter()


@router.delete("/api/delete", include_in_schema=False)
async def delete(body: DeleteRequest, request: Request) -> Response:
    engine = request.app.state.engine
    model = await resolve_model(engine, body.model)
    await engine.delete_model(model.id)
    return Response(status_code=200)


@router.post("/api/copy", include_in_schema=False)
async def copy(body: CopyRequest, request: Request) -> Response:
    engine = request.app.state.engine
    source = await resolve_model(engine, body.source)
    await engine.copy_model(source.id, new_model_id(body.destination))
    return Response(status_code=200)


@router.post("/api/create", include_in_schema=False)
async def create() -> None:
    raise not_supported("creating models (/api/create); put a GGUF file in the models folder or declare it in the config file")


@router.post("/api/push", include_in_schema=False)
async def push() -> None:
    raise not_supported("pushing models (/api/push)")


@router.post("/api/blobs/{digest}", include_in_schema=False)
@router.head("/api/blobs/{digest}", include_in_schema=False)
async def blobs(digest: str) -> None:
    raise not_supported("blobs (/api/blobs); Hearth does not build models from uploaded files")
