"""POST /v1/responses; GET and DELETE /v1/responses/{id} and GET
/v1/responses/{id}/input_items over the stored responses."""

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from hearth.adapter.common.errors import ApiError
from hearth.adapter.common.streaming import collect, named_sse_response, now
from hearth.adapter.common.text import header_list
from hearth.adapter.openapi import streamed
from hearth.adapter.responses.events import error_fields, response_events
from hearth.adapter.responses.protocol import ResponsesRequest
from hearth.adapter.responses.store import ResponseStore, StoredResponse
from hearth.adapter.responses.translate import (
    Prepared,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    response_object,
    responses_to_generate,
    summarized,
    usage_of,
)

log = logging.getLogger(__name__)
router = APIRouter()

# Names the tools left out of the prompt (hosted tools a local server cannot run).
LEFT_OUT_HEADER = "x-hearth-tools-left-out"
# Final states of a response worth keeping for a follow-up turn.
_KEPT_STATUSES = frozenset({"completed", "incomplete"})


def _store(request: Request) -> ResponseStore:
    return request.app.state.responses


def _not_found(response_id: str, param: str = "response_id") -> ApiError:
    return ApiError(
        404,
        f"No response with id '{response_id}' is stored (it was sent with store: false, deleted, or expired)",
        param=param,
        code="not_found",
    )


async def _stored(request: Request, response_id: str, param: str = "response_id") -> StoredResponse:
    stored = await asyncio.to_thread(_store(request).get, response_id)
    if stored is None:
        raise _not_found(response_id, param)
    return stored


async def _keep(request: Request, prepared: Prepared, history: list[dict], response: dict) -> None:
    conversation = [*history, *prepared.input_items, *response["output"]]
    stored = StoredResponse(response, prepared.input_items, conversation)
    await asyncio.to_thread(_store(request).put, response["id"], stored)


async def _kept_events(events, request: Request, prepared: Prepared, history: list[dict]):
    """``events``, storing the response when it ends completed or incomplete."""
    async for name, payload in events:
        if name.startswith("response.") and payload.get("response", {}).get("status") in _KEPT_STATUSES:
            await _keep(request, prepared, history, payload["response"])
        yield name, payload


def _stream_error(error: ApiError) -> dict:
    return {"type": "error", **error_fields(error), "param": error.param}


@router.post(
    "/v1/responses",
    response_model=None,
    responses=streamed(
        None,
        "text/event-stream",
        "A response object, or with stream: true the Responses API's named server-sent events "
        "(response.created, response.output_text.delta, …, response.completed)",
    ),
)
async def create_response(body: ResponsesRequest, request: Request):
    response_id = new_id("resp")
    history: list[dict] = []
    if body.previous_response_id:
        history = (await _stored(request, body.previous_response_id, "previous_response_id")).conversation
    prepared = responses_to_generate(body, response_id, history)
    headers = {LEFT_OUT_HEADER: header_list(prepared.left_out)} if prepared.left_out else {}
    if prepared.left_out:
        log.info("left out tools a local model cannot use: %s", ", ".join(prepared.left_out))
    stored = body.store is not False and _store(request).enabled
    stream = await request.app.state.engine.generate(prepared.generate)
    created_at = now()
    if body.stream:
        events = response_events(stream, body, prepared, response_id, created_at, stored=stored)
        if stored:
            events = _kept_events(events, request, prepared, history)
        return named_sse_response(events, stream, _stream_error, headers)
    result = await collect(stream, 1)
    choice = result.choices[0]
    status = "incomplete" if choice.finish_reason == "length" else "completed"
    output = [reasoning_item(new_id("rs"), choice.reasoning, summary=summarized(body))] if choice.reasoning else []
    output += [message_item(new_id("msg"), choice.text, status)] if choice.text else []
    output.extend(function_call_item(call, prepared.names) for call in choice.tool_calls)
    answer = response_object(
        body, response_id, created_at, status=status, output=output, usage=usage_of(result.last), stored=stored
    )
    if stored:
        await _keep(request, prepared, history, answer)
    return JSONResponse(answer, headers=headers)


@router.get("/v1/responses/{response_id}")
async def retrieve_response(response_id: str, request: Request):
    return (await _stored(request, response_id)).response


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request):
    if not await asyncio.to_thread(_store(request).delete, response_id):
        raise _not_found(response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = Query(default=None, max_length=256),
):
    items = (await _stored(request, response_id)).input_items
    if order == "desc":
        items = items[::-1]
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise ApiError(404, f"No input item with id '{after}' in response '{response_id}'", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
