"""Load, disconnects and overload against a real `hearth serve`:

- a soak of 200 streamed chats at concurrency 16: every one ends with a
  finish_reason and [DONE];
- a disconnect storm (clients leaving while queued, while their prompt is
  read, and mid-answer): the engine drops every one of them promptly, and the
  decode rate of the next request is back to normal;
- a full queue is answered with 429 at once, never a hang.

Engine crash -> 503 -> restart and SIGTERM -> no process left are
tests/integration/test_supervisor.py's."""

import asyncio
import json
import logging
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID
from tests.helpers.servers import HearthServer

log = logging.getLogger(__name__)

SOAK_REQUESTS = 200
SOAK_CONCURRENCY = 16


def _folder_with(tmp_path, models_dir, *model_ids: str):
    folder = tmp_path / "models"
    folder.mkdir()
    for model_id in model_ids:
        source = models_dir / f"{model_id}.gguf"
        (folder / source.name).symlink_to(source.resolve())
    return folder


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _one_stream(client: httpx.AsyncClient, index: int) -> tuple[bool, float, int, str]:
    """(complete, seconds, completion tokens, what went wrong)"""
    body = {
        "model": TINY_MODEL_ID,
        "messages": [{"role": "user", "content": f"Request {index}: say something."}],
        "max_tokens": 8 + (index % 5) * 10,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.monotonic()
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                return False, time.monotonic() - started, 0, f"status {response.status_code}: {await response.aread()!r}"
            lines = [line async for line in response.aiter_lines() if line]
    except httpx.HTTPError as exc:
        return False, time.monotonic() - started, 0, f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    if not lines or lines[-1] != "data: [DONE]":
        return False, seconds, 0, f"no [DONE]: {lines[-2:]}"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    finishes = [c["finish_reason"] for p in payloads for c in p["choices"] if c["finish_reason"]]
    if len(finishes) != 1 or finishes[0] not in ("stop", "length"):
        return False, seconds, 0, f"finish reasons {finishes}"
    usage = payloads[-1].get("usage") or {}
    if not usage.get("completion_tokens"):
        return False, seconds, 0, f"no usage: {payloads[-1]}"
    return True, seconds, usage["completion_tokens"], ""


def test_soak_200_streams_at_concurrency_16(tmp_path, models_dir):
    server = HearthServer(_folder_with(tmp_path, models_dir, TINY_MODEL_ID), tmp_path / "config.json", tmp_path / "serve.log")
    try:
        engine_pid = server.engine_pid()

        async def soak():
            gate = asyncio.Semaphore(SOAK_CONCURRENCY)
            limits = httpx.Limits(max_connections=SOAK_CONCURRENCY * 2)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as client:

                async def gated(index: int):
                    async with gate:
                        return await _one_stream(client, index)

                return await asyncio.gather(*(gated(i) for i in range(SOAK_REQUESTS)))

        started = time.monotonic()
        results = asyncio.run(soak())
        wall = time.monotonic() - started
        lost = [(i, r[3]) for i, r in enumerate(results) if not r[0]]
        assert not lost, lost[:5]
        assert server.engine_pid() == engine_pid
        health = httpx.get(f"{server.base_url}/health", timeout=10).json()
        assert all(m["active_requests"] == 0 for m in health["engine"]["loaded_models"])
        latencies = [r[1] for r in results]
        tokens = sum(r[2] for r in results)
        log.info(
            "soak: %d streams at concurrency %d in %.1fs, 0 lost; latency p50 %.2fs p95 %.2fs max %.2fs; %.0f tokens/s",
            SOAK_REQUESTS,
            SOAK_CONCURRENCY,
            wall,
            statistics.median(latencies),
            _percentile(latencies, 0.95),
            max(latencies),
            tokens / wall,
        )
    finally:
        server.stop()


class EventLog:
    """Every WatchEvents message of an engine, collected in the background."""

    def __init__(self, address: str):
        self.events: list[pb.WatchEventsResponse] = []
        self._channel = grpc.insecure_channel(address)
        self._call = engine_pb2_grpc.EngineStub(self._channel).WatchEvents(pb.WatchEventsRequest())
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.3)

    def _read(self) -> None:
        try:
            for event in self._call:
                if not event.replayed:
                    self.events.append(event)
        except grpc.RpcError:
            pass

    def finished(self, since: float) -> list[tuple[float, pb.RequestFinished]]:
        return [(e.timestamp, e.request_finished) for e in list(self.events) if e.HasField("request_finished") and e.timestamp >= since]

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(5)
        self._channel.close()


def _decode_rate(server: HearthServer, events: EventLog) -> float:
    """Tokens per second of one request on an otherwise idle model, as the engine measured it."""
    since = time.time()
    reply = httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": DEFAULT_MODEL_ID, "prompt": "Count from 1 to 100: 1, 2, 3,", "max_tokens": 48, "temperature": 0},
        timeout=120,
    ).json()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for _, finished in events.finished(since):
            if finished.request_id == reply["id"]:
                return finished.tokens_per_second
        time.sleep(0.05)
    raise AssertionError("no RequestFinished event for the measurement request")


LONG_PROMPT = "The quick brown fox jumps over the lazy dog while the cat watches. " * 120


