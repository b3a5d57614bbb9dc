"""POST /api/pull: Hugging Face GGUF repositories, named as Ollama names them
("hf.co/owner/repo:Q4_K_M"), with Ollama's progress lines."""

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from hearth.adapter.common.errors import ApiError, as_api_error, ollama_error_body
from hearth.adapter.ollama.answers import NDJSON, ndjson_line
from hearth.adapter.ollama.errors import bad_request
from hearth.adapter.ollama.names import pull_reference, pulled_model_id
from hearth.adapter.ollama.protocol import PullRequest
from hearth.adapter.openapi import streamed
from hearth.client import EngineCallError
from hearth.engine.v1 import engine_pb2 as pb

router = APIRouter()

SUCCESS = {"status": "success"}


def progress_lines(message: pb.PullModelResponse, previous_phase: int) -> list[dict]:
    """Ollama's progress objects for one engine progress message."""
    phase = message.phase
    if phase == pb.PULL_PHASE_RESOLVING:
        return [] if previous_phase == phase else [{"status": "pulling manifest"}]
    if phase == pb.PULL_PHASE_DOWNLOADING:
        line: dict = {"status": f"pulling {message.sha256[:12] or message.file}"}
        if message.sha256:
            line["digest"] = f"sha256:{message.sha256}"
        line["total"] = message.total_bytes
        line["completed"] = message.completed_bytes
        return [line]
    if phase == pb.PULL_PHASE_VERIFYING:
        return [] if previous_phase == phase else [{"status": "verifying sha256 digest"}]
    if phase == pb.PULL_PHASE_DONE:
        return [{"status": "writing manifest"}, SUCCESS]
    return []


async def _name_as_pulled(engine, model: pb.Model, name: str) -> None:
    """The pulled file is the model named after it; the name it was pulled by
    becomes an alias of it (as in Ollama, where that name is the model's)."""
    alias = pulled_model_id(name)
    if alias is None or alias == model.id:
        return
    try:
        await engine.copy_model(model.id, alias)
    except EngineCallError as exc:
        if exc.reason != "ALREADY_EXISTS":  # already there from an earlier pull
            raise


async def _progress(engine, stream, name: str) -> AsyncIterator[dict]:
    previous = pb.PULL_PHASE_UNSPECIFIED
    async for message in stream:
        if message.phase == pb.PULL_PHASE_DONE:
            await _name_as_pulled(engine, message.model, name)
        for line in progress_lines(message, previous):
            yield line
        previous = message.phase
        if message.phase == pb.PULL_PHASE_DONE:
            return
    raise ApiError(502, "the engine ended the download without finishing it", type="server_error")


async def _lines(engine, stream, name: str) -> AsyncIterator[str]:
    # However the response ends (a client that leaves included), the engine
    # call is cancelled, which stops the download and removes its partial file.
    try:
        async for line in _progress(engine, stream, name):
            yield ndjson_line(line)
    except (ApiError, EngineCallError) as exc:
        yield ndjson_line(ollama_error_body(as_api_error(exc)))
    finally:
        stream.cancel()


@router.post(
    "/api/pull",
    response_model=None,
    responses=streamed(
        None,
        NDJSON,
        'Newline-delimited progress objects ({"status": …, "total": …, "completed": …}), the last '
        '{"status": "success"} or {"error": …}; with stream: false {"status": "success"} alone',
    ),
)
async def pull(body: PullRequest, request: Request):
    reference = pull_reference(body.model)
    if reference is None:
        raise bad_request(
            f"cannot pull '{body.model}': Hearth pulls GGUF files from Hugging Face; "
            "name one as hf.co/<owner>/<repository>[:<quantization>], e.g. hf.co/unsloth/gemma-3-270m-it-GGUF:Q4_K_M"
        )
    engine = request.app.state.engine
    stream = await engine.pull(pb.PullModelRequest(reference=reference))
    if body.stream:
        return StreamingResponse(_lines(engine, stream, body.model), media_type=NDJSON)
    try:
        async for _ in _progress(engine, stream, body.model):
            pass
    finally:
        stream.cancel()
    return SUCCESS
