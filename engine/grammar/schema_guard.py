"""A client's JSON Schema made safe to turn into a grammar, before any
converter or llama.cpp sees it.

Every schema node is walked however it is reached — through properties,
items, combinators, definitions or a local "$ref" into any key of the
document — with refs followed once each (cycles are recursion, and stay
allowed), a depth limit and a node limit. Each node's keywords are checked
for their JSON types, and what would make the grammar huge or slow is
bounded: repetition counts, pattern quantifiers, enum and const sizes.

What cannot be honoured cheaply is refused with SchemaRefused, naming the
keyword's path and the limit. What says nothing is loosened (the grammar may
then accept more than the schema, never less): metadata keys are dropped,
"unbounded" sentinels such as maxLength 2**53-1 (zod writes them) and upper
bounds past what llama.cpp spells out are dropped, as llama.cpp itself does."""

import copy
import json
import math
import re
from dataclasses import dataclass

from hearth.engine.errors import InvalidArgument

# Repetitions a grammar spells out (llama.cpp's own ceiling is 2000 rules for
# one repetition, which a separator-and-item group reaches at 1000): a larger
# upper bound is dropped, as llama.cpp drops one, a larger lower bound refused.
MAX_REPETITIONS = 1000
# Regex quantifiers are spelled out by the converter, one rule per repetition.
MAX_PATTERN_QUANTIFIER = 1000
MAX_PATTERN_EXPANSION = 20_000
MAX_PATTERN_CHARS = 4096
MAX_ENUM_VALUES = 10_000
MAX_ENUM_BYTES = 256 * 1024
MAX_CONST_BYTES = 64 * 1024
MAX_SCHEMA_NODES = 20_000
MAX_SCHEMA_DEPTH = 64
MAX_REF_CHARS = 1024
# Bounds at least this large mean "no bound" (2**31 and up: int32's end, 2**53 - 1...).
UNBOUNDED = 2**31

