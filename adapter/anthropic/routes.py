"""POST /v1/messages and /v1/messages/count_tokens (``?beta=true`` and the
``anthropic-beta`` header are accepted and change nothing)."""

import logging
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hearth.adapter.anthropic.events import message_events
from hearth.adapter.anthropic.protocol import CountTokensRequest, MessageResponse, MessagesRequest
from hearth.adapter.anthropic.translate import (
    add_tools,
    messages_of,
    messages_to_generate,
    stop_reason,
    thinking_block,
    tool_use_block,
    usage_of,
)
from hearth.adapter.common.errors import anthropic_error_body
from hearth.adapter.common.streaming import StartingGeneration, collect, named_sse_response
from hearth.adapter.common.text import header_list
from hearth.adapter.openapi import streamed
from hearth.engine.v1 import engine_pb2 as pb

log = logging.getLogger(__name__)
router = APIRouter()

# Names the server tools left out of the prompt (a local server cannot run them).
LEFT_OUT_HEADER = "x-hearth-tools-left-out"


def _message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


@router.post(
    "/v1/messages",
    response_model=None,
    responses=streamed(
        MessageResponse,
        "text/event-stream",
        "A message, or with stream: true Anthropic's named server-sent events "
        "(message_start, content_block_start, content_block_delta, content_block_stop, message_delta, "
        "message_stop, ping, error)",
    ),
)
async def create_message(body: MessagesRequest, request: Request):
    engine = request.app.state.engine
    model = await engine.get_model(body.model)
    message_id = _message_id()
    generate, left_out = messages_to_generate(body, message_id, model.max_output_tokens)
    headers = {LEFT_OUT_HEADER: header_list(left_out)} if left_out else {}
    if left_out:
        log.info("left out server tools a local model cannot run: %s", ", ".join(left_out))
    if body.stream:
        interval = request.app.state.settings.stream_ping_interval
        stream = await StartingGeneration.start(engine, generate, grace=min(1.0, interval))
        events = message_events(stream, message_id, body.model, interval)
        return named_sse_response(events, stream, anthropic_error_body, headers)
    stream = await engine.generate(generate)
    result = await collect(stream, 1)
    choice = result.choices[0]
    content = [thinking_block(choice.reasoning)] if choice.reasoning else []
    content += [{"type": "text", "text": choice.text}] if choice.text else []
    content.extend(tool_use_block(call) for call in choice.tool_calls)
    answer = MessageResponse(
        id=message_id,
        model=body.model,
        content=content,
        stop_reason=stop_reason(choice.finish_reason, choice.stop_sequence),
        stop_sequence=choice.stop_sequence or None,
        usage=usage_of(result.last),
    )
    if headers:
        return JSONResponse(answer.model_dump(), headers=headers)
    return answer


@router.post("/v1/messages/count_tokens")
async def count_tokens(body: CountTokensRequest, request: Request) -> dict:
    """The tokens of the prompt the model would see for these messages."""
    tokenize = pb.TokenizeRequest(model=body.model)
    tokenize.messages.extend(messages_of(body))
    if body.tool_choice is None or body.tool_choice.type != "none":
        add_tools(body, tokenize.tools)
    reply = await request.app.state.engine.tokenize(tokenize)
    return {"input_tokens": len(reply.tokens)}
