"""Grammars for tool calls really constrain llama.cpp: a tiny random-weight
model, sampling freely within them, writes valid calls."""

import json
from pathlib import Path

import pytest

from hearth.engine.domain import ToolSpec
from hearth.engine.llama.backend import load_backends
from hearth.engine.tools.extractors import AutoExtractor
from hearth.engine.tools.planning import plan_tools
from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.tools import NAMES, OPENCODE_LIKE, SEARCH, WEATHER, params, run


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    from llama_cpp import Llama

    # The CPU backend is a library of its own, loaded as the engine loads it (run alone, nothing else has).
    load_backends()
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
