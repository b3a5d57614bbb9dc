"""POST /v1/completions"""

from fastapi import APIRouter, Request

from hearth.adapter.common.streaming import Collected, generation_answer, new_id
from hearth.adapter.openai.logprobs import completion_logprobs
from hearth.adapter.openai.protocol.completions import (
    Completion,
    CompletionChoice,
    CompletionRequest,
)
from hearth.adapter.openai.translate import completion_to_generate, usage_of
from hearth.adapter.openapi import streamed
from hearth.client import finish_reason_name

router = APIRouter()


async def _completion_events(stream, completion_id: str, created: int, model: str, n: int, include_usage: bool):
    # Characters of each choice's text so far, for the logprobs' text_offset.
    offsets = [0] * n
    async for message in stream:
        finish = finish_reason_name(message.finish_reason) if message.finish_reason else None
        if message.text or finish or message.logprobs:
            logprobs = completion_logprobs(list(message.logprobs), offsets[message.index]) if message.logprobs else None
            offsets[message.index] += sum(len(entry.token) for entry in message.logprobs)
            chunk = Completion(
                id=completion_id,
                created=created,
                model=model,
                choices=[
                    CompletionChoice(index=message.index, text=message.text, finish_reason=finish, logprobs=logprobs)
                ],
            ).model_dump()
            if not include_usage:
                del chunk["usage"]
            yield chunk
        if message.HasField("usage") and include_usage:
            yield Completion(id=completion_id, created=created, model=model, choices=[], usage=usage_of(message)).model_dump()


@router.post(
    "/v1/completions",
    response_model=None,
    responses=streamed(
        Completion,
        "text/event-stream",
        "A Completion, or with stream: true server-sent events, each data line a Completion of the text so far "
        "added, then data: [DONE]",
    ),
)
async def create_completion(body: CompletionRequest, request: Request):
    completion_id = new_id("cmpl")
    generate = completion_to_generate(body, completion_id)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def events_of(stream, created: int, n: int):
        return _completion_events(stream, completion_id, created, body.model, n, include_usage)

    def whole_of(result: Collected, created: int) -> Completion:
        choices = [
            CompletionChoice(
                index=index,
                text=choice.text,
                finish_reason=choice.finish_reason,
                logprobs=completion_logprobs(choice.logprobs) if generate.logprobs else None,
            )
            for index, choice in enumerate(result.choices)
        ]
        return Completion(
            id=completion_id, created=created, model=body.model, choices=choices, usage=usage_of(result.last)
        )

    return await generation_answer(request, generate, streamed=body.stream, events_of=events_of, whole_of=whole_of)
