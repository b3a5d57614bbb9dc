"""Tool calls: reading the model's own call formats out of streamed text,
plans per tool_choice, and grammars that really constrain llama.cpp."""

import json
import re
from pathlib import Path

import pytest
from gguf_factory import write_tiny_llama

from hearth.engine.errors import InvalidArgument
from hearth.engine.grammars import json_schema_grammar, sanitize_schema
from hearth.engine.requests import GenerateParams, SamplingParams, ToolCall, ToolSpec
from hearth.engine.tool_calls import AutoExtractor, ToolCallExtractor, ToolPlan, plan_tools

WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 8},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
            "detailed": {"type": "boolean"},
        },
        "required": ["city", "unit", "days", "detailed"],
    },
)
SEARCH = ToolSpec(
    "search",
    "Search the web",
    {"type": "object", "properties": {"query": {"type": "string", "maxLength": 6}}, "required": ["query"]},
)
NAMES = frozenset({"get_weather", "search"})
CALL_ID = re.compile(r"call_[A-Za-z0-9]{24}")


def params(tool_choice: str = "auto", *, tools=(WEATHER, SEARCH), parallel: bool = True, function: str = "") -> GenerateParams:
    return GenerateParams(
        model="m",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        prompt=None,
        max_tokens=64,
        stop=(),
        sampling=SamplingParams(),
        request_id="r",
        tools=tools,
        tool_choice=tool_choice,
        tool_choice_function=function,
        parallel_tool_calls=parallel,
    )


def run(extractor: ToolCallExtractor, pieces: list[str]) -> tuple[str, list[ToolCall]]:
    shown, calls = [], []
    for piece in pieces:
        text, made = extractor.push(piece)
        shown.append(text)
        calls += made
    text, made = extractor.finish()
    return "".join(shown) + text, calls + made


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


def test_function_plan_naming_an_unknown_tool_is_invalid():
    with pytest.raises(InvalidArgument) as raised:
        plan_tools(params("function", function="nope"), "chatml")
    assert raised.value.param == "tool_choice"


OPENCODE_LIKE = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "filePath": {"type": "string", "description": "The absolute path"},
        "offset": {"type": "number", "exclusiveMinimum": 0, "maximum": 9007199254740991},
        "limit": {"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991},
        "lines": {"type": "array", "items": {"type": "string", "maxLength": 9007199254740991}, "maxItems": 9007199254740991},
        "extra": {"description": "anything"},
    },
    "required": ["filePath"],
    "additionalProperties": False,
}


def test_schemas_with_absurd_bounds_make_small_grammars():
    plan = plan_tools(params("required", tools=(ToolSpec("read", "Read a file", OPENCODE_LIKE), SEARCH)), "chatml")
    assert len(plan.grammar) < 10_000
    assert "$schema" not in json.dumps(sanitize_schema(OPENCODE_LIKE))
    assert len(json_schema_grammar(OPENCODE_LIKE)) < 10_000


def test_a_schema_the_converter_refuses_still_forces_a_call():
    odd = ToolSpec("odd", "x", {"type": "object", "properties": {"x": {"$ref": "https://example.com/schema"}}})
    plan = plan_tools(params("required", tools=(odd,)), "chatml")
    assert '"\\"odd\\""' in plan.grammar


# Grammars in llama.cpp, with a real (tiny, random-weight) model.


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    from llama_cpp import Llama

    path = write_tiny_llama(Path(tmp_path_factory.mktemp("tiny")) / "tiny.gguf")
    llm = Llama(str(path), n_ctx=512, n_threads=1, verbose=False)
    yield llm
    llm.close()


def generate(llm, grammar: str, seed: int, max_tokens: int = 300) -> tuple[str, str]:
    from llama_cpp import LlamaGrammar

    out = llm.create_completion(
        "x" * (seed + 1), grammar=LlamaGrammar.from_string(grammar, verbose=False), max_tokens=max_tokens, temperature=0.8, seed=seed
    )
    return out["choices"][0]["text"], out["choices"][0]["finish_reason"]


