"""The sampler itself, on the real default model in this process: a lazy
grammar (what tool calls use) applies from its trigger word on, and a
grammar llama.cpp refuses fails its request only."""

import queue

import pytest

from hearth.engine.domain import (
    Failed,
    Finished,
    FinishReason,
    GenerationJob,
    SamplingParams,
    TextPiece,
)

DAYS = "Monday, Tuesday, Wednesday,"


# The sampler itself, on the real default model in this process: a lazy
# grammar (what tool calls use) applies from its trigger word on.


@pytest.fixture(scope="module")
def scheduler(default_model_path):
    from hearth.engine.llama.context import LlamaContext
    from hearth.engine.llama.model import LlamaModel
    from hearth.engine.runtime.scheduler import BatchScheduler

    model = LlamaModel(default_model_path, gpu_offload=False)
    batch = BatchScheduler(
        "gemma",
        model,
        lambda: LlamaContext(model, n_ctx=512, n_seq=2, n_batch=64, threads=2),
        frozenset(),
        max_queue=4,
    )
    yield model, batch
    batch.close()
    model.close()


def generate_in_process(scheduler, max_tokens: int, **sampling) -> tuple[str, FinishReason]:
    model, batch = scheduler
    events: queue.Queue = queue.Queue()
    job = GenerationJob(
        request_id="lazy",
        prompt_tokens=model.tokenize(DAYS, add_special=True),
        max_new_tokens=max_tokens,
        stop=(),
        sampling=SamplingParams(temperature=0, repeat_penalty=1.0, **sampling),
        n=1,
        sink=events.put,
    )
    batch.submit(job)
    text = ""
    while True:
        event = events.get(timeout=120)
        if isinstance(event, TextPiece):
            text += event.text
        else:
            assert isinstance(event, Finished), event
            return text, event.finish_reason


def test_a_lazy_grammar_applies_from_its_trigger_word_on(scheduler):
    free, _ = generate_in_process(scheduler, 6)
    assert free.startswith(" Thursday, Friday,")
    text, finish = generate_in_process(
        scheduler, 40, grammar='root ::= "Friday" " is fun"', grammar_triggers=("Friday",)
    )
    # Free text up to the trigger, then the grammar, then the end it forces.
    assert (text, finish) == (" Thursday, Friday is fun", FinishReason.STOP)


def test_output_that_does_not_fit_after_the_trigger_drops_the_grammar(scheduler):
    free, _ = generate_in_process(scheduler, 6)
    text, finish = generate_in_process(scheduler, 6, grammar='root ::= "Thurs" "X"', grammar_triggers=("Thurs",))
    assert (text, finish) == (free, FinishReason.LENGTH)


def test_a_grammar_llama_cpp_refuses_fails_its_request_only(scheduler):
    from hearth.engine.llama.sampling import grammar_parses

    model, batch = scheduler
    assert grammar_parses(model, 'root ::= "a" [0-9]*')
    assert not grammar_parses(model, "root ::= undefined-rule")
    events: queue.Queue = queue.Queue()
    batch.submit(
        GenerationJob(
            request_id="bad-grammar",
            prompt_tokens=model.tokenize(DAYS, add_special=True),
            max_new_tokens=4,
            stop=(),
            sampling=SamplingParams(grammar="root ::= undefined-rule"),
            n=2,
            sink=events.put,
        )
    )
    assert isinstance(events.get(timeout=60), Failed)
    text, finish = generate_in_process(scheduler, 3)
    assert text.startswith(" Thursday") and finish == FinishReason.LENGTH
