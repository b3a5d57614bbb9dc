"""GBNF grammars that constrain sampling: any JSON object, or JSON valid
against a JSON Schema. A schema is checked and bounded by schema_guard, then
converted by grammar.converter; anything either refuses, and any failure of
the converter on an odd schema, is a 400 naming the field — never a crash."""

import logging

from hearth.engine.errors import InvalidArgument
from hearth.engine.grammar.converter import BoundedSchemaConverter
from hearth.engine.grammar.schema_guard import SchemaRefused, guard_schema

log = logging.getLogger(__name__)

# A grammar larger than this takes llama.cpp long to parse and apply.
MAX_GRAMMAR_BYTES = 1024 * 1024
# What of a converter's error is told to the client.
MAX_ERROR_CHARS = 200



# Any JSON object. llama.cpp's JSON grammar allows 21 whitespace characters
# after every token, room a small model pads with until its budget runs out;
# here a token may be followed by one space at most.
JSON_OBJECT_GBNF = r"""root ::= object
value ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}" ws
array ::= "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\"" ws
number ::= "-"? ( [0-9] | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )? ws
ws ::= " "?"""


def json_object_grammar() -> str:
    """Any JSON object."""
    return JSON_OBJECT_GBNF


def json_schema_grammar(schema: dict, *, param: str = "response_format.json_schema") -> str:
    """A grammar for JSON valid against ``schema``; InvalidArgument naming
    ``param`` when the converter cannot handle it."""
    return _convert(schema, "", param)[1]


def _convert(schema: dict, name: str, param: str) -> tuple[str, str]:
    """(the top rule's name, the whole grammar) for ``schema``, its rules named
    after ``name``; InvalidArgument naming ``param`` when the converter cannot handle it."""
    checked = guard_schema(schema, param)
    converter = BoundedSchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    try:
        top = converter.visit(converter.resolve_refs(checked, "input"), name)
        grammar = converter.format_grammar()
    except RecursionError:
        raise SchemaRefused(f"'{param}' is nested too deeply to convert", param=param) from None
    except Exception as exc:  # the converter asserts, indexes and recurses on odd input: all of it is the input's
        detail = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        log.info("schema converter refused %s: %s", param, detail)
        raise InvalidArgument(f"Unsupported JSON schema in '{param}': {detail}", param=param) from None
    if len(grammar) > MAX_GRAMMAR_BYTES:
        raise SchemaRefused(
            f"'{param}' makes a grammar of {len(grammar)} bytes; at most {MAX_GRAMMAR_BYTES} are supported", param=param
        )
    return top, grammar


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
