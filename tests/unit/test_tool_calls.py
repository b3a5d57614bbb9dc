"""Tool calls: reading the model's own call formats out of streamed text,
plans per tool_choice, grammars' size (tests/integration/test_tool_grammars.py
runs them in llama.cpp)."""

import json
from pathlib import Path

import pytest

from hearth.engine.domain import ToolSpec
from hearth.engine.errors import InvalidArgument
from hearth.engine.generation.validation import validate_generate
from hearth.engine.grammar.json_schema import json_schema_grammar
from hearth.engine.grammar.schema_guard import guard_schema
from hearth.engine.models.registry import ModelRecord
from hearth.engine.tools.extractors import AutoExtractor
from hearth.engine.tools.planning import ToolPlan, plan_tools
from tests.helpers.tools import (
    CALL_ID,
    NAMES,
    OPENCODE_LIKE,
    SEARCH,
    WEATHER,
    params,
    run,
)


def splits(text: str):
    """The text whole, cut at every character boundary, and one character at a time."""
    yield [text]
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]
    yield list(text)


def extract_everywhere(text: str, *, names=NAMES, parallel: bool = True) -> tuple[str, list[tuple[str, dict]]]:
    """What the extractor makes of ``text``, checked to be the same however the text is cut into pieces."""
    results = set()
    for pieces in splits(text):
        shown, calls = run(AutoExtractor(names, parallel), pieces)
        for call in calls:
            assert CALL_ID.fullmatch(call.id)
        results.add((shown, json.dumps([(c.name, json.loads(c.arguments)) for c in calls])))
    assert len(results) == 1, results
    shown, calls = results.pop()
    return shown, [tuple(c) for c in json.loads(calls)]


PARIS = ("get_weather", {"city": "Paris"})
FORMATS = {
    "hermes": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    "hermes-unterminated": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}',
    "llama3-json": '{"name": "get_weather", "parameters": {"city": "Paris"}}',
    "llama3-python-tag": '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}',
    "llama3.2-pythonic": '[get_weather(city="Paris")]',
    "mistral-v3": '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}]',
    "mistral-v11": '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}',
    "gemma-tool-code": '```tool_code\nget_weather(city="Paris")\n```',
    "json-fence": '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
    "phi4": '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]<|/tool_call|>',
    "function-tag": '<function=get_weather>{"city": "Paris"}</function>',
    "functionary": '>>>get_weather\n{"city": "Paris"}',
    "openai-shaped": '{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}',
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_is_one_call_however_it_is_split(name: str):
    assert extract_everywhere(FORMATS[name]) == ("", [PARIS])


def test_text_before_a_call_streams_and_the_call_follows():
    text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert extract_everywhere(text) == ("Let me check.", [PARIS])
    extractor = AutoExtractor(NAMES, True)
    # Plain text passes at once; only a possible marker start is held back.
    assert extractor.push("Let me check. <tool") == ("Let me check.", [])
    assert extractor.push("_call>") == ("", [])
    # A reply that merely opens with a tool's name is not held.
    extractor = AutoExtractor(NAMES, True)
    assert extractor.push("get") == ("", [])
    assert extractor.push("_weather is a tool") == ("get_weather is a tool", [])


def test_several_calls_in_one_output():
    text = (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "search", "arguments": {"query": "rain"}}</tool_call>'
    )
    assert extract_everywhere(text) == ("", [PARIS, ("search", {"query": "rain"})])
    mistral = '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]search[ARGS]{"query": "rain"}'
    assert extract_everywhere(mistral)[1] == [PARIS, ("search", {"query": "rain"})]
    llama = '{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "search", "parameters": {"query": "rain"}}'
    assert extract_everywhere(llama)[1] == [PARIS, ("search", {"query": "rain"})]


def test_without_parallel_calls_only_the_first_is_kept():
    text = (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
        '<tool_call>{"name": "search", "arguments": {"query": "rain"}}</tool_call>'
    )
    assert extract_everywhere(text, parallel=False) == ("", [PARIS])
    assert extract_everywhere('[get_weather(city="Paris"), search(query="x")]', parallel=False)[1] == [PARIS]


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>',  # malformed JSON
        '<tool_call>{"name": "delete_everything", "arguments": {}}</tool_call>',  # not among the tools
        '<tool_call>{"arguments": {"city": "Paris"}}</tool_call>',  # no name
        '<tool_call>{"name": "get_weather", "arguments": "not json"}</tool_call>',
        '[TOOL_CALLS]nope[ARGS]{"a": 1}',
        '{"answer": 42}',
        '```json\n{"answer": 42}\n```',
        "In a REPL, >>> print(1) prints 1.",
        "See [the docs](https://example.com) and {braces}.",
        "get_weather is what I would call, but I won't.",
        "<tool_call",
        "",
    ],
)
def test_what_is_not_a_call_stays_text_exactly(text: str):
    assert extract_everywhere(text) == (text, [])


