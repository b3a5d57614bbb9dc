"""Fitting a conversation with tools to a model's own template: what the
template reads (tools, calls, the tool role), and Hermes-style text for what
it does not."""

import functools
import json
import re

# Templates whose tool support is remembered.
TOOL_SUPPORT_CACHE_SIZE = 16

# A template that uses a name reads it from the context (or sets it itself).
_USES_TOOLS = re.compile(r"\btools\b")
_USES_TOOL_CALLS = re.compile(r"\btool_calls\b")
_USES_TOOL_ROLE = re.compile(r"""["']tool["']""")


@functools.lru_cache(maxsize=TOOL_SUPPORT_CACHE_SIZE)
def _tool_support(source: str) -> tuple[bool, bool, bool]:
    """Whether a template reads the tools, calls in messages, and the tool role."""
    return (
        bool(_USES_TOOLS.search(source)),
        bool(_USES_TOOL_CALLS.search(source)),
        bool(_USES_TOOL_ROLE.search(source)),
    )


def template_reads_tools(source: str) -> bool:
    """Whether a template renders the tools itself (else they are described in the system message)."""
    return _tool_support(source)[0]


def hermes_tools_prompt(tools: list[dict]) -> str:
    """Tools described the Hermes way, for templates that do not render them."""
    lines = "".join(json.dumps(tool, ensure_ascii=False) + "\n" for tool in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{lines}</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def _parsed_arguments(call):
    """A call with its JSON-text arguments as an object: model templates
    (Llama 3.1's, Mistral's, ...) write them with ``| tojson``."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    arguments = call["function"].get("arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return call
        if isinstance(parsed, dict):
            return {**call, "function": {**call["function"], "arguments": parsed}}
    return call


def _hermes_call_text(call) -> str:
    function = call.get("function", call) if isinstance(call, dict) else {}
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    name = function.get("name", "") if isinstance(function, dict) else ""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


def adapt_for_template(source: str, messages: list[dict], tools: list[dict] | None) -> tuple[list[dict], list[dict] | None]:
    """Messages and tools fitted to a model's own template: call arguments as
    objects; where the template never reads the tools, they are described in
    the system message; where it knows no tool calls or tool role, calls and
    results become Hermes-style text in assistant and user turns."""
    adapted = []
    reads_tools, knows_calls, knows_tool_role = _tool_support(source)
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            if knows_calls:
                message = {**message, "tool_calls": [_parsed_arguments(call) for call in calls]}
            else:
                content = message.get("content")
                text = content if isinstance(content, str) else ""
                blocks = "\n".join(_hermes_call_text(call) for call in calls)
                message = {k: v for k, v in message.items() if k != "tool_calls"}
                message["content"] = f"{text}\n{blocks}" if text.strip() else blocks
        elif message.get("role") == "tool" and not knows_tool_role:
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
            message = {"role": "user", "content": f"<tool_response>\n{text}\n</tool_response>"}
        adapted.append(message)
    if tools and not reads_tools:
        prompt = hermes_tools_prompt(tools)
        if adapted and adapted[0].get("role") == "system" and isinstance(adapted[0].get("content"), str):
            adapted[0] = {**adapted[0], "content": adapted[0]["content"] + "\n\n" + prompt}
        else:
            adapted.insert(0, {"role": "system", "content": prompt})
    return adapted, tools