def assert_matches_schema(tool: ToolSpec, arguments: dict) -> None:
    properties = tool.parameters["properties"]
    assert set(tool.parameters["required"]) <= set(arguments) <= set(properties)
    for key, value in arguments.items():
        kind = properties[key]["type"]
        expected = {"string": str, "integer": int, "boolean": bool}[kind]
        assert isinstance(value, expected) and (kind != "integer" or not isinstance(value, bool))
        assert value in properties[key].get("enum", [value])
        if kind == "string":
            assert len(value) <= properties[key].get("maxLength", len(value))


@pytest.mark.parametrize("choice, function", [("required", ""), ("function", "get_weather")])
def test_forced_grammar_makes_a_random_model_write_a_valid_call(tiny_llm, choice: str, function: str):
    plan = plan_tools(params(choice, parallel=False, function=function), "chatml")
    tools = {t.name: t for t in (WEATHER, SEARCH)}
    for seed in range(3):
        text, finish = generate(tiny_llm, plan.grammar, seed)
        assert finish == "stop", text
        shown, (call,) = run(plan.new_extractor(), [text])
        assert shown == ""
        assert call.name in plan.tool_names
        assert_matches_schema(tools[call.name], json.loads(call.arguments))


def test_parallel_forced_grammar_makes_an_array_of_valid_calls(tiny_llm):
    plan = plan_tools(params("required"), "chatml")
    tools = {t.name: t for t in (WEATHER, SEARCH)}
    finished = 0
    for seed in range(4):
        text, finish = generate(tiny_llm, plan.grammar, seed)
        assert text.startswith("[")
        if finish != "stop":
            continue  # a random model may go on listing calls until max_tokens
        finished += 1
        shown, calls = run(plan.new_extractor(), [text])
        assert shown == "" and calls
        for call in calls:
            assert_matches_schema(tools[call.name], json.loads(call.arguments))
    assert finished


@pytest.mark.parametrize("family, marker", [("chatml", "<tool_call>"), ("gemma", "<tool_call>"), ("phi3", "<|tool_call|>")])
def test_lazy_grammar_from_its_trigger_makes_a_readable_call(tiny_llm, family: str, marker: str):
    plan = plan_tools(params(parallel=False), family)
    assert plan.grammar_triggers == (marker,)
    tools = {t.name: t for t in (WEATHER, SEARCH)}
    for seed in range(3):
        # Applied from the start, the lazy grammar's text opens with its trigger.
        text, finish = generate(tiny_llm, plan.grammar, seed)
        assert finish == "stop" and text.startswith(marker)
        shown, (call,) = run(plan.new_extractor(), ["Sure. ", text])
        assert shown == "Sure."
        assert_matches_schema(tools[call.name], json.loads(call.arguments))


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, "<tool_call>" + "[" * 100_000 + "</tool_call>", "[search(query=" + "[" * 50_000 + ")]", "{" * 100_000],
)
def test_hostile_nesting_stays_text_without_an_exception(text: str):
    for extractor in (AutoExtractor(NAMES, True), plan_tools(params("required"), "chatml").new_extractor()):
        assert run(extractor, [text]) == (text, [])


def test_grammars_for_real_world_schemas_parse_in_llama_cpp(tiny_llm):
    import llama_cpp

    read = ToolSpec("read", "Read a file", OPENCODE_LIKE)
    odd = ToolSpec("odd", "x", {"type": "object", "properties": {"x": {"$ref": "https://example.com/schema"}}})
    empty = ToolSpec("now", "The time", {})
    tools = (read, odd, empty, WEATHER, SEARCH)
    grammars = [plan_tools(params(choice, tools=tools, parallel=p), family).grammar for choice in ("required", "auto") for p in (True, False) for family in ("chatml", "phi3")]
    for grammar in grammars:
        sampler = llama_cpp.llama_sampler_init_grammar(tiny_llm._model.vocab, grammar.encode(), b"root")
        assert sampler, grammar
        llama_cpp.llama_sampler_free(sampler)
