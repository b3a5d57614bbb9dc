"""The slots of a model share one pool of KV cells: one request may use the
whole pool, requests that do not fit beside each other take turns, and when
generations together outgrow the pool the youngest ends early with "length"
while the others go on. A tiny byte-level model (one token per byte) makes
the cell counts exact."""

import json
import threading
import time

import grpc
import pytest

from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.servers import EngineProcess

POOL = 1024
MODEL = "pool-tiny"
SMALLER = "pool-tiny-512"
EOS = 2  # the tiny model's end-of-generation token, banned so that generations run to max_tokens


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool-models")
    write_tiny_llama(folder / f"{MODEL}.gguf", context_length=POOL)
    # The same file declared again, served with less than it was trained for.
    declared = {"id": SMALLER, "path": str(folder / f"{MODEL}.gguf"), "context_window": 512}
    (folder / "config.json").write_text(json.dumps({"models": [declared]}))
    engine = EngineProcess(folder, folder / "config.json", folder / "engine.log", LLM_PARALLEL="2")
    try:
        with grpc.insecure_channel(engine.address) as channel:
            yield engine_pb2_grpc.EngineStub(channel)
    finally:
        engine.stop()


def generate(stub, prompt_bytes: int, max_tokens: int, marks: dict | None = None) -> pb.GenerateResponse:
    request = pb.GenerateRequest(
        model=MODEL, prompt="a" * prompt_bytes, max_tokens=max_tokens, temperature=1.0, seed=7, logit_bias={EOS: -100}
    )
    last = None
    for message in stub.Generate(request, timeout=120):
        if marks is not None and message.text and "first" not in marks:
            marks["first"] = time.monotonic()
        last = message
    if marks is not None:
        marks["end"] = time.monotonic()
    return last


def test_one_request_may_use_the_whole_pool(stub):
    # More than half the pool: with a fixed share per slot it could not fit.
    last = generate(stub, 800, 100)
    assert last.usage.prompt_tokens > POOL // 2 and last.usage.completion_tokens == 100
    assert last.finish_reason == pb.FINISH_REASON_LENGTH
    model = {m.id: m for m in stub.GetStatus(pb.GetStatusRequest()).loaded_models}[MODEL]
    # GetStatus reports the pool: all its cells, those the finished request's cached prefix holds, its bytes.
    assert model.slots == 2 and model.kv_cells == POOL
    # (the last token sampled is never fed back, so it holds no cell)
    assert model.kv_cells_used == last.usage.prompt_tokens + 100 - 1 and model.kv_bytes > 0


def run_together(stub, *requests: tuple[int, int], stagger: float = 0.0) -> list[tuple[pb.GenerateResponse, dict]]:
    results: list = [None] * len(requests)

    def one(index: int, prompt_bytes: int, max_tokens: int) -> None:
        marks: dict = {}
        results[index] = (generate(stub, prompt_bytes, max_tokens, marks), marks)

    threads = []
    for index, (prompt_bytes, max_tokens) in enumerate(requests):
        threads.append(threading.Thread(target=one, args=(index, prompt_bytes, max_tokens)))
        threads[-1].start()
        time.sleep(stagger)
    for thread in threads:
        thread.join()
    return results


def test_requests_that_do_not_fit_beside_each_other_take_turns(stub):
    (a, a_marks), (b, b_marks) = run_together(stub, (600, 300), (600, 300), stagger=0.02)
    assert a.usage.completion_tokens == b.usage.completion_tokens == 300
    # The second prompt was read only once the first request had ended and freed its cells.
    assert b_marks["first"] >= a_marks["end"] - 0.01


def test_generations_that_outgrow_the_pool_end_the_youngest_early(stub):
    (older, older_marks), (younger, younger_marks) = run_together(stub, (100, 800), (100, 800), stagger=0.02)
    assert older.finish_reason == pb.FINISH_REASON_LENGTH and older.usage.completion_tokens == 800
    assert younger.finish_reason == pb.FINISH_REASON_LENGTH
    assert 0 < younger.usage.completion_tokens < 800
    # Both ran side by side until the pool was full; then the younger gave way and the older went on alone.
    assert younger_marks["first"] < older_marks["end"] and younger_marks["end"] < older_marks["end"]
    # In step, the older had generated at least as much when the pool filled: the two never held more than it.
    assert older.usage.prompt_tokens + younger.usage.prompt_tokens + 2 * younger.usage.completion_tokens <= POOL
    # The pool is whole again: a request that needs most of it runs.
    assert generate(stub, 900, 100).usage.completion_tokens == 100


def test_a_prompt_over_a_smaller_served_context_names_the_settings_that_raise_it(stub):
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.Generate(pb.GenerateRequest(model=SMALLER, prompt="a" * 600, max_tokens=5), timeout=60))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = raised.value.details()
    assert "maximum context length is 512 tokens" in message
    assert "512 of the 1024 tokens it was trained for" in message and "LLM_CONTEXT_SIZE" in message
