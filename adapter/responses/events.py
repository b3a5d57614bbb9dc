"""The Responses API's event stream, each event with a rising
sequence_number: response.created and .in_progress; per output item
output_item.added, for a message content_part.added, output_text.delta…,
output_text.done and content_part.done, for a function call
function_call_arguments.delta and .done; output_item.done; then
response.completed (or response.incomplete when max_output_tokens cut it)."""

from collections.abc import AsyncIterator

from hearth.adapter.responses.protocol import ResponsesRequest
from hearth.adapter.responses.translate import (
    function_call_item,
    message_item,
    new_id,
    response_object,
    usage_of,
)
from hearth.client import finish_reason_name

Event = tuple[str, dict]


class _Writer:
    def __init__(self):
        self.sequence = 0

    def __call__(self, kind: str, /, **fields) -> Event:
        event = (kind, {"type": kind, "sequence_number": self.sequence, **fields})
        self.sequence += 1
        return event


def _message_done(event, item_id: str, index: int, text: str) -> list[Event]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    return [
        event("response.output_text.done", **where, text=text, logprobs=[]),
        event("response.content_part.done", **where, part=part),
        event("response.output_item.done", output_index=index, item=message_item(item_id, text)),
    ]


async def response_events(stream, request: ResponsesRequest, response_id: str, created_at: int) -> AsyncIterator[Event]:
    event = _Writer()

    def response(status: str, output: list, usage: dict | None = None) -> dict:
        return response_object(request, response_id, created_at, status=status, output=output, usage=usage)

    yield event("response.created", response=response("in_progress", []))
    yield event("response.in_progress", response=response("in_progress", []))
    output: list[dict] = []
    text_item: tuple[str, int] | None = None  # (id, output index) of the open message
    texts: list[str] = []
    finish = "stop"
    async for message in stream:
        if message.text:
            if text_item is None:
                text_item = (new_id("msg"), len(output))
                output.append(message_item(text_item[0], "", "in_progress"))
                yield event("response.output_item.added", output_index=text_item[1], item=output[-1])
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield event(
                    "response.content_part.added",
                    item_id=text_item[0],
                    output_index=text_item[1],
                    content_index=0,
                    part=part,
                )
            texts.append(message.text)
            yield event(
                "response.output_text.delta",
                item_id=text_item[0],
                output_index=text_item[1],
                content_index=0,
                delta=message.text,
                logprobs=[],
            )
        if message.tool_calls and text_item is not None:
            for done in _message_done(event, *text_item, "".join(texts)):
                yield done
            output[text_item[1]] = message_item(text_item[0], "".join(texts))
            text_item = None
        for call in message.tool_calls:
            index = len(output)
            output.append(function_call_item(call))
            item = function_call_item(call, "in_progress")
            yield event("response.output_item.added", output_index=index, item=item)
            yield event(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=call.arguments
            )
            yield event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=call.arguments,
                name=call.name,
            )
            yield event("response.output_item.done", output_index=index, item=output[index])
        if message.finish_reason:
            finish = finish_reason_name(message.finish_reason)
        if message.HasField("usage"):
            if text_item is not None:
                for done in _message_done(event, *text_item, "".join(texts)):
                    yield done
                output[text_item[1]] = message_item(text_item[0], "".join(texts))
            status = "incomplete" if finish == "length" else "completed"
            yield event(f"response.{status}", response=response(status, output, usage_of(message)))
            return
