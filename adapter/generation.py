"""What the chat and completions routes share: opening a generation, collecting
it for non-streamed answers, and writing Server-Sent Events."""

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from hearth.adapter.errors import OpenAIError
from hearth.adapter.protocol.common import PromptTokensDetails, Usage
from hearth.engine.v1 import engine_pb2 as pb

FINISH_REASONS = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_TOOL_CALLS: "tool_calls",
}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def usage_of(message: pb.GenerateResponse) -> Usage:
    return Usage(
        prompt_tokens=message.usage.prompt_tokens,
        completion_tokens=message.usage.completion_tokens,
        total_tokens=message.usage.prompt_tokens + message.usage.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=message.usage.cached_prompt_tokens),
    )


@dataclass
class ChoiceResult:
    """One sequence of a non-streamed answer."""

    text: str = ""
    finish_reason: str = "stop"
    tool_calls: list[pb.ToolCall] = field(default_factory=list)
    logprobs: list[pb.TokenLogprob] = field(default_factory=list)


@dataclass
class Collected:
    choices: list[ChoiceResult]
    usage: Usage


async def collect(stream, n: int) -> Collected:
    """The whole answer of a non-streamed request. A client that leaves meanwhile
    gets this cancelled (CancelOnDisconnect), and the engine call with it."""
    pieces: list[list[str]] = [[] for _ in range(n)]
    choices = [ChoiceResult() for _ in range(n)]
    try:
        async for message in stream:
            choice = choices[message.index]
            pieces[message.index].append(message.text)
            choice.tool_calls.extend(message.tool_calls)
            choice.logprobs.extend(message.logprobs)
            if message.finish_reason:
                choice.finish_reason = FINISH_REASONS.get(message.finish_reason, "stop")
            if message.HasField("usage"):
                for choice, texts in zip(choices, pieces):
                    choice.text = "".join(texts)
                return Collected(choices, usage_of(message))
    finally:
        stream.cancel()
    raise OpenAIError(502, "The engine ended the stream early", type="server_error", code="stream_truncated")


# Line breaks to Python's str.splitlines (and so to SSE readers built on it,
# httpx's among them) that JSON leaves unescaped; escaped, they cannot split an event.
_SPLITLINES_ONLY = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data.translate(_SPLITLINES_ONLY)}\n\n"


async def sse_stream(events: AsyncIterator[dict], stream) -> AsyncIterator[str]:
    """SSE lines for ``events``, then [DONE]; an engine failure mid-stream is sent
    as an error event. However the response ends, the engine call is cancelled."""
    try:
        async for event in events:
            yield sse(event)
        yield sse("[DONE]")
    except OpenAIError as exc:
        yield sse(exc.body())
    finally:
        stream.cancel()
