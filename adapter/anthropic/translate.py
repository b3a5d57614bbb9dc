"""Anthropic Messages requests -> engine GenerateRequest, and engine answers
-> Anthropic's content blocks, stop reasons and usage."""

import hashlib
import json
import logging

from hearth.adapter.anthropic.protocol import ContentBlock, CountTokensRequest, Message, MessagesRequest, Usage
from hearth.adapter.common.errors import invalid_request
from hearth.adapter.common.text import arguments_json
from hearth.engine.v1 import engine_pb2 as pb

log = logging.getLogger(__name__)

UINT32_MAX = 2**32 - 1
INT32_MAX = 2**31 - 1
_TOOL_CHOICES = {"auto": pb.TOOL_CHOICE_AUTO, "any": pb.TOOL_CHOICE_REQUIRED, "none": pb.TOOL_CHOICE_NONE}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def stop_reason(finish_reason: str, stop_sequence: str) -> str:
    """Anthropic's stop_reason: a stop string that ended the answer is "stop_sequence"."""
    if stop_sequence and finish_reason == "stop":
        return "stop_sequence"
    return STOP_REASONS.get(finish_reason, "end_turn")
# Blocks from an earlier turn that carry nothing the model reads again.
_SKIPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_EFFORTS = frozenset({"low", "medium", "high"})


def _unsupported_block(block: ContentBlock, param: str) -> Exception:
    return invalid_request(
        f"Content blocks of type '{block.type}' are not supported by this server; send text",
        param=f"{param}.type",
        code="unsupported_value",
    )


def _text_of(content: str | list[ContentBlock], param: str) -> str:
    """The text of a system prompt or a tool result: text blocks joined."""
    if isinstance(content, str):
        return content
    texts = []
    for index, block in enumerate(content):
        if block.type != "text":
            raise _unsupported_block(block, f"{param}[{index}]")
        texts.append(block.text or "")
    return "\n".join(texts)


def _tool_result(block: ContentBlock, param: str) -> pb.ChatMessage:
    if not block.tool_use_id:
        raise invalid_request("A tool_result block needs tool_use_id", param=f"{param}.tool_use_id")
    text = _text_of(block.content if block.content is not None else "", f"{param}.content")
    if block.is_error:
        text = f"Error: {text}"
    return pb.ChatMessage(role="tool", content=text, tool_call_id=block.tool_use_id)


def _user_messages(message: Message, param: str) -> list[pb.ChatMessage]:
    """A user turn: its tool results (one tool message each), then its text."""
    if isinstance(message.content, str):
        return [pb.ChatMessage(role="user", content=message.content)]
    results, texts = [], []
    for index, block in enumerate(message.content):
        where = f"{param}.content[{index}]"
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "tool_result":
            results.append(_tool_result(block, where))
        elif block.type not in _SKIPPED_BLOCKS:
            raise _unsupported_block(block, where)
    if texts or not results:
        results.append(pb.ChatMessage(role="user", content="\n".join(texts)))
    return results


def _assistant_message(message: Message, param: str) -> pb.ChatMessage:
    out = pb.ChatMessage(role="assistant")
    if isinstance(message.content, str):
        out.content = message.content
        return out
    texts = []
    for index, block in enumerate(message.content):
        where = f"{param}.content[{index}]"
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "thinking":
            out.reasoning += block.thinking or ""
        elif block.type == "tool_use":
            if not block.id or not block.name:
                raise invalid_request("A tool_use block needs id and name", param=where)
            try:
                arguments = arguments_json(block.input or {})
            except ValueError:
                raise invalid_request("A tool_use block's input must be an object", param=f"{where}.input") from None
            out.tool_calls.add(id=block.id, name=block.name, arguments=arguments)
        elif block.type not in _SKIPPED_BLOCKS:
            raise _unsupported_block(block, where)
    out.content = "".join(texts)
    return out


def messages_of(request: MessagesRequest | CountTokensRequest) -> list[pb.ChatMessage]:
    """The conversation as the engine takes it. The system prompt and any
    system messages before the first turn (Claude Code sends one) make one
    leading system message; later system messages stay where they are."""
    leading: list[str] = []
    if request.system is not None:
        leading.append(_text_of(request.system, "system"))
    out: list[pb.ChatMessage] = []
    for index, message in enumerate(request.messages):
        param = f"messages[{index}]"
        if message.role == "system":
            text = _text_of(message.content, f"{param}.content")
            if out:
                out.append(pb.ChatMessage(role="system", content=text))
            else:
                leading.append(text)
        elif message.role == "user":
            out.extend(_user_messages(message, param))
        else:
            out.append(_assistant_message(message, param))
    system = "\n\n".join(text for text in leading if text)
    return ([pb.ChatMessage(role="system", content=system)] if system else []) + out


