"""GBNF grammars that constrain sampling: any JSON object, or JSON valid
against a JSON Schema (llama.cpp's own schema converter)."""

import json

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from hearth.engine.errors import InvalidArgument


def json_object_grammar() -> str:
    """Any JSON object (llama.cpp's JSON grammar has an object at its root)."""
    return JSON_GBNF


def json_schema_grammar(schema: dict, *, param: str = "response_format.json_schema") -> str:
    """A grammar for JSON valid against ``schema``; InvalidArgument naming
    ``param`` when the converter cannot handle it."""
    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except (ValueError, TypeError, KeyError, RecursionError, NotImplementedError) as exc:
        raise InvalidArgument(f"Unsupported JSON schema: {exc}", param=param) from exc
