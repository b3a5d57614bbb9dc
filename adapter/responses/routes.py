"""POST /v1/responses; GET and DELETE /v1/responses/{id} (this server keeps no
responses, so an id is never found)."""

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hearth.adapter.common.errors import ApiError
from hearth.adapter.common.streaming import collect, named_sse_response, now
from hearth.adapter.common.text import header_list
from hearth.adapter.responses.events import response_events
from hearth.adapter.responses.protocol import ResponsesRequest
from hearth.adapter.responses.translate import (
    function_call_item,
    message_item,
    new_id,
    response_object,
    responses_to_generate,
    usage_of,
)

log = logging.getLogger(__name__)
router = APIRouter()

# Names the tools left out of the prompt (hosted tools a local server cannot run).
LEFT_OUT_HEADER = "x-hearth-tools-left-out"


def _stream_error(error: ApiError) -> dict:
    return {"type": "error", "code": error.code, "message": error.message, "param": error.param}


@router.post("/v1/responses", response_model=None)
async def create_response(body: ResponsesRequest, request: Request):
    response_id = new_id("resp")
    generate, left_out = responses_to_generate(body, response_id)
    headers = {LEFT_OUT_HEADER: header_list(left_out)} if left_out else {}
    if left_out:
        log.info("left out tools a local model cannot use: %s", ", ".join(left_out))
    stream = await request.app.state.engine.generate(generate)
    created_at = now()
    if body.stream:
        return named_sse_response(
            response_events(stream, body, response_id, created_at), stream, _stream_error, headers
        )
    result = await collect(stream, 1)
    choice = result.choices[0]
    output = [message_item(new_id("msg"), choice.text)] if choice.text else []
    output.extend(function_call_item(call) for call in choice.tool_calls)
    status = "incomplete" if choice.finish_reason == "length" else "completed"
    answer = response_object(body, response_id, created_at, status=status, output=output, usage=usage_of(result.last))
    return JSONResponse(answer, headers=headers)


def _not_kept(response_id: str) -> ApiError:
    return ApiError(
        404,
        f"No response with id '{response_id}': this server keeps no responses",
        param="response_id",
        code="not_found",
    )


@router.get("/v1/responses/{response_id}")
async def retrieve_response(response_id: str):
    raise _not_kept(response_id)


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str):
    raise _not_kept(response_id)
