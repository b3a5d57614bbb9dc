"""The formats models write tool calls in, read out of their text.

Models write calls in their own formats (Hermes/Qwen ``<tool_call>``, Llama 3
bare JSON, Mistral ``[TOOL_CALLS]``, fenced ``tool_code`` blocks, ...). The
extractor knows them all, whatever the template: a model's template does not
always say which one it was trained on. Anything that is not a well-formed
call to one of the request's tools stays text."""

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

# Bodies longer than this are not parsed as Python calls (ast on hostile text is costly).
MAX_PYTHONIC_CHARS = 100_000

# Models write raw control characters inside strings (grammars allow them):
# read them rather than refuse the call.
_DECODER = json.JSONDecoder(strict=False)

# (name, arguments object) as read from the text.
ParsedCall = tuple[str, dict]


# Reading calls out of text.


def _arguments(value) -> dict | None:
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = _DECODER.decode(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def _call_from_object(obj) -> ParsedCall | None:
    """{"name", "arguments"|"parameters"}, or OpenAI's {"type": "function", "function": {...}}."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None
    for key in ("arguments", "parameters", "args"):
        if key in obj:
            arguments = _arguments(obj[key])
            return None if arguments is None else (name, arguments)
    return name, {}


_JSON_SEPARATORS = " \t\r\n;,"


def _json_calls(body: str) -> list[ParsedCall] | None:
    """One or more call objects: an object, an array of them, or several in a
    row (separated by whitespace, ';' or ',')."""
    decoder = _DECODER
    calls: list[ParsedCall] = []
    i = 0
    while True:
        while i < len(body) and body[i] in _JSON_SEPARATORS:
            i += 1
        if i == len(body):
            break
        try:
            value, i = decoder.raw_decode(body, i)
        except (ValueError, RecursionError):
            return None
        for item in value if isinstance(value, list) else [value]:
            call = _call_from_object(item)
            if call is None:
                return None
            calls.append(call)
    return calls or None


def complete_calls_in_array(body: str) -> list[ParsedCall]:
    """The calls an array of call objects holds so far, however it was cut:
    every element that is complete, up to the first that is not."""
    calls: list[ParsedCall] = []
    i = body.find("[")
    if i < 0 or body[:i].strip():
        return calls
    i += 1
    while True:
        while i < len(body) and body[i] in _JSON_SEPARATORS:
            i += 1
        try:
            value, i = _DECODER.raw_decode(body, i)
        except (ValueError, RecursionError):
            return calls
        call = _call_from_object(value)
        if call is None:
            return calls
        calls.append(call)


def _json_object(text: str) -> dict | None:
    """``text`` as exactly one JSON object (whitespace around allowed)."""
    try:
        value, end = _DECODER.raw_decode(text.strip())
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and end == len(text.strip()) else None


_PY_CONSTANTS = {"true": True, "false": False, "null": None, "none": None}


def _python_value(node: ast.AST):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id.lower() in _PY_CONSTANTS:
        return _PY_CONSTANTS[node.id.lower()]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _python_value(node.operand)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List | ast.Tuple):
        return [_python_value(item) for item in node.elts]
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {str(_python_value(key)): _python_value(value) for key, value in zip(node.keys, node.values, strict=True)}
    raise ValueError("not a literal")


def _dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _pythonic_calls(body: str) -> list[ParsedCall] | None:
    """Python call syntax: ``f(a=1)`` or ``[f(a=1), g(b="x")]`` (Llama 3.2,
    Gemma's tool_code), keyword arguments with literal values only."""
    text = body.strip()
    if not text or len(text) > MAX_PYTHONIC_CHARS:
        return None
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    nodes = tree.elts if isinstance(tree, ast.List | ast.Tuple) else [tree]
    calls: list[ParsedCall] = []
    try:
        for node in nodes:
            if not isinstance(node, ast.Call) or node.args:
                return None
            name = _dotted_name(node.func)
            if name is None or any(keyword.arg is None for keyword in node.keywords):
                return None
            calls.append((name, {keyword.arg: _python_value(keyword.value) for keyword in node.keywords}))
    except (ValueError, RecursionError):
        return None
    return calls or None


def _json_or_pythonic_calls(body: str) -> list[ParsedCall] | None:
    return _json_calls(body) or _pythonic_calls(body)


_NAME_THEN_ARGS = re.compile(r"\s*([\w.\-]+)\s*(?:\[CALL_ID\]\s*\w+\s*)?(?:\[ARGS\])?(.*)", re.DOTALL)


def _name_then_json(part: str) -> ParsedCall | None:
    """``name{...}``, ``name[ARGS]{...}``, ``name\\n{...}``."""
    match = _NAME_THEN_ARGS.fullmatch(part)
    if match is None:
        return None
    arguments = _json_object(match.group(2)) if match.group(2).strip() else {}
    return None if arguments is None else (match.group(1), arguments)


def _mistral_calls(body: str) -> list[ParsedCall] | None:
    """After [TOOL_CALLS]: a JSON array of calls (v3), or ``name[ARGS]{...}``
    (v11), each further call after another [TOOL_CALLS]."""
    calls: list[ParsedCall] = []
    for part in body.split("[TOOL_CALLS]"):
        if not part.strip():
            continue
        parsed = _json_calls(part) if part.lstrip()[:1] in ("[", "{") else None
        if parsed is None:
            single = _name_then_json(part)
            parsed = None if single is None else [single]
        if parsed is None:
            return None
        calls.extend(parsed)
    return calls or None


def _function_tag_call(body: str) -> list[ParsedCall] | None:
    """``<function=name>{...}</function>`` (Llama 3.1's custom format, functionary)."""
    name, sep, rest = body.partition(">")
    arguments = _json_object(rest) if sep else None
    return None if arguments is None or not re.fullmatch(r"[\w.\-]+", name) else [(name, arguments)]


def _functionary_calls(body: str) -> list[ParsedCall] | None:
    """functionary v3: ``>>>name\\n{...}``, several in a row."""
    calls = [_name_then_json(part) for part in body.split(">>>") if part.strip()]
    return None if not calls or None in calls else calls  # type: ignore[return-value]


# Which texts could still become a call: a format gives up (and its text is
# shown) as soon as what follows its start marker cannot be one.

_IDENTIFIER = re.compile(r"[\w.\-]*")
_CALL_KEYS = ("name", "function", "type", "id", "arguments", "parameters")


def _could_be_name(text: str, names: frozenset[str], *, then: str = "") -> bool:
    """Whether ``text`` (left-stripped) starts as a tool name: a prefix of one
    while it is all name, else a full name followed by one of ``then`` (or anything when empty)."""
    text = text.lstrip()
    ident = _IDENTIFIER.match(text).group()
    if len(ident) == len(text):
        return any(name.startswith(ident) for name in names)
    return ident in names and (not then or text[len(ident)] in then)


def _could_be_call_object(text: str) -> bool:
    """Whether ``text`` could start a call object: '{' then a key such as "name"."""
    rest = text.lstrip()[1:].lstrip()
    if not rest:
        return True
    if rest[0] != '"':
        return False
    key = rest[1:]
    close = key.find('"')
    if close < 0:
        return any(k.startswith(key) for k in _CALL_KEYS)
    return key[:close] in _CALL_KEYS


def _could_be_bare_call(text: str, names: frozenset[str]) -> bool:
    """Output that opens with a call and nothing else: a JSON object or array of
    them (Llama 3), or Python call syntax (Llama 3.2)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return _could_be_call_object(stripped)
    if stripped.startswith("["):
        rest = stripped[1:].lstrip()
        if not rest:
            return True
        if rest.startswith("{"):
            return _could_be_call_object(rest)
        return _could_be_name(rest, names, then="(")
    return _could_be_name(stripped, names, then="(")


def _could_be_named_call(text: str, names: frozenset[str]) -> bool:
    """After [TOOL_CALLS] or >>>: a JSON array or object, or a tool's name."""
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        return True
    return _could_be_name(stripped, names)


@dataclass(frozen=True)
class _Format:
    name: str
    # "" only with at_start: the output itself opens the call.
    start: str
    # None: the call runs to the end of the output. A call whose end marker
    # never comes is read at the end of the output all the same.
    end: str | None
    parse: Callable[[str], list[ParsedCall] | None]
    could_be: Callable[[str, frozenset[str]], bool] = lambda body, names: True
    at_start: bool = False


FORMATS: tuple[_Format, ...] = (
    _Format("hermes", "<tool_call>", "</tool_call>", _json_or_pythonic_calls),
    _Format("phi4", "<|tool_call|>", "<|/tool_call|>", _json_calls),
    _Format("function-tag", "<function=", "</function>", _function_tag_call, lambda body, names: _could_be_name(body, names, then=">")),
    _Format("python-tag", "<|python_tag|>", None, _json_or_pythonic_calls),
    _Format("mistral", "[TOOL_CALLS]", None, _mistral_calls, _could_be_named_call),
    _Format("tool-code-fence", "```tool_code", "```", _json_or_pythonic_calls),
    _Format("tool-call-fence", "```tool_call", "```", _json_or_pythonic_calls),
    _Format("json-fence", "```json", "```", _json_calls),
    _Format("functionary", ">>>", None, _functionary_calls, _could_be_named_call),
    _Format("bare", "", None, _json_or_pythonic_calls, _could_be_bare_call, at_start=True),
)
_MARKED = tuple(f for f in FORMATS if f.start)
_AT_START = tuple(f for f in FORMATS if f.at_start)
