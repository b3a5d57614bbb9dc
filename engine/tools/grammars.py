"""Grammars for tool calls: the forced call (tool_choice "required" or a
function), and the lazy one a call marker triggers."""

import json
import logging

from hearth.engine.domain import ToolSpec
from hearth.engine.errors import InvalidArgument
from hearth.engine.grammar.converter import gbnf_literal
from hearth.engine.grammar.json_schema import format_rules, merge_rules, schema_rules
from hearth.engine.grammar.schema_guard import SchemaRefused
from hearth.engine.templates.tool_adaptation import template_reads_tools

log = logging.getLogger(__name__)

_WS_RULE = "[ \\t\\n]? [ \\t\\n]?"
# Call markers a lazy grammar is triggered at: their end marker, and whether
# they hold a JSON array of calls (Phi-4) rather than one call (Hermes).
_LAZY_MARKERS = {"<tool_call>": ("</tool_call>", False), "<|tool_call|>": ("<|/tool_call|>", True)}
_FAMILY_MARKERS = {"chatml": "<tool_call>", "gemma": "<tool_call>", "phi3": "<|tool_call|>"}


def _argument_rules(tools: tuple[ToolSpec, ...]) -> tuple[dict[str, str], list[str]]:
    """Rules for each tool's arguments object, and the name of each one's top rule."""
    rules: dict[str, str] = {}
    tops = []
    for index, tool in enumerate(tools):
        args_name = f"tool-{index}-args"
        try:
            top, args_rules = schema_rules(tool.parameters or {}, args_name, param=f"tools[{index}].function.parameters")
            if not merge_rules(rules, args_rules):
                raise InvalidArgument("its rules clash with another tool's", param="tools")
        except SchemaRefused:
            raise  # too costly to honour: the client hears why
        except InvalidArgument as exc:
            # A feature the converter lacks: the call is still forced; its arguments are then any object.
            log.warning("tool %r: arguments grammar falls back to any object (%s)", tool.name, exc.message)
            top, args_rules = schema_rules({}, args_name)
            merge_rules(rules, args_rules)
        tops.append(top)
    return rules, tops


def _call_rules(tools: tuple[ToolSpec, ...]) -> dict[str, str]:
    """Rules with ``call`` at the top: {"name": <a tool's name>, "arguments": <its arguments>}."""
    rules, tops = _argument_rules(tools)
    alternatives = []
    for index, (tool, top) in enumerate(zip(tools, tops, strict=True)):
        call_name = f"tool-{index}-call"
        rules[call_name] = (
            f'"{{" space {gbnf_literal(json.dumps("name"))} space ":" space {gbnf_literal(json.dumps(tool.name))} space '
            f'"," space {gbnf_literal(json.dumps("arguments"))} space ":" space {top} "}}" space'
        )
        alternatives.append(call_name)
    rules["call"] = " | ".join(alternatives)
    return rules


def harmony_call_grammar(tools: tuple[ToolSpec, ...]) -> str:
    """One call as gpt-oss writes it: a commentary message addressed to the
    tool (its header's ``<|start|>assistant`` optional, as when the prompt
    wrote it), the body the JSON arguments; then only the end of the output
    (<|call|>, an end-of-generation token) may follow."""
    rules, tops = _argument_rules(tools)
    alternatives = []
    for index, (tool, top) in enumerate(zip(tools, tops, strict=True)):
        rules[f"tool-{index}-call"] = f"{gbnf_literal('functions.' + tool.name + ' <|constrain|>json<|message|>')} {top}"
        alternatives.append(f"tool-{index}-call")
    opening = f"{gbnf_literal('<|start|>assistant')}? {gbnf_literal('<|channel|>commentary to=')}"
    rules["root"] = f"{opening} ({' | '.join(alternatives)})"
    return format_rules(rules)


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


def call_marker(template_family: str | None, template_source: str | None) -> str | None:
    """The marker this template's model opens a call with, where we know it."""
    if template_family is not None:
        return _FAMILY_MARKERS.get(template_family)
    if not template_source:
        return None
    if not template_reads_tools(template_source):
        return "<tool_call>"  # the tools are described to it Hermes-style (see chat_templates)
    return next((marker for marker in _LAZY_MARKERS if marker in template_source), None)
