"""POST /api/pull: Hugging Face GGUF repositories, named as Ollama names them
("hf.co/owner/repo:Q4_K_M"), with Ollama's progress lines."""

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from hearth.adapter.errors import OpenAIError, ollama_error_body
from hearth.adapter.ollama.answers import NDJSON, ndjson_line
from hearth.adapter.ollama.errors import bad_request
from hearth.adapter.ollama.names import listed_name, pull_reference
from hearth.adapter.ollama.protocol import PullRequest
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
        # Hearth names a pulled model after its file, not after the name pulled
        # (ids cannot hold "/"): say which name to use.
        return [{"status": "writing manifest"}, {"status": f"use it as {listed_name(message.model.id)}"}, SUCCESS]
    return []


async def _progress(stream) -> AsyncIterator[dict]:
    previous = pb.PULL_PHASE_UNSPECIFIED
    async for message in stream:
        for line in progress_lines(message, previous):
            yield line
        previous = message.phase
        if message.phase == pb.PULL_PHASE_DONE:
            return
    raise OpenAIError(502, "the engine ended the download without finishing it", type="server_error")


async def _lines(stream) -> AsyncIterator[str]:
    # However the response ends (a client that leaves included), the engine
    # call is cancelled, which stops the download and removes its partial file.
    try:
        async for line in _progress(stream):
            yield ndjson_line(line)
    except OpenAIError as exc:
        yield ndjson_line(ollama_error_body(exc))
    finally:
        stream.cancel()


# Not in /openapi.json, like the other model-management routes (routes_manage).
@router.post("/api/pull", response_model=None, include_in_schema=False)
async def pull(body: PullRequest, request: Request):
    reference = pull_reference(body.model)
    if reference is None:
        raise bad_request(
            f"cannot pull '{body.model}': Hearth pulls GGUF files from Hugging Face; "
            "name one as hf.co/<owner>/<repository>[:<quantization>], e.g. hf.co/unsloth/gemma-3-270m-it-GGUF:Q4_K_M"
        )
    stream = await request.app.state.engine.pull(pb.PullModelRequest(reference=reference))
    if body.stream:
        return StreamingResponse(_lines(stream), media_type=NDJSON)
    try:
        async for _ in _progress(stream):
            pass
    finally:
        stream.cancel()
    return SUCCESS
