"""Tool calling: what the prompt and the sampler get for a request's tools and
tool_choice, and the calls read back out of the model's text.

Models write calls in their own formats (Hermes/Qwen ``<tool_call>``, Llama 3
bare JSON, Mistral ``[TOOL_CALLS]``, fenced ``tool_code`` blocks, ...). The
extractor knows them all, whatever the template: a model's template does not
always say which one it was trained on. Anything that is not a well-formed
call to one of the request's tools stays text."""

import ast
import json
import logging
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hearth.engine.chat_templates import template_reads_tools
from hearth.engine.errors import InvalidArgument
from hearth.engine.grammars import format_rules, gbnf_literal, merge_rules, schema_rules
from hearth.engine.requests import GenerateParams, ToolCall, ToolSpec

log = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_letters + string.digits
# Bodies longer than this are not parsed as Python calls (ast on hostile text is costly).
MAX_PYTHONIC_CHARS = 100_000

# Models write raw control characters inside strings (grammars allow them):
# read them rather than refuse the call.
_DECODER = json.JSONDecoder(strict=False)

# (name, arguments object) as read from the text.
ParsedCall = tuple[str, dict]


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def openai_tools(tools: tuple[ToolSpec, ...] | list[ToolSpec]) -> list[dict]:
    """Tools as chat templates expect them (OpenAI's shape)."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]


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


class ToolCallExtractor:
    """One sequence's output text in; text to show and completed tool calls out."""

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        return text, []

    def finish(self) -> tuple[str, list[ToolCall]]:
        """End of the sequence: what was held back, and the calls it made."""
        return "", []


class _Calls:
    """Turns parsed calls into ToolCalls: names checked, at most one call unless parallel."""

    def __init__(self, names: frozenset[str], parallel: bool):
        self.names = names
        self.parallel = parallel
        self.made = 0

    def accept(self, parsed: list[ParsedCall] | None) -> list[ToolCall] | None:
        """The calls, or None when the text is not calls to these tools (then it stays text)."""
        if not parsed or any(name not in self.names for name, _ in parsed):
            return None
        calls = []
        for name, arguments in parsed:
            if self.made and not self.parallel:
                break  # one call asked for: later ones are dropped
            self.made += 1
            calls.append(ToolCall(id=new_call_id(), name=name, arguments=json.dumps(arguments, ensure_ascii=False)))
        return calls


class AutoExtractor(ToolCallExtractor):
    """Text passes through as it comes, except what may be a call: a possible
    start marker at the end of a piece is held back, a started call is held
    until its end marker (or the end of the output) and then either becomes
    calls or is shown as the text it was. Whitespace between or around calls
    is dropped."""

    def __init__(self, names: frozenset[str], parallel: bool):
        self._calls = _Calls(names, parallel)
        self._buffer = ""
        self._active: _Format | None = None
        self._at_start = True
        self._pending_space = ""
        self._after_call = False
        # For the active format: where to look for its end marker next, and
        # whether what follows its start is known to be a call's beginning.
        self._end_scan = 0
        self._confirmed = False
        self._decided_after = max(map(len, names), default=0) + 32

    def _start(self, fmt: _Format) -> None:
        self._active = fmt
        self._end_scan = 0
        self._confirmed = False

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        self._buffer += text
        return self._advance(final=False)

    def finish(self) -> tuple[str, list[ToolCall]]:
        text, calls = self._advance(final=True)
        if not self._calls.made:
            text += self._pending_space
        self._pending_space = ""
        return text, calls

    def _advance(self, *, final: bool) -> tuple[str, list[ToolCall]]:
        shown: list[str] = []
        calls: list[ToolCall] = []

        def show(text: str) -> None:
            if self._after_call:
                text = text.lstrip()
                self._after_call = not text
            # Trailing whitespace waits: it is dropped if a call follows.
            content = text.rstrip()
            if content:
                shown.append(self._pending_space + content)
                self._pending_space = ""
            self._pending_space += text[len(content) :]

        def called(parsed: list[ParsedCall] | None, raw: str) -> None:
            made = self._calls.accept(parsed)
            if made is None:
                show(raw)
            else:
                calls.extend(made)
                self._pending_space = ""
                self._after_call = True

        names = self._calls.names
        while self._buffer:
            if self._active is None:
                if self._at_start:
                    if not self._buffer.strip() and not final:
                        break  # only whitespace yet: the output may still open with a call
                    self._at_start = False
                    opening = next((f for f in _AT_START if f.could_be(self._buffer, names)), None)
                    if opening is not None and not any(self._buffer.lstrip().startswith(f.start) for f in _MARKED):
                        self._start(opening)
                        continue
                found = [(i, f) for f in _MARKED if (i := self._buffer.find(f.start)) >= 0]
                if found:
                    i, fmt = min(found, key=lambda pair: pair[0])
                    show(self._buffer[:i])
                    self._buffer = self._buffer[i:]
                    self._start(fmt)
                    continue
                held = 0 if final else _partial_marker_length(self._buffer)
                show(self._buffer[: len(self._buffer) - held])
                self._buffer = self._buffer[len(self._buffer) - held :]
                break
            fmt = self._active
            start = len(fmt.start)
            if fmt.end:
                # Searched from where the last search left off: long calls stay linear.
                end = self._buffer.find(fmt.end, max(start, self._end_scan))
                if end >= 0:
                    raw_length = end + len(fmt.end)
                    called(fmt.parse(self._buffer[start:end]), self._buffer[:raw_length])
                    self._buffer = self._buffer[raw_length:]
                    self._active = None
                    continue
                self._end_scan = max(start, len(self._buffer) - len(fmt.end) + 1)
            if not self._confirmed:
                body = self._buffer[start:]
                if not fmt.could_be(body, names):
                    # Not a call after all: show the marker, read on after it.
                    show(fmt.start)
                    self._buffer = body
                    self._active = None
                    continue
                # Past a name's length the answer cannot change: stop asking.
                self._confirmed = len(body.lstrip()) > self._decided_after
            if not final:
                break
            called(fmt.parse(self._buffer[start:]), self._buffer)
            self._buffer = ""
            self._active = None
        return "".join(shown), calls


