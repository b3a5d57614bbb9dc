"""A reasoning model's output split into reasoning and answer as it streams:
for every way an output can arrive in pieces, the two sides are the same and
no part of a tag reaches either; and the format of each family is told from
its chat template."""

import itertools
from dataclasses import replace

import pytest

from hearth.engine.domain import ReasoningPlan
from hearth.engine.reasoning.budget import ReasoningTracker
from hearth.engine.reasoning.formats import detect
from hearth.engine.reasoning.grammar import after_reasoning
from hearth.engine.reasoning.splitter import ReasoningSplitter

pytestmark = pytest.mark.unit

OPEN, CLOSE = "<think>", "</think>"

# (output, whether the prompt opened the reasoning, reasoning, answer)
CASES = [
    ("Let me see.\n</think>\n\nIt is 4.", True, "Let me see.\n", "It is 4."),
    ("<think>\nhmm, 2+2</think>4", False, "hmm, 2+2", "4"),
    ("  <think>a < b, not </thin k></think>\n\nyes", False, "a < b, not </thin k>", "yes"),
    ("Plain answer, <think> later is text", False, "", "Plain answer, <think> later is text"),
    ("still thinking when cut", True, "still thinking when cut", ""),
    ("<think>cut before the end</th", False, "cut before the end</th", ""),
    ("</think>", True, "", ""),
    ("<thin", False, "", "<thin"),
]


def split(output: str, cuts: tuple[int, ...], started: bool) -> tuple[str, str, list[tuple[str, str]]]:
    splitter = ReasoningSplitter(OPEN, CLOSE, started)
    bounds = [0, *cuts, len(output)]
    pieces = [splitter.push(output[a:b]) for a, b in zip(bounds, bounds[1:])]
    pieces.append(splitter.finish())
    return "".join(r for r, _ in pieces), "".join(a for _, a in pieces), pieces


@pytest.mark.parametrize("output, started, reasoning, answer", CASES)
def test_every_split_gives_the_same_reasoning_and_answer(output, started, reasoning, answer):
    for count in (1, 2):
        for cuts in itertools.combinations(range(1, len(output)), count):
            got_reasoning, got_answer, _ = split(output, cuts, started)
            assert (got_reasoning, got_answer) == (reasoning, answer), cuts


@pytest.mark.parametrize("output, started, reasoning, answer", CASES)
def test_one_character_at_a_time_no_tag_fragment_is_shown_early(output, started, reasoning, answer):
    got_reasoning, got_answer, pieces = split(output, tuple(range(1, len(output))), started)
    assert (got_reasoning, got_answer) == (reasoning, answer)
    # What is shown is shown for good: each side only ever grows into what it finally is.
    shown_reasoning = shown_answer = ""
    for piece_reasoning, piece_answer in pieces:
        shown_reasoning += piece_reasoning
        shown_answer += piece_answer
        assert reasoning.startswith(shown_reasoning) and answer.startswith(shown_answer)


def test_the_splitter_says_where_the_output_is():
    splitter = ReasoningSplitter(OPEN, CLOSE, started=False)
    splitter.push("<thi")
    assert not splitter.reasoning and not splitter.ended
    splitter.push("nk>x")
    assert splitter.reasoning
    splitter.push("</think>y")
    assert splitter.ended and not splitter.reasoning


# Shortened from the families' own templates: what each writes about its reasoning.
DEEPSEEK_R1 = "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"
QWEN3 = (
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
)
LLAMA3 = "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"


def test_formats_are_told_apart_by_their_templates():
    deepseek, qwen3, llama = detect(DEEPSEEK_R1), detect(QWEN3), detect(LLAMA3)
    assert (deepseek.name, deepseek.switch) == ("think", "")
    assert (qwen3.name, qwen3.switch) == ("think", "enable_thinking")
    assert llama.name == "none" and not llama.reasons
    assert detect(None).name == "none"
    # The config entry's word wins over the template's.
    assert detect(QWEN3, "none").name == "none" and detect(LLAMA3, "think").name == "think"


def test_the_answers_grammar_waits_for_the_end_of_the_reasoning():
    # A schema that refers to itself ("$ref": "#") names the start rule inside a rule; a literal "root" is text.
    grammar = 'root ::= "{" ( "\\"root\\"" ":" root )? "}" [root]'
    opened = ReasoningPlan("<think>", "</think>", True, None, (), "</think>")
    lazy, triggers = after_reasoning(grammar, opened)
    assert triggers == ("</think>",)
    assert 'reasoned-answer ::= "{" ( "\\"root\\"" ":" reasoned-answer )? "}" [root]' in lazy
    assert 'root ::= "</think>" [ \\t\\n]* reasoned-answer' in lazy
    free, triggers = after_reasoning(grammar, replace(opened, started=False))
    assert triggers == () and '"<think>" reasoned-thought "</think>"' in free


def test_the_budget_never_closes_the_reasoning_inside_a_character():
    tracker = ReasoningTracker(ReasoningPlan("<think>", "</think>", True, 1, (7,), "</think>"))
    tracker.observe("€".encode()[:1])  # a byte token that begins a three-byte character
    assert tracker.tokens == 1 and tracker.forced_token() is None
    tracker.observe("€".encode()[1:])
    assert tracker.forced_token() == 7 and tracker.forced_token() is None
