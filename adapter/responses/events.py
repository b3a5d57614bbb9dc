"""The Responses API's event stream, each event with a rising
sequence_number: response.created and .in_progress; per output item
output_item.added, for a reasoning item (first, when the model thinks)
content_part.added, reasoning_text.delta…, reasoning_text.done and
content_part.done (with reasoning_summary_part/_text events beside them
when a summary is asked for), for a message content_part.added, output_text.delta…,
output_text.done and content_part.done, for a function call
function_call_arguments.delta and .done; output_item.done; then
response.completed, response.incomplete (max_output_tokens cut it, and the
item it cut is incomplete too), or an ``error`` event and response.failed when
the generation fails midway."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from hearth.adapter.common.errors import ApiError, as_api_error
from hearth.adapter.responses.protocol import ResponsesRequest
from hearth.adapter.responses.translate import (
    Prepared,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    response_object,
    summarized,
    usage_of,
)
from hearth.client import EngineCallError, finish_reason_name

Event = tuple[str, dict]


class _Writer:
    def __init__(self):
        self.sequence = 0

    def __call__(self, kind: str, /, **fields) -> Event:
        event = (kind, {"type": kind, "sequence_number": self.sequence, **fields})
        self.sequence += 1
        return event


@dataclass
class _OpenMessage:
    item_id: str
    index: int
    texts: list[str]
    # A reasoning item whose summary was asked for: its summary part streams beside its text.
    summary: bool = False


def _reasoning_started(event, reasoning: _OpenMessage, item: dict) -> list[Event]:
    where = {"item_id": reasoning.item_id, "output_index": reasoning.index}
    started = [
        event("response.output_item.added", output_index=reasoning.index, item=item),
        event("response.content_part.added", **where, content_index=0, part={"type": "reasoning_text", "text": ""}),
    ]
    if reasoning.summary:
        part = {"type": "summary_text", "text": ""}
        started.append(event("response.reasoning_summary_part.added", **where, summary_index=0, part=part))
    return started


def _reasoning_delta(event, reasoning: _OpenMessage, delta: str) -> list[Event]:
    where = {"item_id": reasoning.item_id, "output_index": reasoning.index}
    deltas = [event("response.reasoning_text.delta", **where, content_index=0, delta=delta)]
    if reasoning.summary:
        deltas.append(event("response.reasoning_summary_text.delta", **where, summary_index=0, delta=delta))
    return deltas


def _reasoning_done(event, reasoning: _OpenMessage) -> list[Event]:
    text = "".join(reasoning.texts)
    where = {"item_id": reasoning.item_id, "output_index": reasoning.index}
    done = [
        event("response.reasoning_text.done", **where, content_index=0, text=text),
        event("response.content_part.done", **where, content_index=0, part={"type": "reasoning_text", "text": text}),
    ]
    if reasoning.summary:
        part = {"type": "summary_text", "text": text}
        done.append(event("response.reasoning_summary_text.done", **where, summary_index=0, text=text))
        done.append(event("response.reasoning_summary_part.done", **where, summary_index=0, part=part))
    item = reasoning_item(reasoning.item_id, text, summary=reasoning.summary)
    done.append(event("response.output_item.done", output_index=reasoning.index, item=item))
    return done


def _message_done(event, message: _OpenMessage, status: str) -> list[Event]:
    text = "".join(message.texts)
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    where = {"item_id": message.item_id, "output_index": message.index, "content_index": 0}
    return [
        event("response.output_text.done", **where, text=text, logprobs=[]),
        event("response.content_part.done", **where, part=part),
        event(
            "response.output_item.done", output_index=message.index, item=message_item(message.item_id, text, status)
        ),
    ]


def error_fields(error: ApiError) -> dict:
    """What an ``error`` event and a failed Response's ``error`` carry."""
    return {"code": error.code or error.type, "message": error.message}


async def response_events(
    stream, request: ResponsesRequest, prepared: Prepared, response_id: str, created_at: int, *, stored: bool
) -> AsyncIterator[Event]:
    event = _Writer()
    output: list[dict] = []

    def response(status: str, usage: dict | None = None, error: dict | None = None) -> dict:
        return response_object(
            request, response_id, created_at, status=status, output=output, usage=usage, stored=stored, error=error
        )

    yield event("response.created", response=response("in_progress"))
    yield event("response.in_progress", response=response("in_progress"))
    try:
        async for done in _output_events(stream, event, output, prepared, response, summarized(request)):
            yield done
    except (ApiError, EngineCallError) as exc:
        error = as_api_error(exc)
        yield event("error", **error_fields(error), param=error.param)
        yield event("response.failed", response=response("failed", error=error_fields(error)))


async def _output_events(
    stream, event, output: list[dict], prepared: Prepared, response, summary: bool
) -> AsyncIterator[Event]:
    open_message: _OpenMessage | None = None
    thinking: _OpenMessage | None = None
    finish = "stop"
    async for message in stream:
        if message.reasoning:
            if thinking is None:
                thinking = _OpenMessage(new_id("rs"), len(output), [], summary)
                output.append(reasoning_item(thinking.item_id, "", "in_progress"))
                for started in _reasoning_started(event, thinking, output[-1]):
                    yield started
            thinking.texts.append(message.reasoning)
            for delta in _reasoning_delta(event, thinking, message.reasoning):
                yield delta
        if thinking is not None and (message.text or message.tool_calls or message.HasField("usage")):
            # The reasoning is over once the answer (or the end) comes.
            for done in _reasoning_done(event, thinking):
                yield done
            output[thinking.index] = done[1]["item"]
            thinking = None
        if message.text:
            if open_message is None:
                open_message = _OpenMessage(new_id("msg"), len(output), [])
                output.append(message_item(open_message.item_id, "", "in_progress"))
                yield event("response.output_item.added", output_index=open_message.index, item=output[-1])
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield event(
                    "response.content_part.added",
                    item_id=open_message.item_id,
                    output_index=open_message.index,
                    content_index=0,
                    part=part,
                )
            open_message.texts.append(message.text)
            yield event(
                "response.output_text.delta",
                item_id=open_message.item_id,
                output_index=open_message.index,
                content_index=0,
                delta=message.text,
                logprobs=[],
            )
        if message.tool_calls and open_message is not None:
            for done in _message_done(event, open_message, "completed"):
                yield done
            output[open_message.index] = done[1]["item"]
            open_message = None
        for call in message.tool_calls:
            index = len(output)
            output.append(function_call_item(call, prepared.names))
            item = function_call_item(call, prepared.names, "in_progress")
            yield event("response.output_item.added", output_index=index, item=item)
            yield event(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=call.arguments
            )
            yield event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=call.arguments,
                name=item["name"],
            )
            yield event("response.output_item.done", output_index=index, item=output[index])
        if message.finish_reason:
            finish = finish_reason_name(message.finish_reason)
        if message.HasField("usage"):
            status = "incomplete" if finish == "length" else "completed"
            if open_message is not None:
                for done in _message_done(event, open_message, status):
                    yield done
                output[open_message.index] = done[1]["item"]
            yield event(f"response.{status}", response=response(status, usage_of(message)))
            return
    raise EngineCallError.stream_truncated()