_NUMBER_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_REPETITION_BOUNDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_IGNORED_KEYS = frozenset(
    {"$schema", "$id", "$comment", "$anchor", "title", "description", "examples", "default", "deprecated", "readOnly"}
)
_SCHEMA_MAPS = ("properties", "definitions", "$defs", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONES = ("additionalProperties", "not", "if", "then", "else", "contains", "propertyNames", "unevaluatedProperties")
_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_ANY_TYPES = ["string", "number", "boolean", "object", "array", "null"]
_QUANTIFIER = re.compile(r"\{\s*(\d+)\s*(,\s*(\d*)\s*)?\}")


class SchemaRefused(InvalidArgument):
    """The schema asks for more than a grammar can honour at a bounded cost."""


@dataclass
class _Walk:
    root: object
    param: str
    nodes: int = 0


# A deeper keyword path is written with its middle left out.
MAX_PATH_PARTS = 12


def _path(param: str, path: tuple) -> str:
    parts = [f"[{part}]" if isinstance(part, int) else f".{str(part)[:64]}" for part in path]
    if len(parts) > MAX_PATH_PARTS:
        parts = [*parts[:4], ".\u2026", *parts[-6:]]
    return param + "".join(parts)


def _refuse(walk: _Walk, path: tuple, message: str) -> SchemaRefused:
    where = _path(walk.param, path)
    return SchemaRefused(f"'{where}': {message}", param=where)


def _count(walk: _Walk, path: tuple, value) -> int | None:
    """A repetition bound as an int, None when it is an "unbounded" sentinel."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(walk, path, "must be a non-negative integer")
    if value < 0 or value != int(value):
        raise _refuse(walk, path, "must be a non-negative integer")
    return None if value >= UNBOUNDED else int(value)


def pattern_expansion(pattern: str) -> tuple[int, int]:
    """(largest quantifier count, estimated characters spelled out) of a regex,
    nested quantifiers multiplied: ``(a{10}){10}`` spells 100."""
    largest = 0
    stack = [[0]]  # per open group: its size so far
    last = 0  # size of the last atom (what a quantifier applies to)
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            stack[-1][0] += 1
            last = 1
            i += 2
            continue
        if c == "[":
            end = pattern.find("]", i + 2)
            i = len(pattern) if end < 0 else end + 1
            stack[-1][0] += 1
            last = 1
            continue
        if c == "(":
            stack.append([0])
        elif c == ")" and len(stack) > 1:
            last = max(stack.pop()[0], 1)
            stack[-1][0] += last
        elif c == "{" and (match := _QUANTIFIER.match(pattern, i)):
            low = int(match.group(1))
            high = int(match.group(3)) if match.group(3) else low
            times = max(low, high)
            largest = max(largest, low, high if match.group(2) and match.group(3) else low)
            stack[-1][0] += last * (times - 1)
            last *= times
            i = match.end()
            continue
        elif c not in "*+?|^$":
            stack[-1][0] += 1
            last = 1
        i += 1
    return largest, sum(size for (size,) in stack)


def _check_pattern(walk: _Walk, path: tuple, pattern) -> None:
    if not isinstance(pattern, str):
        raise _refuse(walk, path, "must be a string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise _refuse(walk, path, f"is {len(pattern)} characters long; at most {MAX_PATTERN_CHARS} are supported")
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise _refuse(walk, path, f"is not a valid regular expression ({exc})") from None
    largest, spelled = pattern_expansion(pattern)
    if largest > MAX_PATTERN_QUANTIFIER:
        raise _refuse(walk, path, f"repeats {largest} times; at most {MAX_PATTERN_QUANTIFIER} are supported")
    if spelled > MAX_PATTERN_EXPANSION:
        raise _refuse(walk, path, f"spells out {spelled} characters; at most {MAX_PATTERN_EXPANSION} are supported")


def _json_size(walk: _Walk, path: tuple, value) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        raise _refuse(walk, path, "is not plain JSON") from None


def _resolve(walk: _Walk, path: tuple, ref) -> tuple[object, tuple]:
    """The node a local "$ref" points at, and its path from the root."""
    if not isinstance(ref, str) or len(ref) > MAX_REF_CHARS:
        raise _refuse(walk, path, "must be a short string")
    if ref == "#":
        return walk.root, ()
    if not ref.startswith("#/"):
        # A feature, not a cost: callers may fall back to a looser grammar.
        where = _path(walk.param, path)
        raise InvalidArgument(
            f"'{where}': '{ref[:80]}' is not a local reference (\"#/...\"); remote schemas are not fetched", param=where
        )
    target, where = walk.root, ()
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and key in target:
            target, where = target[key], (*where, key)
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target, where = target[int(key)], (*where, int(key))
        else:
            raise _refuse(walk, path, f"'{ref[:80]}' points at nothing in the schema")
    if not isinstance(target, dict | bool):
        raise _refuse(walk, path, f"'{ref[:80]}' points at something that is not a schema")
    return target, where


def _check_node(walk: _Walk, node: dict, path: tuple) -> None:
    """Checks and loosens one node in place (see the module's docstring)."""
    for key in [k for k in node if k in _IGNORED_KEYS]:
        del node[key]
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if not all(isinstance(k, str) and k in _TYPES for k in kinds) or (isinstance(kind, list) and not kind):
        raise _refuse(walk, (*path, "type"), f"must be one of {sorted(_TYPES)} or a list of them")
    for key in _REPETITION_BOUNDS:
        if key in node:
            count = _count(walk, (*path, key), node[key])
            if count is None or (key.startswith("max") and count > MAX_REPETITIONS):
                del node[key]  # no bound, or one llama.cpp would drop: accept more, never less
            elif key.startswith("min") and count > MAX_REPETITIONS:
                raise _refuse(walk, (*path, key), f"is {count}; at most {MAX_REPETITIONS} is supported")
            else:
                node[key] = count
    for low, high in (("minLength", "maxLength"), ("minItems", "maxItems")):
        if low in node and high in node and node[low] > node[high]:
            raise _refuse(walk, (*path, low), f"is more than '{high}'")
    for key in _NUMBER_BOUNDS:
        value = node.get(key)
        if key in node and not isinstance(value, bool | int | float):
            raise _refuse(walk, (*path, key), "must be a number")
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 2**53 - 1:
            del node[key]  # "any safe integer" says nothing, and is costly to spell out
    if "pattern" in node:
        _check_pattern(walk, (*path, "pattern"), node["pattern"])
    if "enum" in node:
        values = node["enum"]
        if not isinstance(values, list) or not values:
            raise _refuse(walk, (*path, "enum"), "must be a non-empty list")
        if len(values) > MAX_ENUM_VALUES:
            raise _refuse(walk, (*path, "enum"), f"has {len(values)} values; at most {MAX_ENUM_VALUES} are supported")
        if _json_size(walk, (*path, "enum"), values) > MAX_ENUM_BYTES:
            raise _refuse(walk, (*path, "enum"), f"is larger than {MAX_ENUM_BYTES} bytes")
    if "const" in node and _json_size(walk, (*path, "const"), node["const"]) > MAX_CONST_BYTES:
        raise _refuse(walk, (*path, "const"), f"is larger than {MAX_CONST_BYTES} bytes")
    if "required" in node and not (
        isinstance(node["required"], list) and all(isinstance(name, str) for name in node["required"])
    ):
        raise _refuse(walk, (*path, "required"), "must be a list of property names")
    for key in _SCHEMA_MAPS:
        if key in node and not isinstance(node[key], dict):
            raise _refuse(walk, (*path, key), "must be an object of schemas")
    for key in _SCHEMA_LISTS:
        if key in node and not isinstance(node[key], list):
            raise _refuse(walk, (*path, key), "must be a list of schemas")
    if "items" in node and not isinstance(node["items"], dict | bool | list):
        raise _refuse(walk, (*path, "items"), "must be a schema or a list of schemas")


def _children(node: dict, path: tuple):
    """(subschema, its path) of each schema directly inside a node."""
    for key in _SCHEMA_MAPS:
        for name, sub in (node.get(key) or {}).items():
            yield sub, (*path, key, name)
    for key in _SCHEMA_LISTS:
        for index, sub in enumerate(node.get(key) or ()):
            yield sub, (*path, key, index)
    items = node.get("items")
    if isinstance(items, list):
        for index, sub in enumerate(items):
            yield sub, (*path, "items", index)
    elif items is not None:
        yield items, (*path, "items")
    for key in _SCHEMA_ONES:
        if key in node:
            yield node[key], (*path, key)


def _loosen_empty(node: dict) -> None:
    """A nested schema with no constraint allows any JSON value (the converter
    would read an empty one as "an object")."""
    if not node:
        node["type"] = list(_ANY_TYPES)


def guard_schema(schema: dict, param: str) -> dict:
    """A checked, loosened copy of ``schema``; SchemaRefused (a 400) naming
    ``param`` plus the keyword's path when it cannot be honoured cheaply."""
    try:
        root = copy.deepcopy(schema)
    except RecursionError:
        raise SchemaRefused(f"'{param}' is nested too deeply", param=param) from None
    walk = _Walk(root, param)
    seen: set[int] = set()
    # (node, path, depth, nested): nested nodes are values' schemas, not the document's root.
    pending: list[tuple[object, tuple, int, bool]] = [(root, (), 0, False)]
    while pending:
        node, path, depth, nested = pending.pop()
        if isinstance(node, bool):
            continue
        if not isinstance(node, dict):
            raise _refuse(walk, path, "must be a schema (a JSON object)")
        if id(node) in seen:
            continue  # reached again: a shared definition, or recursion
        seen.add(id(node))
        walk.nodes += 1
        if walk.nodes > MAX_SCHEMA_NODES:
            raise _refuse(walk, (), f"has more than {MAX_SCHEMA_NODES} schemas in it")
        if depth > MAX_SCHEMA_DEPTH:
            raise _refuse(walk, path, f"is nested more than {MAX_SCHEMA_DEPTH} schemas deep")
        _check_node(walk, node, path)
        if "$ref" in node:
            target, where = _resolve(walk, (*path, "$ref"), node["$ref"])
            pending.append((target, where, depth + 1, True))
        for child, child_path in _children(node, path):
            pending.append((child, child_path, depth + 1, True))
        if nested:
            _loosen_empty(node)
    return root