def _partial_marker_length(text: str) -> int:
    """Length of the longest end of ``text`` that begins a start marker."""
    for length in range(min(len(text), max(len(f.start) for f in _MARKED) - 1), 0, -1):
        tail = text[-length:]
        if any(f.start.startswith(tail) for f in _MARKED):
            return length
    return 0


class ForcedExtractor(ToolCallExtractor):
    """The whole output is the call(s) as JSON (a grammar forced it): nothing
    is shown while it comes; at the end it is read as calls, or shown as text
    when it is not (cut short by max_tokens, say)."""

    def __init__(self, names: frozenset[str], parallel: bool):
        self._calls = _Calls(names, parallel)
        self._buffer = ""

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        self._buffer += text
        return "", []

    def finish(self) -> tuple[str, list[ToolCall]]:
        text, self._buffer = self._buffer, ""
        calls = self._calls.accept(_json_calls(text))
        return (text, []) if calls is None else ("", calls)


@dataclass(frozen=True)
class ToolPlan:
    # Tools as the chat template receives them (OpenAI's [{"type": "function",
    # "function": {...}}]); None: the template gets no tools.
    template_tools: list[dict] | None = None
    # GBNF grammar the output must follow, and its lazy triggers (see SamplingParams).
    grammar: str | None = None
    grammar_triggers: tuple[str, ...] = ()
    # Extra stop strings for this format.
    stop: tuple[str, ...] = field(default_factory=tuple)
    # Whether outputs are read for tool calls (a new extractor per sequence).
    extracts: bool = False
    # The names calls may use; whether the whole output is the call(s) (forced);
    # whether more than one call is kept.
    tool_names: frozenset[str] = frozenset()
    forced: bool = False
    parallel: bool = True

    def new_extractor(self) -> ToolCallExtractor:
        if not self.extracts:
            return ToolCallExtractor()
        if self.forced:
            return ForcedExtractor(self.tool_names, self.parallel)
        return AutoExtractor(self.tool_names, self.parallel)


# Grammars.

_WS_RULE = "[ \\t\\n]? [ \\t\\n]?"
# Call markers a lazy grammar is triggered at: their end marker, and whether
# they hold a JSON array of calls (Phi-4) rather than one call (Hermes).
_LAZY_MARKERS = {"<tool_call>": ("</tool_call>", False), "<|tool_call|>": ("<|/tool_call|>", True)}
_FAMILY_MARKERS = {"chatml": "<tool_call>", "gemma": "<tool_call>", "phi3": "<|tool_call|>"}


