"""POST /v1/chat/completions"""

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from hearth.adapter.generation import FINISH_REASONS, collect, new_id, now, sse_stream, usage_of
from hearth.adapter.protocol.chat import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
)
from hearth.adapter.translate import chat_to_generate

router = APIRouter()


def _chunk(completion_id: str, created: int, model: str, choices: list[ChatChunkChoice], include_usage: bool) -> dict:
    chunk = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=choices).model_dump()
    for choice, source in zip(chunk["choices"], choices):
        choice["delta"] = source.delta.model_dump(exclude_none=True)
    if not include_usage:
        del chunk["usage"]
    return chunk


async def _chat_events(stream, completion_id: str, created: int, model: str, n: int, include_usage: bool):
    def chunk(index: int, delta: ChatDelta, finish_reason: str | None = None) -> dict:
        choice = ChatChunkChoice(index=index, delta=delta, finish_reason=finish_reason)
        return _chunk(completion_id, created, model, [choice], include_usage)

    for index in range(n):
        yield chunk(index, ChatDelta(role="assistant", content=""))
    async for message in stream:
        if message.text:
            yield chunk(message.index, ChatDelta(content=message.text))
        if message.finish_reason:
            yield chunk(message.index, ChatDelta(), FINISH_REASONS.get(message.finish_reason, "stop"))
        if message.HasField("usage") and include_usage:
            final = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[], usage=usage_of(message))
            yield final.model_dump()


@router.post("/v1/chat/completions", response_model=None)
async def create_chat_completion(body: ChatCompletionRequest, request: Request):
    completion_id = new_id("chatcmpl")
    generate = chat_to_generate(body, completion_id)
    stream = await request.app.state.engine.generate(generate)
    created = now()
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _chat_events(stream, completion_id, created, body.model, generate.n or 1, include_usage)
        return StreamingResponse(
            sse_stream(events, stream), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    result = await collect(stream, generate.n or 1)
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[
            ChatChoice(index=index, message=AssistantMessage(content=text), finish_reason=finish)
            for index, (text, finish) in enumerate(result.choices)
        ],
        usage=result.usage,
    )
