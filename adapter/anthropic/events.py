"""The Messages API's event stream, as Anthropic's SDKs parse it:
message_start, ping (and one every few seconds while a long prompt is
read), then per content block content_block_start, its deltas
(thinking_delta and signature_delta, text_delta, input_json_delta) and content_block_stop, then message_delta
(stop_reason, usage) and message_stop."""

from collections.abc import AsyncIterator

from hearth.adapter.anthropic.translate import stop_reason as stop_reason_of
from hearth.adapter.anthropic.translate import thinking_signature, tool_use_block, usage_of
from hearth.adapter.common.streaming import StartingGeneration
from hearth.client import finish_reason_name

Event = tuple[str, dict]


class _Blocks:
    """The open text or thinking block, and the index of the next one."""

    def __init__(self):
        self.next_index = 0
        self.open_index: int | None = None
        self.open_kind = ""
        self._thought: list[str] = []

    def start(self, block: dict) -> Event:
        index = self.next_index
        self.next_index += 1
        return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}

    def delta(self, kind: str, text: str) -> list[Event]:
        """A text_delta or thinking_delta, in a block of its kind (opened, the other closed, as needed)."""
        events = [] if self.open_kind == kind else [*self.close(), self._open(kind)]
        if kind == "thinking":
            self._thought.append(text)
            delta = {"type": "thinking_delta", "thinking": text}
        else:
            delta = {"type": "text_delta", "text": text}
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": self.open_index, "delta": delta})
        )
        return events

    def _open(self, kind: str) -> Event:
        self.open_index, self.open_kind = self.next_index, kind
        return self.start(
            {"type": "thinking", "thinking": "", "signature": ""}
            if kind == "thinking"
            else {"type": "text", "text": ""}
        )

    def close(self) -> list[Event]:
        if self.open_index is None:
            return []
        index, kind = self.open_index, self.open_kind
        self.open_index, self.open_kind = None, ""
        events = []
        if kind == "thinking":
            # The signature comes last, just before the block ends, as Anthropic's streams send it.
            delta = {"type": "signature_delta", "signature": thinking_signature("".join(self._thought))}
            events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        return events


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
        if message.reasoning:
            for event in blocks.delta("thinking", message.reasoning):
                yield event
        if message.text:
            for event in blocks.delta("text", message.text):
                yield event
        for call in message.tool_calls:
            for event in blocks.close():
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
            for event in blocks.close():
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
