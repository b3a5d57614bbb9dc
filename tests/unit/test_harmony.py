"""gpt-oss's harmony output read as it streams: for every way an output can
arrive in pieces, the analysis channel is the reasoning, the final channel
the answer, a message addressed to a tool its call, and no marker reaches
either side; and the format is told from the template."""

import itertools
import json

import pytest

from hearth.engine.domain import Finished, FinishReason, ReasoningPlan, TextPiece
from hearth.engine.reasoning.formats import detect
from hearth.engine.reasoning.harmony import OPEN_ANALYSIS, TO_FINAL, open_message
from hearth.engine.reasoning.reader import HarmonyReader

pytestmark = pytest.mark.unit

ASSISTANT = "assistant"
ANALYSING = "assistant<|channel|>analysis<|message|>"
CALL_HEADER = "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"

# (the message the prompt left open, output, reasoning, answer, calls as (name, arguments))
CASES = [
    (
        ASSISTANT,
        "<|channel|>analysis<|message|>2+2 is 4.<|end|><|start|>assistant<|channel|>final<|message|>It is 4.",
        "2+2 is 4.",
        "It is 4.",
        [],
    ),
    (
        ANALYSING,
        "User wants Oslo weather.<|end|>\n" + CALL_HEADER + '{"city": "Oslo"}',
        "User wants Oslo weather.",
        "",
        [("get_weather", {"city": "Oslo"})],
    ),
    # The recipient may come before the channel, and <|call|> may end the message in the text.
    (
        "",
        '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city":"Rome"}<|call|>',
        "",
        "",
        [("get_weather", {"city": "Rome"})],
    ),
    # A call of a tool the request did not offer, or with no arguments object, stays text.
    (ASSISTANT, '<|channel|>commentary to=functions.nope <|constrain|>json<|message|>{"a": 1}', "", '{"a": 1}', []),
    (ASSISTANT, '<|channel|>commentary to=functions.get_weather<|message|>{"city": ', "", '{"city": ', []),
    # A model that writes no header: its text is the answer, the prompt's part of the header is not.
    (ASSISTANT, "Hello there, a < b <| not a marker", "", "Hello there, a < b <| not a marker", []),
    # Cut short while thinking: what it thought is kept.
    (ASSISTANT, "<|channel|>analysis<|message|>still thinking", "still thinking", "", []),
    # Header markers where no header is are dropped.
    (
        ASSISTANT,
        "<|channel|>analysis<|message|>x<|constrain|>y<|end|><|start|>assistant<|channel|>final<|message|>z<|message|>w",
        "xy",
        "zw",
        [],
    ),
    # A header cut short at the end shows nothing.
    (ANALYSING, "hm<|end|><|start|>assistant<|channel|>fin", "hm", "", []),
    # A "header" too long to be one is text, its markers dropped.
    (ASSISTANT, "<|channel|>" + "x" * 600, "", "x" * 600, []),
    # Ends where no message is open are dropped too.
    (ASSISTANT, "<|channel|>final<|message|>Hi<|end|><|call|><|return|> there", "", "Hi there", []),
    # Text written where the prompt's header was due, ended before any <|message|>, is the
    # answer's; a broken header after the model's own <|start|> is not.
    (ASSISTANT, "Hello.<|end|><|start|>assistant<|channel|>final<|message|> Bye", "", "Hello. Bye", []),
    (ANALYSING, "ok<|end|><|start|>assistant<|end|>", "ok", "", []),
    (ANALYSING, "ok<|start|>x1<|start|>y2<|message|>", "ok", "", []),
    # A rejected call's body keeps its place among the answer's text.
    (
        ASSISTANT,
        '<|channel|>commentary to=functions.nope<|message|>{"a": 1}<|end|><|start|>assistant<|channel|>final<|message|> done',
        "",
        '{"a": 1} done',
        [],
    ),
]


def read(opened: str, output: str, cuts: tuple[int, ...], parallel: bool = True):
    plan = ReasoningPlan(OPEN_ANALYSIS, "<|end|>", False, None, (), TO_FINAL, opened)
    reader = HarmonyReader(plan, frozenset({"get_weather"}), parallel)
    bounds = [0, *cuts, len(output)]
    events = [out for a, b in zip(bounds, bounds[1:]) for out in reader.read(TextPiece(output[a:b]))]
    events += reader.read(Finished(FinishReason.STOP, 1, 1))
    pieces = [event for event in events if isinstance(event, TextPiece)]
    calls = [(call.name, json.loads(call.arguments)) for piece in pieces for call in piece.tool_calls]
    return pieces, calls, events[-1].finish_reason


@pytest.mark.parametrize("opened, output, reasoning, answer, calls", CASES)
def test_every_split_gives_the_same_reasoning_answer_and_calls(opened, output, reasoning, answer, calls):
    for count in (1, 2):
        for cuts in itertools.combinations(range(1, len(output)), count):
            pieces, got_calls, finish = read(opened, output, cuts)
            got = ("".join(p.reasoning for p in pieces), "".join(p.text for p in pieces), got_calls)
            assert got == (reasoning, answer, calls), cuts
            assert finish == (FinishReason.TOOL_CALLS if calls else FinishReason.STOP)


@pytest.mark.parametrize("opened, output, reasoning, answer, calls", CASES)
def test_one_character_at_a_time_no_marker_is_shown_early(opened, output, reasoning, answer, calls):
    pieces, _, _ = read(opened, output, tuple(range(1, len(output))))
    shown_reasoning = shown_answer = ""
    for piece in pieces:
        shown_reasoning += piece.reasoning
        shown_answer += piece.text
        assert reasoning.startswith(shown_reasoning) and answer.startswith(shown_answer)
        assert "<|" not in piece.reasoning + piece.text or "<| not" in answer


def test_one_call_asked_for_keeps_the_first():
    second = CALL_HEADER + '{"city": "Bergen"}<|call|>'
    output = CALL_HEADER + '{"city": "Oslo"}<|call|>' + second
    _, calls, finish = read("", output, (), parallel=False)
    assert calls == [("get_weather", {"city": "Oslo"})] and finish == FinishReason.TOOL_CALLS


# Shortened from gpt-oss's template: its generation prompt, its channels and its effort line.
GPT_OSS = (
    "{{ '<|start|>system<|message|>Reasoning: ' + (reasoning_effort or 'medium') + '<|end|>' }}"
    "{% if add_generation_prompt %}<|start|>assistant{% endif %}"
    "{# <|channel|>analysis / final #}"
)


def test_harmony_is_told_from_its_template_and_the_prompts_open_message_is_found():
    fmt = detect(GPT_OSS)
    assert (fmt.name, fmt.effort, fmt.open_tag, fmt.close_tag) == (
        "harmony",
        "reasoning_effort",
        OPEN_ANALYSIS,
        "<|end|>",
    )
    assert detect(GPT_OSS, "none").name == "none" and detect("{{ x }}", "harmony").name == "harmony"
    assert open_message("<|start|>user<|message|>hi<|end|><|start|>assistant") == ASSISTANT
    assert open_message("<|start|>user<|message|>hi<|end|>") == ""