def test_text_after_a_bad_call_is_still_read_for_calls():
    text = (
        '<tool_call>{"name": "nope", "arguments": {}}</tool_call> then '
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    )
    assert extract_everywhere(text) == ('<tool_call>{"name": "nope", "arguments": {}}</tool_call> then', [PARIS])


def test_arguments_keep_unicode_and_control_characters():
    text = '<tool_call>{"name": "search", "arguments": {"query": "café\t\x01"}}</tool_call>'
    (call,) = run(AutoExtractor(NAMES, True), [text])[1]
    assert json.loads(call.arguments) == {"query": "café\t\x01"}


# Plans.


def test_no_tools_or_choice_none_plans_nothing():
    for plan in (plan_tools(params(tools=()), "chatml"), plan_tools(params("none"), "chatml")):
        assert plan == ToolPlan()
        assert run(plan.new_extractor(), ['<tool_call>{"name": "search"}</tool_call>'])[1] == []


def test_auto_plan_gives_the_template_the_tools_and_reads_calls():
    plan = plan_tools(params(), "chatml")
    assert plan.extracts and not plan.forced
    assert [t["function"]["name"] for t in plan.template_tools] == ["get_weather", "search"]
    assert plan.template_tools[0] == {
        "type": "function",
        "function": {"name": "get_weather", "description": WEATHER.description, "parameters": WEATHER.parameters},
    }
    # Hermes-style models get a lazy grammar from their call marker on.
    assert plan.grammar_triggers == ("<tool_call>",)
    assert plan.grammar.count("root ::=") == 1
    assert run(plan.new_extractor(), [FORMATS["hermes"]])[1][0].name == "get_weather"


@pytest.mark.parametrize("family", ["llama3", "mistral"])
def test_auto_plan_without_a_known_marker_has_no_grammar(family: str):
    plan = plan_tools(params(), family)
    assert plan.grammar is None and plan.grammar_triggers == ()
    assert run(plan.new_extractor(), [FORMATS["llama3-json"]])[1][0].name == "get_weather"


def test_auto_plan_guesses_the_marker_from_a_models_template():
    assert plan_tools(params(), None, "{% if tools %}<tool_call>{% endif %}").grammar_triggers == ("<tool_call>",)
    assert plan_tools(params(), None, "{% if tools %}<|tool_call|>{% endif %}").grammar_triggers == ("<|tool_call|>",)
    assert plan_tools(params(), None, "{% if tools %}[TOOL_CALLS]{% endif %}").grammar is None
    # A template that never reads the tools gets them described Hermes-style, so Hermes calls are expected.
    assert plan_tools(params(), None, "{{ messages }}").grammar_triggers == ("<tool_call>",)
    assert plan_tools(params(), None).grammar is None


def test_required_plan_forces_calls_and_shows_no_text():
    plan = plan_tools(params("required", parallel=False), "chatml")
    assert plan.forced and plan.grammar and plan.grammar_triggers == ()
    extractor = plan.new_extractor()
    assert extractor.push('{"name": "search", ') == ("", [])
    assert extractor.push('"arguments": {"query": "x"}}') == ("", [])
    text, (call,) = extractor.finish()
    assert text == "" and call.name == "search" and json.loads(call.arguments) == {"query": "x"}


def test_forced_output_that_is_not_a_call_comes_back_as_text():
    plan = plan_tools(params("required"), "chatml")
    assert run(plan.new_extractor(), ['[{"name": "search", "argu']) == ('[{"name": "search", "argu', [])


def test_function_plan_offers_only_that_tool():
    plan = plan_tools(params("function", function="search"), "gemma")
    assert [t["function"]["name"] for t in plan.template_tools] == ["search"]
    assert "get_weather" not in plan.grammar
    assert run(plan.new_extractor(), ['[{"name": "get_weather", "arguments": {}}]'])[1] == []


def test_naming_an_unknown_tool_is_refused_by_the_validation_gate():
    record = ModelRecord(
        id="m", path=Path("m.gguf"), file_size=0, modified=0, info=None, invalid_reason=None,
        context_window=4096, max_output_tokens=4096, chat_template_override=None,
    )
    with pytest.raises(InvalidArgument) as raised:
        validate_generate(params("function", function="nope"), record, max_sequences=4)
    assert raised.value.param == "tool_choice"
    assert validate_generate(params("function", function="search"), record, max_sequences=4).tool_choice_function == "search"


def test_schemas_with_absurd_bounds_make_small_grammars():
    plan = plan_tools(params("required", tools=(ToolSpec("read", "Read a file", OPENCODE_LIKE), SEARCH)), "chatml")
    assert len(plan.grammar) < 10_000
    assert "$schema" not in json.dumps(guard_schema(OPENCODE_LIKE, "tools"))
    assert len(json_schema_grammar(OPENCODE_LIKE)) < 10_000


def test_a_schema_the_converter_refuses_still_forces_a_call():
    odd = ToolSpec("odd", "x", {"type": "object", "properties": {"x": {"$ref": "https://example.com/schema"}}})
    plan = plan_tools(params("required", tools=(odd,)), "chatml")
    assert '"\\"odd\\""' in plan.grammar