def add_tools(request: MessagesRequest | CountTokensRequest, tools) -> list[str]:
    """Adds the client tools to ``tools`` (a GenerateRequest's or a
    TokenizeRequest's); returns the names of server tools left out (a local
    server cannot run Anthropic's web search or code execution)."""
    left_out = []
    for tool in request.tools or ():
        if tool.type not in (None, "custom") and tool.input_schema is None:
            left_out.append(tool.name)
            continue
        tools.add(
            name=tool.name,
            description=tool.description or "",
            parameters_json=json.dumps(tool.input_schema) if tool.input_schema else "",
        )
    return left_out


def _tools(request: MessagesRequest, generate: pb.GenerateRequest) -> list[str]:
    """Adds the client tools and the tool choice; returns the server tools left out."""
    left_out = add_tools(request, generate.tools)
    choice = request.tool_choice
    if choice is not None and generate.tools:
        if choice.type == "tool":
            if not choice.name:
                raise invalid_request("tool_choice of type 'tool' needs a name", param="tool_choice.name")
            generate.tool_choice = pb.TOOL_CHOICE_FUNCTION
            generate.tool_choice_function = choice.name
        else:
            generate.tool_choice = _TOOL_CHOICES[choice.type]
        if choice.disable_parallel_tool_use is not None:
            generate.parallel_tool_calls = not choice.disable_parallel_tool_use
    return left_out


def messages_to_generate(
    request: MessagesRequest, request_id: str, max_output_tokens: int
) -> tuple[pb.GenerateRequest, list[str]]:
    """The engine request, and the server tools left out of it."""
    generate = pb.GenerateRequest(model=request.model, request_id=request_id)
    generate.messages.extend(messages_of(request))
    left_out = _tools(request, generate)
    # max_tokens is a cap, never an error for being large.
    generate.max_tokens = max(1, min(request.max_tokens, max_output_tokens or UINT32_MAX, UINT32_MAX))
    if request.temperature is not None:
        generate.temperature = request.temperature
    if request.top_p is not None:
        generate.top_p = request.top_p
    if request.top_k is not None:
        generate.top_k = max(-INT32_MAX, min(request.top_k, INT32_MAX))
    generate.stop.extend(s for s in request.stop_sequences or () if s)
    _thinking(request, generate.reasoning)
    return generate, left_out


def _thinking(request: MessagesRequest, reasoning: pb.Reasoning) -> None:
    """thinking: enabled (with budget_tokens), adaptive (the model decides), or
    disabled; output_config.effort is passed to templates that take one."""
    thinking = request.thinking or {}
    kind = thinking.get("type")
    if kind == "disabled":
        reasoning.mode = pb.REASONING_MODE_OFF
    elif kind in ("enabled", "adaptive"):
        reasoning.mode = pb.REASONING_MODE_ON
    elif kind is not None:
        raise invalid_request("thinking.type must be enabled, adaptive or disabled", param="thinking.type")
    budget = thinking.get("budget_tokens")
    if kind == "enabled" and budget is not None:
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise invalid_request("thinking.budget_tokens must be a positive integer", param="thinking.budget_tokens")
        reasoning.budget_tokens = min(budget, UINT32_MAX)
    effort = (request.output_config or {}).get("effort")
    if effort in _EFFORTS:
        reasoning.effort = effort


def thinking_block(thinking: str) -> dict:
    return {"type": "thinking", "thinking": thinking, "signature": thinking_signature(thinking)}


def thinking_signature(thinking: str) -> str:
    """What the SDKs keep and send back with the block: a digest of its text
    (there is nothing to verify on a local server)."""
    return "hearth-" + hashlib.sha256(thinking.encode("utf-8", "replace")).hexdigest()[:32]


def tool_use_block(call: pb.ToolCall) -> dict:
    try:
        arguments = json.loads(call.arguments) if call.arguments else {}
    except ValueError:
        arguments = {}
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def usage_of(message: pb.GenerateResponse) -> Usage:
    cached = message.usage.cached_prompt_tokens
    return Usage(
        input_tokens=max(0, message.usage.prompt_tokens - cached),
        output_tokens=message.usage.completion_tokens,
        cache_read_input_tokens=cached,
    )
