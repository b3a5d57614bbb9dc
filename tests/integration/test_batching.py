"""Continuous batching: many requests share one model at once, correctly."""

import threading
import time

import grpc
import httpx
import pytest

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID
from tests.helpers.servers import EngineProcess, HearthServer

WEEK = "Monday, Tuesday, Wednesday,"


def stream_pieces(stub, prompt: str, max_tokens: int, log: list, tag: str) -> pb.GenerateResponse:
    final = None
    for message in stub.Generate(
        pb.GenerateRequest(model=DEFAULT_MODEL_ID, prompt=prompt, max_tokens=max_tokens, temperature=0), timeout=120
    ):
        log.append((tag, time.monotonic(), message.text))
        if message.HasField("usage"):
            final = message
    log.append((tag, time.monotonic(), "<end>"))
    return final


@pytest.fixture
def stub(server):
    with grpc.insecure_channel(server.engine_address) as channel:
        yield engine_pb2_grpc.EngineStub(channel)


def test_concurrent_streams_interleave(stub):
    log: list = []
    threads = [
        threading.Thread(target=stream_pieces, args=(stub, WEEK, 40, log, tag)) for tag in ("a", "b")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = {tag: next(i for i, (t, _, text) in enumerate(log) if t == tag and text == "<end>") for tag in ("a", "b")}
    first_end = min(end.values())
    before = {tag for tag, _, text in log[:first_end] if text and text != "<end>"}
    # Tokens of both requests arrived before either finished.
    assert before == {"a", "b"}


def test_temperature_zero_alone_is_the_same_every_time_in_the_shared_pool(stub):
    prompts = [WEEK, "My favourite food is", "def fibonacci(n):"]

    def texts() -> list[str]:
        return [
            "".join(
                m.text
                for m in stub.Generate(pb.GenerateRequest(model=DEFAULT_MODEL_ID, prompt=p, max_tokens=24, temperature=0))
            )
            for p in prompts
        ]

    first = texts()
    assert all(first) and texts() == first and texts() == first


@pytest.fixture(scope="module")
def per_slot_stub(models_dir, tmp_path_factory):
    """An engine whose slots each have their own KV cache (LLM_KV_POOL=per_slot)."""
    logs = tmp_path_factory.mktemp("per-slot")
    engine = EngineProcess(
        models_dir, logs / "config.json", logs / "engine.log", LLM_KV_POOL="per_slot", LLM_CONTEXT_SIZE="2048"
    )
    try:
        with grpc.insecure_channel(engine.address) as channel:
            yield engine_pb2_grpc.EngineStub(channel)
    finally:
        engine.stop()


def test_temperature_zero_is_the_same_alone_and_in_a_batch_with_a_cache_per_slot(per_slot_stub):
    """With a cache per slot, attention never sees another request's cells: a
    greedy answer does not depend on what else runs. (The shared pool gives up
    this bit-exactness for memory: its masked attention spans every slot's cells.)"""
    stub = per_slot_stub
    prompts = [
        WEEK,
        "1, 2, 3, 4, 5,",
        "A B C D E F",
        "The capital of France is Paris. The capital of Germany is",
        "Once upon a time",
        "My favourite food is",
        "def fibonacci(n):",
    ]

    def text(prompt: str) -> str:
        messages = stub.Generate(pb.GenerateRequest(model=DEFAULT_MODEL_ID, prompt=prompt, max_tokens=12, temperature=0))
        return "".join(m.text for m in messages)

    alone = [text(p) for p in prompts]
    together: list[str | None] = [None] * len(prompts)

    def run(i: int) -> None:
        together[i] = text(prompts[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone


def test_cancelling_one_stream_leaves_the_others_and_frees_its_slot(stub, server):
    results: dict[str, pb.GenerateResponse] = {}

    def full(tag: str) -> None:
        results[tag] = stream_pieces(stub, WEEK, 30, [], tag)

    keepers = [threading.Thread(target=full, args=(tag,)) for tag in ("k1", "k2")]
    for t in keepers:
        t.start()
    call = stub.Generate(pb.GenerateRequest(model=DEFAULT_MODEL_ID, prompt="Count: 1, 2, 3,", max_tokens=2000))
    for received, _ in enumerate(call):
        if received == 3:
            call.cancel()
            break
    for t in keepers:
        t.join()
    for tag in ("k1", "k2"):
        assert results[tag].usage.completion_tokens == 30
        assert results[tag].finish_reason == pb.FINISH_REASON_LENGTH
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        loaded = {m.id: m for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models}[DEFAULT_MODEL_ID]
        if loaded.busy_slots == 0:
            break
        time.sleep(0.1)
    assert loaded.busy_slots == 0
    assert loaded.slots == 4


def test_follow_up_turn_evaluates_only_new_tokens(openai_client):
    history = [
        {"role": "system", "content": "You are a helpful assistant. " * 40},
        {"role": "user", "content": "Monday, Tuesday, Wednesday,"},
    ]
    first = openai_client.chat.completions.create(model=DEFAULT_MODEL_ID, messages=history, max_tokens=8, temperature=0)
    follow_up = history + [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And after that?"},
    ]
    second = openai_client.chat.completions.create(model=DEFAULT_MODEL_ID, messages=follow_up, max_tokens=4, temperature=0)
    cached = second.usage.prompt_tokens_details.cached_tokens
    # Everything up to the new turn came from the cache.
    assert cached >= first.usage.prompt_tokens - 1
    assert second.usage.prompt_tokens - cached < 40


def test_n_returns_independent_choices(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=[{"role": "user", "content": "Once upon a time"}],
        n=3,
        max_tokens=12,
        temperature=1.0,
        seed=7,
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    texts = [c.message.content for c in reply.choices]
    assert all(texts) and len(set(texts)) > 1
    # Usage counts the tokens of all three choices.
    assert 3 <= reply.usage.completion_tokens <= 36
    assert reply.usage.prompt_tokens < 20
    stream = openai_client.completions.create(
        model=DEFAULT_MODEL_ID, prompt=WEEK, n=2, max_tokens=6, temperature=0, stream=True
    )
    by_index: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            by_index[choice.index] = by_index.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert set(by_index) == {0, 1}
    # Greedy: both sequences read the one evaluated prompt and agree.
    assert by_index[0] == by_index[1]
    assert finishes == {0: "length", 1: "length"}


def test_a_full_queue_answers_429(tmp_path, models_dir):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / f"{TINY_MODEL_ID}.gguf").symlink_to(models_dir / f"{TINY_MODEL_ID}.gguf")
    server = HearthServer(folder, tmp_path / "config.json", tmp_path / "serve.log", LLM_PARALLEL="1", LLM_MAX_QUEUE="1")
    statuses: list[int] = []
    errors: list[dict] = []

    def ask() -> None:
        response = httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": TINY_MODEL_ID, "prompt": "abc", "max_tokens": 400, "temperature": 1.0},
            timeout=60,
        )
        statuses.append(response.status_code)
        if response.status_code != 200:
            errors.append(response.json()["error"])

    try:
        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    assert 429 in statuses, statuses
    assert 200 in statuses
    assert all(e["code"] == "queue_full" and e["type"] == "rate_limit_error" for e in errors)


def test_status_reports_slots_and_queue(stub):
    list(stub.Generate(pb.GenerateRequest(model=DEFAULT_MODEL_ID, prompt=WEEK, max_tokens=1)))
    model = {m.id: m for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models}[DEFAULT_MODEL_ID]
    assert model.slots == 4
    assert model.queued_requests == 0
    assert model.busy_slots == 0
