"""llama.cpp's JSON Schema converter, with what it gets wrong or makes
costly done here instead:

- integer bounds (minimum, maximum, exclusive forms), which it ignores;
- string lengths and array sizes as GBNF repetitions (``char{0,50}``), which
  llama.cpp expands into a chain of rules; the converter spells them out as
  nested optional groups, whose depth overflowed llama.cpp's recursive parser;
- enums as a trie (shared prefixes written once, one rule per branching
  point): the converter's flat alternatives made the grammar keep one parse
  stack per value, so applying it to the vocabulary cost time in proportion
  to the enum's size (1,000 values: 4 s per full application on Gemma).

Schemas reach it through schema_guard, which bounds every count first."""

import json

from hearth.engine.grammar.integers import integer_bounds, integer_range_gbnf
from hearth.engine.llama.schema import PRIMITIVE_RULES, RESERVED_NAMES, SchemaConverter

_OWN_RULE_KEYS = ("$ref", "enum", "const", "oneOf", "anyOf", "allOf")
_STRING_SPECIALS = ("pattern", "format")


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def gbnf_repetition(item: str, low: int, high: int | None) -> str:
    """``item`` repeated ``low`` to ``high`` (None: any) times, in GBNF's own syntax."""
    if high is None:
        return f"{item}*" if low == 0 else f"{item}{{{low},}}"
    if low == high:
        return f"{item}{{{low}}}" if low != 1 else item
    return f"{item}{{{low},{high}}}"


class BoundedSchemaConverter(SchemaConverter):
    def resolve_refs(self, schema: dict, url: str):
        """Every local "$ref" in the document registered with its target. The
        converter's own walk skips the other keys of a node that has a "$ref",
        so a root "$ref" into "definitions" that refer to themselves failed."""

        def target_of(ref: str):
            target = schema
            for part in ref.split("#", 1)[1].split("/")[1:]:
                key = part.replace("~1", "/").replace("~0", "~")
                target = target[int(key)] if isinstance(target, list) else target[key]
            return target

        pending = [schema]
        while pending:
            node = pending.pop()
            if isinstance(node, list):
                pending.extend(node)
            elif isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#"):
                    node["$ref"] = full = f"{url}{ref}"
                    if full not in self._refs:
                        self._refs[full] = target_of(ref)
                pending.extend(value for key, value in node.items() if key != "$ref")
        return schema

    def _rule_name(self, name: str) -> str:
        return name + "-" if name in RESERVED_NAMES else name or "root"

    def visit(self, schema, name):
        if isinstance(schema, dict) and not any(key in schema for key in _OWN_RULE_KEYS):
            kind = schema.get("type")
            if kind == "integer":
                low, high = integer_bounds(schema)
                if low is not None or high is not None:
                    return self._add_rule(self._rule_name(name), integer_range_gbnf(low, high) + " space")
            if kind == "string" and not any(key in schema for key in _STRING_SPECIALS):
                if "minLength" in schema or "maxLength" in schema:
                    return self._string_rule(schema, name)
            if kind == "array" and isinstance(schema.get("items"), dict) and "prefixItems" not in schema:
                return self._array_rule(schema, name)
        if isinstance(schema, dict) and "enum" in schema and not any(
            key in schema for key in ("$ref", "oneOf", "anyOf", "const")
        ) and not isinstance(schema.get("type"), list):
            return self._enum_rule(schema["enum"], name)
        return super().visit(schema, name)

    def _string_rule(self, schema: dict, name: str) -> str:
        char = self._add_primitive("char", PRIMITIVE_RULES["char"])
        repeated = gbnf_repetition(char, schema.get("minLength", 0), schema.get("maxLength"))
        return self._add_rule(self._rule_name(name), f'"\\"" {repeated} "\\"" space')

    def _array_rule(self, schema: dict, name: str) -> str:
        item = self.visit(schema["items"], f"{name}{'-' if name else ''}item")
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        if high == 0:
            body = ""
        elif low == 0:
            more = gbnf_repetition(f'("," space {item})', 0, None if high is None else high - 1)
            body = f"({item} {more})?"
        else:
            more = gbnf_repetition(f'("," space {item})', low - 1, None if high is None else high - 1)
            body = f"{item} {more}"
        return self._add_rule(self._rule_name(name), f'"[" space {body} "]" space')

    def _enum_rule(self, values: list, name: str) -> str:
        """The values' JSON texts as a trie: each branching point is a rule of
        its own, so neither this converter nor llama.cpp's parser nests deeply."""
        end = object()
        trie: dict = {}
        for value in values:
            node = trie
            for char in json.dumps(value, ensure_ascii=False):
                node = node.setdefault(char, {})
            node[end] = True
        rule_name = self._rule_name(name)
        counter = [0]

        def branch(node: dict) -> str:
            alternatives = []
            for char, child in node.items():
                if char is end:
                    continue
                text = char
                # A chain of single children is one literal.
                while len(child) == 1 and end not in child:
                    (next_char, grandchild), = child.items()
                    text += next_char
                    child = grandchild
                rest = branch_rule(child) if any(key is not end for key in child) else ""
                alternatives.append(f"{gbnf_literal(text)} {rest}".rstrip())
            if end in node:
                alternatives.append('""')
            return " | ".join(alternatives)

        def branch_rule(node: dict) -> str:
            counter[0] += 1
            return self._add_rule(f"{rule_name}-{counter[0]}", branch(node))

        return self._add_rule(rule_name, f"({branch(trie)}) space")
