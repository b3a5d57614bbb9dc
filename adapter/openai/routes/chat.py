"""POST /v1/chat/completions"""

from fastapi import APIRouter, Request

from hearth.adapter.common.streaming import Collected, generation_answer, new_id
from hearth.adapter.openai.logprobs import chat_logprobs
from hearth.adapter.openai.protocol.chat import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
    FunctionCallOut,
    FunctionDelta,
    ToolCallDelta,
    ToolCallOut,
)
from hearth.adapter.openai.translate import chat_to_generate, usage_of
from hearth.adapter.openapi import streamed
from hearth.client import finish_reason_name

router = APIRouter()


def _tool_call_deltas(calls, first_index: int) -> list[ChatDelta]:
    """OpenAI streams a call as a first fragment with id, type and name, then
    fragments of arguments; each call here arrives whole, so two fragments."""
    deltas = []
    for offset, call in enumerate(calls):
        index = first_index + offset
        deltas.append(
            ChatDelta(
                tool_calls=[
                    ToolCallDelta(index=index, id=call.id, type="function", function=FunctionDelta(name=call.name, arguments=""))
                ]
            )
        )
        deltas.append(ChatDelta(tool_calls=[ToolCallDelta(index=index, function=FunctionDelta(arguments=call.arguments))]))
    return deltas


async def _chat_events(stream, completion_id: str, created: int, model: str, n: int, include_usage: bool):
    def chunk(index: int, delta: ChatDelta, finish_reason: str | None = None, logprobs=None) -> dict:
        choice = ChatChunkChoice(index=index, delta=delta, finish_reason=finish_reason, logprobs=logprobs)
        body = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[choice]).model_dump()
        body["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        if not include_usage:
            # With include_usage every chunk carries "usage": null, as OpenAI's do.
            del body["usage"]
        return body

    calls_made = [0] * n
    for index in range(n):
        yield chunk(index, ChatDelta(role="assistant", content=""))
    async for message in stream:
        if message.reasoning:
            yield chunk(message.index, ChatDelta(reasoning_content=message.reasoning))
        if message.text or message.logprobs:
            logprobs = chat_logprobs(message.logprobs) if message.logprobs else None
            yield chunk(message.index, ChatDelta(content=message.text), logprobs=logprobs)
        for delta in _tool_call_deltas(message.tool_calls, calls_made[message.index]):
            yield chunk(message.index, delta)
        calls_made[message.index] += len(message.tool_calls)
        if message.finish_reason:
            yield chunk(message.index, ChatDelta(), finish_reason_name(message.finish_reason))
        if message.HasField("usage") and include_usage:
            final = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[], usage=usage_of(message))
            yield final.model_dump()


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=streamed(
        ChatCompletion,
        "text/event-stream",
        "A ChatCompletion, or with stream: true server-sent events, each data line a ChatCompletionChunk, "
        "then data: [DONE]",
    ),
)
async def create_chat_completion(body: ChatCompletionRequest, request: Request):
    completion_id = new_id("chatcmpl")
    generate = chat_to_generate(body, completion_id)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def events_of(stream, created: int, n: int):
        return _chat_events(stream, completion_id, created, body.model, n, include_usage)

    def whole_of(result: Collected, created: int) -> ChatCompletion:
        choices = []
        for index, choice in enumerate(result.choices):
            calls = [
                ToolCallOut(id=call.id, function=FunctionCallOut(name=call.name, arguments=call.arguments))
                for call in choice.tool_calls
            ]
            message = AssistantMessage(
                content=choice.text or (None if calls else ""),
                tool_calls=calls or None,
                reasoning_content=choice.reasoning or None,
            )
            logprobs = chat_logprobs(choice.logprobs) if generate.logprobs else None
            choices.append(
                ChatChoice(index=index, message=message, finish_reason=choice.finish_reason, logprobs=logprobs)
            )
        return ChatCompletion(
            id=completion_id, created=created, model=body.model, choices=choices, usage=usage_of(result.last)
        )

    return await generation_answer(request, generate, streamed=body.stream, events_of=events_of, whole_of=whole_of)