def _call_rules(tools: tuple[ToolSpec, ...]) -> dict[str, str]:
    """Rules with ``call`` at the top: {"name": <a tool's name>, "arguments": <its arguments>}."""
    rules: dict[str, str] = {}
    alternatives = []
    for index, tool in enumerate(tools):
        args_name = f"tool-{index}-args"
        try:
            top, args_rules = schema_rules(tool.parameters or {}, args_name, param="tools")
            if not merge_rules(rules, args_rules):
                raise InvalidArgument("its rules clash with another tool's", param="tools")
        except InvalidArgument as exc:
            # The call is still forced; its arguments are then any object.
            log.warning("tool %r: arguments grammar falls back to any object (%s)", tool.name, exc.message)
            top, args_rules = schema_rules({}, args_name)
            merge_rules(rules, args_rules)
        call_name = f"tool-{index}-call"
        rules[call_name] = (
            f'"{{" space {gbnf_literal(json.dumps("name"))} space ":" space {gbnf_literal(json.dumps(tool.name))} space '
            f'"," space {gbnf_literal(json.dumps("arguments"))} space ":" space {top} "}}" space'
        )
        alternatives.append(call_name)
    rules["call"] = " | ".join(alternatives)
    return rules


def forced_call_grammar(tools: tuple[ToolSpec, ...], *, parallel: bool) -> str:
    """The output is exactly one call as JSON, or with ``parallel`` a JSON array of one or more."""
    rules = _call_rules(tools)
    rules["root"] = '"[" space call ("," space call)* "]" space' if parallel else "call"
    return format_rules(rules)


def lazy_call_grammar(tools: tuple[ToolSpec, ...], *, start: str, parallel: bool) -> str:
    """From ``start`` on: the call and the marker's end, and with ``parallel``
    more calls (more blocks, or more items where the marker holds a JSON array)."""
    end, holds_array = _LAZY_MARKERS[start]
    rules = _call_rules(tools)
    rules["call-ws"] = _WS_RULE
    if holds_array:
        calls = '"[" space call ("," space call)* "]"' if parallel else '"[" space call "]"'
        rules["root"] = f"{gbnf_literal(start)} call-ws {calls} call-ws {gbnf_literal(end)}"
        return format_rules(rules)
    rules["call-block"] = f"{gbnf_literal(start)} call-ws call call-ws {gbnf_literal(end)}"
    rules["root"] = "call-block (call-ws call-block)*" if parallel else "call-block"
    return format_rules(rules)


def _call_marker(template_family: str | None, template_source: str | None) -> str | None:
    """The marker this template's model opens a call with, where we know it."""
    if template_family is not None:
        return _FAMILY_MARKERS.get(template_family)
    if not template_source:
        return None
    if not template_reads_tools(template_source):
        return "<tool_call>"  # the tools are described to it Hermes-style (see chat_templates)
    return next((marker for marker in _LAZY_MARKERS if marker in template_source), None)


def plan_tools(
    params: GenerateParams, template_family: str | None, template_source: str | None = None
) -> ToolPlan:
    """The plan for ``params``' tools; ``template_family`` is the built-in
    template's name ("gemma", "llama3", "chatml", "mistral", "phi3") or None
    for a model's own template (then the family is guessed from its text,
    ``template_source``, when given)."""
    if not params.tools or params.tool_choice == "none":
        return ToolPlan()
    tools = params.tools
    if params.tool_choice == "function":
        tools = tuple(tool for tool in params.tools if tool.name == params.tool_choice_function)
        if not tools:
            raise InvalidArgument(
                f"tool_choice names '{params.tool_choice_function}', which is not among the tools", param="tool_choice"
            )
    elif params.tool_choice not in ("auto", "required"):
        raise InvalidArgument(f"Unknown tool_choice '{params.tool_choice}'", param="tool_choice")
    plan = ToolPlan(
        template_tools=openai_tools(tools),
        extracts=True,
        tool_names=frozenset(tool.name for tool in tools),
        parallel=params.parallel_tool_calls,
    )
    if params.tool_choice in ("required", "function"):
        grammar = forced_call_grammar(tools, parallel=params.parallel_tool_calls)
        return replace(plan, grammar=grammar, forced=True)
    marker = _call_marker(template_family, template_source)
    if marker is None:
        return plan
    grammar = lazy_call_grammar(tools, start=marker, parallel=params.parallel_tool_calls)
    return replace(plan, grammar=grammar, grammar_triggers=(marker,))
