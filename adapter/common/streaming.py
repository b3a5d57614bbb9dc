"""What every API family's generation routes share: collecting a generation
for a non-streamed answer, writing Server-Sent Events, ids and clocks."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi.responses import StreamingResponse

from hearth.adapter.common.errors import ApiError, as_api_error, from_engine_error
from hearth.client import EngineCallError, finish_reason_name
from hearth.engine.v1 import engine_pb2 as pb


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


@dataclass
class ChoiceResult:
    """One sequence of a non-streamed answer."""

    text: str = ""
    finish_reason: str = "stop"
    tool_calls: list[pb.ToolCall] = field(default_factory=list)
    logprobs: list[pb.TokenLogprob] = field(default_factory=list)
    # The stop string that ended it, when one did.
    stop_sequence: str = ""
    # A reasoning model's thinking, apart from text.
    reasoning: str = ""


@dataclass
class Collected:
    choices: list[ChoiceResult]
    # The last message: its usage and finish reason.
    last: pb.GenerateResponse


async def collect(stream, n: int) -> Collected:
    """The whole answer of a non-streamed request. A client that leaves meanwhile
    gets this cancelled (CancelOnDisconnect), and the engine call with it."""
    pieces: list[list[str]] = [[] for _ in range(n)]
    thoughts: list[list[str]] = [[] for _ in range(n)]
    choices = [ChoiceResult() for _ in range(n)]
    try:
        async for message in stream:
            choice = choices[message.index]
            pieces[message.index].append(message.text)
            thoughts[message.index].append(message.reasoning)
            choice.tool_calls.extend(message.tool_calls)
            choice.logprobs.extend(message.logprobs)
            if message.finish_reason:
                choice.finish_reason = finish_reason_name(message.finish_reason)
                choice.stop_sequence = message.stop_sequence
            if message.HasField("usage"):
                for choice, texts, thought in zip(choices, pieces, thoughts):
                    choice.text = "".join(texts)
                    choice.reasoning = "".join(thought)
                return Collected(choices, message)
    finally:
        stream.cancel()
    raise EngineCallError.stream_truncated()


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
    except ApiError as exc:
        yield sse(exc.body())
    except EngineCallError as exc:
        yield sse(from_engine_error(exc).body())
    finally:
        stream.cancel()


class GenerationResponse(StreamingResponse):
    """A streamed answer that cancels its engine call however the response
    ends: also when the client left before the body's first line (then the
    body's own ``finally`` never runs)."""

    def __init__(self, body: AsyncIterator[str], stream, headers: dict[str, str], media_type: str = "text/event-stream"):
        super().__init__(body, media_type=media_type, headers=headers)
        self._stream = stream

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._stream.cancel()


def sse_response(events: AsyncIterator[dict], stream) -> StreamingResponse:
    """A streamed answer: ``events`` as Server-Sent Events (see sse_stream)."""
    return GenerationResponse(sse_stream(events, stream), stream, {"Cache-Control": "no-cache"})


def named_sse(name: str, payload: dict) -> str:
    """An event with a name line (Anthropic's streams name every event)."""
    return f"event: {name}\n{sse(payload)}"


async def named_sse_stream(events: AsyncIterator[tuple[str, dict]], stream, error_body) -> AsyncIterator[str]:
    """SSE lines for ``(name, payload)`` events, with no [DONE] after them; a
    failure midway is an ``error`` event whose payload is ``error_body(ApiError)``.
    However the response ends, the engine call is cancelled."""
    try:
        async for name, payload in events:
            yield named_sse(name, payload)
    except (ApiError, EngineCallError) as exc:
        yield named_sse("error", error_body(as_api_error(exc)))
    finally:
        stream.cancel()


def named_sse_response(events: AsyncIterator[tuple[str, dict]], stream, error_body, headers=None) -> StreamingResponse:
    return GenerationResponse(
        named_sse_stream(events, stream, error_body), stream, {"Cache-Control": "no-cache", **(headers or {})}
    )


class StartingGeneration:
    """A Generate call whose first message may still be on its way (a long
    prompt being read). Iterate it for the messages once ``ticks`` ends;
    ``cancel`` stops it either way."""

    def __init__(self, task: asyncio.Task):
        self._task = task

    @classmethod
    async def start(cls, engine, generate: pb.GenerateRequest, grace: float) -> "StartingGeneration":
        """Starts ``generate``; an error within ``grace`` seconds (an unknown
        model, a prompt too long) raises here, before any answer is sent."""
        task = asyncio.ensure_future(engine.generate(generate))
        try:
            done, _ = await asyncio.wait({task}, timeout=grace)
        except BaseException:
            task.cancel()
            raise
        if done:
            task.result()
        return cls(task)

    async def ticks(self, interval: float) -> AsyncIterator[None]:
        """One None every ``interval`` seconds until the first message came."""
        while not self._task.done():
            done, _ = await asyncio.wait({self._task}, timeout=interval)
            if not done:
                yield None

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        async for message in await self._task:
            yield message

    def cancel(self) -> None:
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled() and self._task.exception() is None:
            self._task.result().cancel()


async def generation_answer(request, generate: pb.GenerateRequest, *, streamed: bool, events_of, whole_of):
    """Starts ``generate`` on the engine and answers: streamed, the SSE of
    ``events_of(stream, created, n)``; else ``whole_of(collected, created)``."""
    stream = await request.app.state.engine.generate(generate)
    created = now()
    n = generate.n or 1
    if streamed:
        return sse_response(events_of(stream, created, n), stream)
    return whole_of(await collect(stream, n), created)