def _leave(server: HearthServer, kind: str, index: int) -> float:
    """One client that goes away; returns when it left (Unix time)."""
    body = {
        "model": DEFAULT_MODEL_ID,
        "max_tokens": 1000,
        "stream": True,
        # Each prompt starts differently: no client reuses another's cached prompt.
        "messages": [
            {"role": "user", "content": f"Client {index}. " + (LONG_PROMPT if kind == "prompt" else "Count to 1000.")}
        ],
    }
    if kind in ("prompt", "queued"):
        # Gives up before the first token: while its prompt is read, or while it waits for a slot.
        try:
            with httpx.stream(
                "POST", f"{server.base_url}/v1/chat/completions", json=body, timeout=httpx.Timeout(60, read=0.4)
            ) as response:
                for _ in response.iter_lines():
                    break
        except httpx.ReadTimeout:
            pass
        return time.time()
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body, timeout=120) as response:
        for n, _ in enumerate(response.iter_lines()):
            if n >= 10:
                break
    return time.time()


def _idle_within(server: HearthServer, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        loaded = httpx.get(f"{server.base_url}/health", timeout=10).json()["engine"]["loaded_models"]
        if all(m["active_requests"] == 0 for m in loaded):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the engine still had requests {seconds}s after every client left")


def _only_event(events: EventLog, since: float) -> pb.RequestFinished:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        finished = events.finished(since)
        if finished:
            assert len(finished) == 1, finished
            return finished[0][1]
        time.sleep(0.05)
    raise AssertionError("no RequestFinished event")


def test_disconnect_storm(tmp_path, models_dir):
    server = HearthServer(
        _folder_with(tmp_path, models_dir, DEFAULT_MODEL_ID), tmp_path / "config.json", tmp_path / "serve.log"
    )
    events = EventLog(server.engine_address)
    try:
        _decode_rate(server, events)  # loads the model
        before = statistics.median(_decode_rate(server, events) for _ in range(3))
        # A client that leaves while its long prompt is being read stops the reading.
        since = time.time()
        httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={"model": DEFAULT_MODEL_ID, "max_tokens": 1, "messages": [{"role": "user", "content": "Whole. " + LONG_PROMPT}]},
            timeout=120,
        )
        whole = _only_event(events, since)
        since = time.time()
        _leave(server, "prompt", -1)
        cut = _only_event(events, since)
        assert cut.outcome == pb.REQUEST_OUTCOME_CANCELLED
        assert cut.time_to_first_token_seconds == 0  # it never produced a token
        assert cut.duration_seconds < whole.time_to_first_token_seconds, (cut, whole)
        storm_started = time.time()
        kinds = ["prompt", "queued", "answer", "answer"] * 8
        with ThreadPoolExecutor(16) as pool:
            left = list(pool.map(lambda args: _leave(server, *args), [(k, i) for i, k in enumerate(kinds)]))
        drained = _idle_within(server, 15)
        time.sleep(0.5)
        storm = events.finished(storm_started)
        outcomes = [f.outcome for _, f in storm]
        assert outcomes.count(pb.REQUEST_OUTCOME_CANCELLED) == len(kinds), [pb.RequestOutcome.Name(o) for o in outcomes]
        # Nobody read these to the end: none ran for as long as its 1000 tokens take.
        assert max(f.duration_seconds for _, f in storm) < 1000 / before
        unanswered = sum(1 for _, f in storm if f.time_to_first_token_seconds == 0)
        assert unanswered >= kinds.count("prompt")
        lag = max(timestamp for timestamp, _ in storm) - max(left)
        after = statistics.median(_decode_rate(server, events) for _ in range(3))
        log.info(
            "disconnect storm: %d clients left (%d before any token), all cancelled; engine idle %.2fs after the last "
            "left (last cancel %.2fs after it); decode rate %.1f tok/s before, %.1f after (%.0f%%); a client leaving "
            "0.4s into a %d-token prompt stopped it after %.2fs (reading it all takes %.2fs)",
            len(kinds),
            unanswered,
            drained,
            lag,
            before,
            after,
            100 * after / before,
            whole.prompt_tokens,
            cut.duration_seconds,
            whole.time_to_first_token_seconds,
        )
        assert after >= 0.7 * before, (before, after)
    finally:
        events.close()
        server.stop()


@pytest.mark.parametrize("clients", [10])
def test_a_full_queue_answers_429_at_once(tmp_path, models_dir, clients: int):
    server = HearthServer(
        _folder_with(tmp_path, models_dir, DEFAULT_MODEL_ID),
        tmp_path / "config.json",
        tmp_path / "serve.log",
        LLM_MAX_QUEUE="2",
        LLM_PARALLEL="1",
    )
    try:
        httpx.post(
            f"{server.base_url}/v1/completions", json={"model": DEFAULT_MODEL_ID, "prompt": "Hi", "max_tokens": 1}, timeout=120
        )

        def one(index: int) -> tuple[int, float, dict]:
            started = time.monotonic()
            response = httpx.post(
                f"{server.base_url}/v1/completions",
                json={"model": DEFAULT_MODEL_ID, "prompt": f"Count to 100, {index}:", "max_tokens": 24},
                timeout=120,
            )
            return response.status_code, time.monotonic() - started, response.json()

        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, range(clients)))
        statuses = [status for status, _, _ in results]
        assert set(statuses) <= {200, 429}, statuses
        refused = [(seconds, body) for status, seconds, body in results if status == 429]
        assert refused and statuses.count(200) >= 3, statuses
        for seconds, body in refused:
            assert body["error"]["code"] == "queue_full"
            assert body["error"]["type"] == "rate_limit_error"
            assert seconds < 5
        log.info(
            "overload: %d clients at once, queue of 2 and 1 slot: %d served, %d refused with 429 in at most %.2fs",
            clients,
            statuses.count(200),
            len(refused),
            max(seconds for seconds, _ in refused),
        )
    finally:
        server.stop()
