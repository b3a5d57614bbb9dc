"""The Messages API's event stream, as Anthropic's SDKs parse it:
message_start, ping (and one every few seconds while a long prompt is
read), then per content block content_block_start, its deltas
(text_delta, input_json_delta) and content_block_stop, then message_delta
(stop_reason, usage) and message_stop."""

from collections.abc import AsyncIterator

from hearth.adapter.anthropic.translate import stop_reason as stop_reason_of
from hearth.adapter.anthropic.translate import tool_use_block, usage_of
from hearth.adapter.common.streaming import StartingGeneration
from hearth.client import finish_reason_name

Event = tuple[str, dict]


class _Blocks:
    """The open content block, and the index of the next one."""

    def __init__(self):
        self.next_index = 0
        self.open_text: int | None = None

    def start(self, block: dict) -> Event:
        index = self.next_index
        self.next_index += 1
        return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}

    def close_text(self) -> list[Event]:
        if self.open_text is None:
            return []
        index, self.open_text = self.open_text, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]


async def message_events(
    stream: StartingGeneration, message_id: str, model: str, ping_interval: float
) -> AsyncIterator[Event]:
    yield (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                # The engine counts the prompt when the answer ends; message_delta carries the counts.
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        },
    )
    yield "ping", {"type": "ping"}
    # While the prompt is read, pings keep the connection and the client's idle timer alive.
    async for _ in stream.ticks(ping_interval):
        yield "ping", {"type": "ping"}
    blocks = _Blocks()
    stop_reason, stop_sequence = "end_turn", None
    async for message in stream:
        if message.text:
            if blocks.open_text is None:
                blocks.open_text = blocks.next_index
                yield blocks.start({"type": "text", "text": ""})
            delta = {"type": "text_delta", "text": message.text}
            yield "content_block_delta", {"type": "content_block_delta", "index": blocks.open_text, "delta": delta}
        for call in message.tool_calls:
            for event in blocks.close_text():
                yield event
            index = blocks.next_index
            yield blocks.start({**tool_use_block(call), "input": {}})
            delta = {"type": "input_json_delta", "partial_json": call.arguments or "{}"}
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        if message.finish_reason:
            stop_reason = stop_reason_of(finish_reason_name(message.finish_reason), message.stop_sequence)
            stop_sequence = message.stop_sequence or None
        if message.HasField("usage"):
            for event in blocks.close_text():
                yield event
            yield (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": usage_of(message).model_dump(),
                },
            )
            yield "message_stop", {"type": "message_stop"}
            return
