"""Ollama /api/chat and /api/generate bodies -> engine GenerateRequest, and the
engine's tool calls -> Ollama's. Fields Hearth cannot honour are refused with
a 400 naming them, never silently dropped."""

import json
from typing import Any

from hearth.adapter.common.text import arguments_json
from hearth.adapter.ollama.errors import bad_request
from hearth.adapter.ollama.options import apply_format, apply_keep_alive, apply_options
from hearth.adapter.ollama.protocol import (
    ChatRequest,
    GenerateRequest,
    GenerationFields,
    Message,
    Tool,
)
from hearth.engine.v1 import engine_pb2 as pb

_EFFORTS = frozenset({"low", "medium", "high"})


def _think(think: bool | str | None, reasoning: pb.Reasoning) -> None:
    """Ollama's think: true or false, or an effort level (gpt-oss's)."""
    if think is None:
        return
    if isinstance(think, bool):
        reasoning.mode = pb.REASONING_MODE_ON if think else pb.REASONING_MODE_OFF
        return
    if think not in _EFFORTS:
        raise bad_request(f"think must be true, false, or one of low, medium, high; got '{think[:32]}'")
    reasoning.mode = pb.REASONING_MODE_ON
    reasoning.effort = think


def check_think(body: GenerationFields, model: pb.Model) -> None:
    """Thinking asked of a model that does not reason is refused, as Ollama refuses it."""
    if body.think not in (None, False) and pb.CAPABILITY_REASONING not in model.capabilities:
        raise bad_request(f'"{body.model}" does not support thinking')


def _common(body: GenerationFields, generate: pb.GenerateRequest) -> None:
    _think(body.think, generate.reasoning)
    apply_options(body.options, generate)
    apply_format(body.format, generate)
    apply_keep_alive(body.keep_alive, generate)
    if body.logprobs:
        generate.logprobs = True
        generate.top_logprobs = body.top_logprobs or 0


def _arguments_text(arguments: dict[str, Any] | str, where: str) -> str:
    try:
        return arguments_json(arguments)
    except ValueError:
        raise bad_request(f"{where}.arguments is not a JSON object") from None


def history_messages(messages: list[Message]) -> list[pb.ChatMessage]:
    """Ollama's messages as the engine's. Ollama's tool calls carry no ids, so
    each gets one here, and a "tool" message answers the earliest unanswered
    call of its tool_name (or, without a name, the earliest unanswered call)."""
    result: list[pb.ChatMessage] = []
    unanswered: list[pb.ToolCall] = []
    for index, message in enumerate(messages):
        if message.images:
            raise bad_request(f"messages[{index}].images: images are not supported; Hearth's models read text only")
        converted = pb.ChatMessage(role=message.role, content=message.content or "")
        if message.role == "assistant" and message.thinking:
            converted.reasoning = message.thinking
        if message.role == "assistant" and message.tool_calls:
            for call_index, call in enumerate(message.tool_calls):
                where = f"messages[{index}].tool_calls[{call_index}].function"
                tool_call = pb.ToolCall(
                    id=f"call_{index}_{call_index}",
                    name=call.function.name,
                    arguments=_arguments_text(call.function.arguments, where),
                )
                converted.tool_calls.append(tool_call)
                unanswered.append(tool_call)
        elif message.tool_calls:
            raise bad_request(f"messages[{index}].tool_calls: only assistant messages make tool calls")
        if message.role == "tool":
            answered = next((c for c in unanswered if message.tool_name in (None, "", c.name)), None)
            if answered is not None:
                unanswered.remove(answered)
                converted.tool_call_id = answered.id
            converted.name = message.tool_name or (answered.name if answered else "")
        result.append(converted)
    return result


def tools_to_proto(tools: list[Tool]) -> list[pb.Tool]:
    result = []
    for index, tool in enumerate(tools):
        if tool.type != "function":
            raise bad_request(f"tools[{index}].type '{tool.type}' is not supported; use \"function\"")
        function = tool.function
        result.append(
            pb.Tool(
                name=function.name,
                description=function.description or "",
                parameters_json=json.dumps(function.parameters) if function.parameters else "",
            )
        )
    return result


def chat_to_generate(body: ChatRequest, model_id: str, request_id: str) -> pb.GenerateRequest:
    generate = pb.GenerateRequest(model=model_id, request_id=request_id)
    generate.messages.extend(history_messages(body.messages))
    if body.tools:
        if body.format not in (None, ""):
            raise bad_request("format cannot be combined with tools")
        generate.tools.extend(tools_to_proto(body.tools))
        generate.tool_choice = pb.TOOL_CHOICE_AUTO
    _common(body, generate)
    return generate


def generate_to_generate(body: GenerateRequest, model_id: str, request_id: str) -> pb.GenerateRequest:
    if body.images:
        raise bad_request("images are not supported: Hearth's models read text only")
    if body.suffix:
        raise bad_request("suffix is not supported: Hearth does not do fill-in-the-middle")
    if body.template:
        raise bad_request("template is not supported: the model's chat template (or the config file's) is used")
    if body.context:
        raise bad_request("context is not supported: send the conversation as /api/chat messages")
    generate = pb.GenerateRequest(model=model_id, request_id=request_id)
    if body.raw:
        # As in Ollama, raw means no template, and so no system prompt either.
        generate.prompt = body.prompt
    else:
        if body.system:
            generate.messages.add(role="system", content=body.system)
        generate.messages.add(role="user", content=body.prompt)
    _common(body, generate)
    return generate


def tool_calls_to_ollama(calls: list[pb.ToolCall], first_index: int = 0) -> list[dict]:
    """The engine's calls as Ollama's: arguments as an object, not JSON text;
    ``index`` counts the calls of the whole answer, from ``first_index``."""
    result = []
    for index, call in enumerate(calls, start=first_index):
        try:
            arguments = json.loads(call.arguments) if call.arguments else {}
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            # The engine promises an object; should it ever not be one, the
            # client still gets the text rather than a crash.
            arguments = {"arguments": call.arguments}
        result.append({"id": call.id, "function": {"index": index, "name": call.name, "arguments": arguments}})
    return result
