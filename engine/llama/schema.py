"""llama-cpp-python's JSON Schema -> GBNF converter and its JSON grammar, for
the grammar package (importing them loads llama.cpp, hence through here)."""

from llama_cpp.llama_grammar import JSON_GBNF, PRIMITIVE_RULES, RESERVED_NAMES, SchemaConverter

__all__ = ["JSON_GBNF", "PRIMITIVE_RULES", "RESERVED_NAMES", "SchemaConverter"]
