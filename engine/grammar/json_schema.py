"""GBNF grammars that constrain sampling: any JSON object, or JSON valid
against a JSON Schema (llama.cpp's own schema converter)."""

import re

from hearth.engine.errors import InvalidArgument
from hearth.engine.grammar.integers import BoundedSchemaConverter
from hearth.engine.llama.schema import JSON_GBNF


def json_object_grammar() -> str:
    """Any JSON object (llama.cpp's JSON grammar has an object at its root)."""
    return JSON_GBNF


def json_schema_grammar(schema: dict, *, param: str = "response_format.json_schema") -> str:
    """A grammar for JSON valid against ``schema``; InvalidArgument naming
    ``param`` when the converter cannot handle it."""
    return _convert(schema, "", param)[1]


def _convert(schema: dict, name: str, param: str) -> tuple[str, str]:
    """(the top rule's name, the whole grammar) for ``schema``, its rules named
    after ``name``; InvalidArgument naming ``param`` when the converter cannot handle it."""
    converter = BoundedSchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    try:
        top = converter.visit(converter.resolve_refs(sanitize_schema(schema), "input"), name)
        return top, converter.format_grammar()
    except _CONVERTER_ERRORS as exc:
        raise InvalidArgument(f"Unsupported JSON schema: {exc}", param=param) from exc


# What the schema converter raises on schemas it cannot handle (it asserts on some).
_CONVERTER_ERRORS = (ValueError, TypeError, KeyError, RecursionError, NotImplementedError, AssertionError)

# The converter spells out bounded repetitions rule by rule: a bound past this
# would make a huge grammar (schemas from tools say maxLength 9007199254740991).
MAX_SPELLED_REPETITIONS = 64
MAX_SAFE_INTEGER = 2**53 - 1
_NUMBER_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_REPETITION_BOUNDS = ("minLength", "maxLength", "minItems", "maxItems")
# Keys that never constrain the text (or that the converter mishandles).
_IGNORED_KEYS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default"})
_SCHEMA_MAPS = frozenset({"properties", "definitions", "$defs", "patternProperties"})
_SUBSCHEMA_KEYS = frozenset({"items", "prefixItems", "additionalProperties", "anyOf", "oneOf", "allOf", "not"})
_ANY_TYPES = ("string", "number", "boolean", "object", "array", "null")
_HUGE_QUANTIFIER = re.compile(r"\{\s*\d*\s*,?\s*\d{3,}\s*\}")


def sanitize_schema(schema, *, nested: bool = False):
    """``schema`` without what would make its grammar slow or huge: metadata
    keys dropped, absurd repetition bounds loosened (a minimum past the limit
    becomes the limit, a maximum past it none), patterns with huge quantifiers
    dropped. The grammar may then accept more than the schema, never less.
    A ``nested`` schema without constraints allows any JSON value (the
    converter would read it as "an object")."""
    if isinstance(schema, list):
        return [sanitize_schema(item, nested=nested) for item in schema]
    if not isinstance(schema, dict):
        return schema
    clean = {}
    for key, value in schema.items():
        if key in _IGNORED_KEYS:
            continue
        if key in _REPETITION_BOUNDS and isinstance(value, int | float):
            if value > MAX_SPELLED_REPETITIONS or value < 0:
                if key.startswith("min") and value > 0:
                    clean[key] = MAX_SPELLED_REPETITIONS
                continue
            clean[key] = int(value)
            continue
        if key == "pattern" and isinstance(value, str) and _HUGE_QUANTIFIER.search(value):
            continue
        if key in _NUMBER_BOUNDS and isinstance(value, int | float) and abs(value) >= MAX_SAFE_INTEGER:
            continue  # "any safe integer" bounds say nothing, and are costly to spell out
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            # Names here are property names, not schema keywords.
            clean[key] = {name: sanitize_schema(sub, nested=True) for name, sub in value.items()}
            continue
        clean[key] = sanitize_schema(value, nested=True) if key in _SUBSCHEMA_KEYS else value
    # A minimum loosened to the limit must not pass a maximum kept below it.
    for low, high in (("minLength", "maxLength"), ("minItems", "maxItems")):
        if low in clean and high in clean and clean[low] > clean[high]:
            del clean[high]
    if nested and not clean:
        return {"type": list(_ANY_TYPES)}
    return clean


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def schema_rules(schema: dict, name: str, *, param: str = "tools") -> tuple[str, dict[str, str]]:
    """GBNF rules for JSON valid against ``schema``: the name of the rule to
    use and every rule, named after ``name`` where the schema gives them no
    name of their own (shared primitives such as ``string`` keep theirs).
    InvalidArgument naming ``param`` when the converter cannot handle it."""
    top, text = _convert(schema, name, param)
    rules = dict(line.split(" ::= ", 1) for line in text.splitlines())
    return top, rules


def merge_rules(into: dict[str, str], rules: dict[str, str]) -> bool:
    """Adds ``rules`` to ``into`` unless a rule of the same name differs there
    (then nothing is added and the answer is False)."""
    if any(into.get(name, body) != body for name, body in rules.items()):
        return False
    into.update(rules)
    return True


def format_rules(rules: dict[str, str]) -> str:
    """GBNF text of named rules (one must be ``root``)."""
    return "\n".join(f"{name} ::= {body}" for name, body in sorted(rules.items()))
