"""Who gets the shared KV pool's cells, on real llama.cpp in this process: the
copies of an n > 1 request hold their prompt once, and a request still reading
its prompt when the pool fills waits for room instead of ending an older
request that is already generating. A tiny byte-level model (one token per
byte) and a small batch make the cell counts and the order of steps exact."""

import queue
import time

import pytest

from hearth.engine.domain import ChoiceEnded, Failed, Finished, FinishReason, GenerationJob, SamplingParams, TextPiece
from tests.helpers.gguf_factory import write_tiny_llama

POOL = 1024
EOS = 2  # banned: every generation runs to max_new_tokens or the pool's end


@pytest.fixture
def pool(tmp_path):
    from hearth.engine.llama.context import LlamaContext
    from hearth.engine.llama.model import LlamaModel
    from hearth.engine.runtime.scheduler import BatchScheduler

    path = write_tiny_llama(tmp_path / "tiny.gguf", context_length=POOL)
    model = LlamaModel(path, gpu_offload=False)
    # A batch of 32: a long prompt is read over many steps, as a 12k-token one is with the default batch.
    batch = BatchScheduler(
        "tiny", model, lambda: LlamaContext(model, n_ctx=POOL, n_seq=2, n_batch=32, threads=2), frozenset(), 8
    )
    yield model, batch
    batch.close()
    model.close()


def submit(pool, name: str, prompt_bytes: int, max_tokens: int, n: int = 1) -> queue.Queue:
    model, batch = pool
    events: queue.Queue = queue.Queue()
    job = GenerationJob(
        request_id=name,
        prompt_tokens=model.tokenize("a" * prompt_bytes, add_special=True),
        max_new_tokens=max_tokens,
        stop=(),
        sampling=SamplingParams(temperature=1.0, seed=7, logit_bias=((EOS, -100.0),)),
        n=n,
        sink=lambda event: events.put((time.monotonic(), event)),
    )
    batch.submit(job)
    return events


def collect(events: queue.Queue) -> tuple[Finished, dict[int, FinishReason], float, float]:
    """The last event, each choice's finish reason, when the first text came and when it ended."""
    ended: dict[int, FinishReason] = {}
    first = None
    while True:
        at, event = events.get(timeout=120)
        if isinstance(event, TextPiece) and first is None:
            first = at
        elif isinstance(event, ChoiceEnded):
            ended[event.index] = event.finish_reason
        elif isinstance(event, Failed):
            raise AssertionError(f"the request failed: {event.error}")
        elif isinstance(event, Finished):
            ended[event.index] = event.finish_reason
            return event, ended, first, at


def test_the_copies_of_an_n_2_request_hold_their_prompt_once(pool):
    _, batch = pool
    # Two copies of a 600-token prompt would not fit in 1024 cells; one prompt and two generations do.
    last, ended, _, _ = collect(submit(pool, "twice", 600, 100, n=2))
    assert last.prompt_tokens >= 600 and last.completion_tokens == 200
    assert ended == {0: FinishReason.LENGTH, 1: FinishReason.LENGTH}
    # What the pool holds afterwards: the prompt once and each copy's own tokens (the last sampled holds none).
    assert batch.used_cells == last.prompt_tokens + 2 * 99


def test_a_request_still_reading_when_the_pool_fills_waits_and_the_older_one_goes_on(pool):
    # Both are admitted (about 100 + 900 cells fit in 1024); the older then generates into the last cells while
    # the younger still reads its prompt 32 tokens a step.
    older = submit(pool, "older", 100, 900)
    younger = submit(pool, "younger", 900, 10)
    older_last, _, _, older_end = collect(older)
    younger_last, _, younger_first, _ = collect(younger)
    assert older_last.finish_reason == FinishReason.LENGTH and older_last.completion_tokens == 900
    assert younger_last.completion_tokens == 10
    # The younger answered only once the older had ended and given back its cells.
    assert younger_first > older_end
