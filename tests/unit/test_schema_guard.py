"""Client schemas are bounded before they become grammars: every node is
walked however it is reached, costly ones are refused naming the keyword and
the limit, malformed ones are a 400, and fine recursive schemas stay fine.
(The grammars are parsed by llama.cpp in tests/integration/test_hostile_grammars.py.)"""

import json
import re

import pytest

from hearth.engine.errors import InvalidArgument
from hearth.engine.grammar.converter import gbnf_repetition
from hearth.engine.grammar.json_schema import MAX_GRAMMAR_BYTES, json_object_grammar, json_schema_grammar
from hearth.engine.grammar.schema_guard import (
    MAX_ENUM_VALUES,
    MAX_PATTERN_QUANTIFIER,
    MAX_REPETITIONS,
    MAX_SCHEMA_DEPTH,
    SchemaRefused,
    guard_schema,
    pattern_expansion,
)

PARAM = "response_format.json_schema"


def refusal(schema) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as raised:
        json_schema_grammar(schema)
    assert len(raised.value.message) < 400, "the error repeats the schema"
    return raised.value


def string_with(**bounds) -> dict:
    return {"type": "object", "properties": {"s": {"type": "string", **bounds}}, "required": ["s"]}


# Growth, through every path a node can be reached by.

GROWTH = {
    "minLength": {"type": "string", "minLength": 50_000},
    "minItems": {"type": "array", "items": {"type": "integer"}, "minItems": 50_000},
    "pattern": {"type": "string", "pattern": "^[ab]{10000000,}$"},
    "pattern-bounded": {"type": "string", "pattern": "^a{0,50000}$"},
    "pattern-nested": {"type": "string", "pattern": "^(a{500}){500}$"},
}
PATHS = {
    "root": lambda node: node,
    "property": lambda node: {"type": "object", "properties": {"x": node}},
    "ref-into-any-key": lambda node: {"$ref": "#/x", "x": node},
    "nested-ref": lambda node: {"$ref": "#/a", "a": {"$ref": "#/b/c"}, "b": {"c": node}},
    "defs": lambda node: {"type": "object", "properties": {"p": {"$ref": "#/$defs/d"}}, "$defs": {"d": node}},
    "items": lambda node: {"type": "array", "items": node},
    "anyOf": lambda node: {"anyOf": [{"type": "null"}, node]},
    "allOf-ref": lambda node: {"type": "object", "allOf": [{"$ref": "#/definitions/n"}], "definitions": {"n": node}},
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("growth", GROWTH)
def test_growth_is_refused_wherever_it_hides(growth: str, path: str):
    error = refusal(PATHS[path](GROWTH[growth]))
    assert isinstance(error, SchemaRefused)
    assert error.param.startswith(PARAM)
    assert re.search(r"\d+", error.message)  # names the limit or the count


def test_the_refusal_names_the_keyword_and_the_limit():
    error = refusal({"$ref": "#/x", "x": {"type": "string", "minLength": 50_000}})
    assert error.param == f"{PARAM}.x.minLength"
    assert str(MAX_REPETITIONS) in error.message


def test_large_maxima_are_loosened_not_refused():
    # maxLength 50000 was the crash; an upper bound past the limit is dropped (as llama.cpp drops it).
    grammar = json_schema_grammar({"$ref": "#/x", "x": {"type": "string", "maxLength": 50_000}})
    assert "50000" not in grammar and len(grammar) < 2000
    # zod's "no bound" sentinels say nothing.
    assert "char" in json_schema_grammar(string_with(maxLength=2**53 - 1))


def test_bounds_within_the_limit_are_exact_gbnf_repetitions():
    grammar = json_schema_grammar(string_with(minLength=3, maxLength=MAX_REPETITIONS))
    assert f"{{3,{MAX_REPETITIONS}}}" in grammar
    array = json_schema_grammar({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 5})
    assert "{1,4}" in array
    assert gbnf_repetition("x", 0, None) == "x*" and gbnf_repetition("x", 2, 2) == "x{2}"


def test_enums_are_tries_and_bounded():
    values = [f"value-{i:05d}" for i in range(1000)]
    grammar = json_schema_grammar({"enum": values})
    assert grammar.count("value-") < 20, "shared prefixes are written once"
    assert len(grammar) < 40_000
    assert "enum" in refusal({"enum": list(range(MAX_ENUM_VALUES + 1))}).param


def test_patterns_are_measured_with_nested_quantifiers():
    assert pattern_expansion("^a{10}$") == (10, 10)
    assert pattern_expansion("^(ab){3}c$")[1] == 7
    assert pattern_expansion("^(a{5}){4}$")[1] == 20
    assert pattern_expansion("^[a-z]{2,8}$")[0] == 8
    assert str(MAX_PATTERN_QUANTIFIER) in refusal(string_with(pattern="^x{1001}$")).message


@pytest.mark.parametrize(
    "schema",
    [
        string_with(pattern="^*a$"),
        string_with(pattern=5),
        string_with(pattern="^(unclosed$"),
        {"$ref": "#/x", "x": 5},
        {"$ref": "#/nowhere"},
        {"$ref": 7},
        {"type": "object", "properties": [1, 2]},
        {"type": "wat"},
        {"type": []},
        {"type": "object", "required": "name"},
        {"anyOf": {"type": "string"}},
        {"enum": []},
        {"enum": "abc"},
        string_with(minLength=-1),
        string_with(maxLength="10"),
        string_with(minLength=5, maxLength=2),
        {"type": "integer", "minimum": "1"},
        {"type": "integer", "minimum": 5, "maximum": 1},
        {"type": "array", "items": 3},
    ],
    ids=lambda schema: json.dumps(schema)[:60],
)
def test_malformed_schemas_are_a_400_never_a_crash(schema):
    error = refusal(schema)
    assert error.param.startswith(PARAM)


def test_depth_and_size_are_bounded():
    deep: dict = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH + 5):
        deep = {"type": "array", "items": deep}
    assert "deep" in refusal(deep).message
    # A constant is one literal however deep its value: accepted, and written whole.
    nested: list = []
    for _ in range(MAX_SCHEMA_DEPTH * 4):
        nested = [nested]
    assert "[" * 50 in json_schema_grammar({"const": nested})
    # Deeper than Python's own recursion can serialise: a 400, never a RecursionError.
    for _ in range(5000):
        nested = [nested]
    with pytest.raises(InvalidArgument):
        json_schema_grammar({"const": nested})
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string", "maxLength": 900} for i in range(600)}}
    try:
        grammar = json_schema_grammar(wide)
        assert len(grammar) <= MAX_GRAMMAR_BYTES
    except SchemaRefused as exc:
        assert "bytes" in exc.message


def test_valid_recursive_schemas_stay_accepted():
    tree = {
        "$ref": "#/definitions/node",
        "definitions": {
            "node": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}},
                "required": ["name"],
            }
        },
    }
    grammar = json_schema_grammar(tree)
    assert "node" in grammar
    linked = {"$ref": "#", "type": "object", "properties": {"next": {"$ref": "#"}}}
    assert json_schema_grammar({"type": "object", "properties": {"head": linked}})


def test_remote_refs_are_unsupported_but_not_a_cost():
    with pytest.raises(InvalidArgument) as raised:
        guard_schema({"$ref": "https://example.com/s.json"}, PARAM)
    assert not isinstance(raised.value, SchemaRefused)


def test_the_json_object_grammar_allows_one_space_at_most_between_tokens():
    ws = [line for line in json_object_grammar().splitlines() if line.startswith("ws ")]
    assert ws == ['ws ::= " "?']


def test_the_guard_never_changes_the_clients_schema():
    schema = {"$ref": "#/x", "x": {"type": "string", "maxLength": 50_000, "description": "d"}}
    before = json.dumps(schema)
    guard_schema(schema, PARAM)
    assert json.dumps(schema) == before
