"""An engine generation stream -> Ollama's answer: NDJSON lines while it
streams (application/x-ndjson), or one JSON object, ending with done: true,
done_reason and Ollama's counts and durations (nanoseconds).

The durations are measured here, around the engine call: load_duration is an
explicit load the route made before generating, prompt_eval_duration runs to
the first output, eval_duration from there to the end."""

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi.responses import JSONResponse

from hearth.adapter.common.errors import ApiError, as_api_error, ollama_error_body
from hearth.adapter.common.streaming import GenerationResponse
from hearth.adapter.ollama.translate import tool_calls_to_ollama
from hearth.client import EngineCallError
from hearth.engine.v1 import engine_pb2 as pb

NDJSON = "application/x-ndjson"

# Ollama ends an answer that called tools with "stop".
DONE_REASONS = {pb.FINISH_REASON_STOP: "stop", pb.FINISH_REASON_LENGTH: "length", pb.FINISH_REASON_TOOL_CALLS: "stop"}


def rfc3339(moment: datetime | None = None) -> str:
    """UTC time as Ollama writes it, e.g. "2025-01-02T03:04:05.123456Z"."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ndjson_line(payload: dict) -> str:
    # ASCII-only JSON: line breaks that str.splitlines knows (U+2028, U+0085),
    # which NDJSON readers built on it (httpx's iter_lines) would split on, are escaped.
    return json.dumps(payload, separators=(",", ":")) + "\n"


@dataclass
class Clock:
    started: int = field(default_factory=time.perf_counter_ns)
    load_ns: int = 0
    first_output: int | None = None

    def output_seen(self) -> None:
        if self.first_output is None:
            self.first_output = time.perf_counter_ns()

    def done_fields(self, usage: pb.Usage) -> dict:
        end = time.perf_counter_ns()
        first = self.first_output or end
        return {
            "total_duration": end - self.started,
            "load_duration": self.load_ns,
            "prompt_eval_count": usage.prompt_tokens,
            "prompt_eval_duration": max(first - self.started - self.load_ns, 0),
            "eval_count": usage.completion_tokens,
            "eval_duration": end - first,
        }


@dataclass
class Delta:
    text: str
    tool_calls: list[dict]
    logprobs: list[dict]
    thinking: str = ""


@dataclass
class Done:
    reason: str
    fields: dict


def logprobs_to_ollama(entries) -> list[dict]:
    return [
        {
            "token": entry.token,
            "logprob": entry.logprob,
            "bytes": list(entry.bytes),
            "top_logprobs": [
                {"token": top.token, "logprob": top.logprob, "bytes": list(top.bytes)} for top in entry.top_logprobs
            ],
        }
        for entry in entries
    ]


async def deltas(stream, clock: Clock) -> AsyncIterator[Delta | Done]:
    """The answer's pieces, then its end (the stream's message with usage)."""
    calls_made = 0
    async for message in stream:
        if message.text or message.tool_calls or message.logprobs or message.reasoning:
            clock.output_seen()
            yield Delta(
                message.text,
                tool_calls_to_ollama(list(message.tool_calls), calls_made),
                logprobs_to_ollama(message.logprobs),
                message.reasoning,
            )
            calls_made += len(message.tool_calls)
        if message.HasField("usage"):
            yield Done(DONE_REASONS.get(message.finish_reason, "stop"), clock.done_fields(message.usage))
            return


# (text, tool calls, thinking) -> the answer's own fields: {"message": {...}} or {"response": "..."}.
BodyOf = Callable[[str, list[dict], str], dict]


def chat_body(text: str, tool_calls: list[dict], thinking: str = "") -> dict:
    message: dict = {"role": "assistant", "content": text}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"message": message}


def generate_body(text: str, tool_calls: list[dict], thinking: str = "") -> dict:
    return {"response": text, "thinking": thinking} if thinking else {"response": text}


def _object(model: str, body: dict, logprobs: list[dict], done: Done | None) -> dict:
    answer = {"model": model, "created_at": rfc3339(), **body}
    if logprobs:
        answer["logprobs"] = logprobs
    answer["done"] = done is not None
    if done is not None:
        answer["done_reason"] = done.reason
        answer.update(done.fields)
    return answer


async def _lines(stream, clock: Clock, model: str, body_of: BodyOf) -> AsyncIterator[str]:
    """NDJSON lines; a failure midway ends the stream with an {"error": ...}
    line. However the response ends (a client that leaves included), the
    engine call is cancelled."""
    try:
        async for item in deltas(stream, clock):
            if isinstance(item, Delta):
                yield ndjson_line(_object(model, body_of(item.text, item.tool_calls, item.thinking), item.logprobs, None))
            else:
                yield ndjson_line(_object(model, body_of("", [], ""), [], item))
    except (ApiError, EngineCallError) as exc:
        yield ndjson_line(ollama_error_body(as_api_error(exc)))
    finally:
        stream.cancel()


async def _whole(stream, clock: Clock, model: str, body_of: BodyOf) -> dict:
    texts: list[str] = []
    thinking: list[str] = []
    tool_calls: list[dict] = []
    logprobs: list[dict] = []
    try:
        async for item in deltas(stream, clock):
            if isinstance(item, Done):
                return _object(model, body_of("".join(texts), tool_calls, "".join(thinking)), logprobs, item)
            texts.append(item.text)
            thinking.append(item.thinking)
            tool_calls.extend(item.tool_calls)
            logprobs.extend(item.logprobs)
    finally:
        stream.cancel()
    raise ApiError(502, "the engine ended the answer early", type="server_error")


async def answer(stream, clock: Clock, model: str, body_of: BodyOf, streamed: bool):
    if streamed:
        return GenerationResponse(_lines(stream, clock, model, body_of), stream, {}, media_type=NDJSON)
    return JSONResponse(await _whole(stream, clock, model, body_of))


def loaded_answer(model: str, body_of: BodyOf, reason: str) -> dict:
    """What a request without prompt or messages gets: the model was loaded
    ("load") or unloaded ("unload"), as Ollama answers it."""
    return _object(model, body_of("", [], ""), [], Done(reason, {}))
