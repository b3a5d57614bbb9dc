"""OpenAI requests -> engine GenerateRequest. Fields Hearth cannot honour are
refused here with a 400 naming them, never silently dropped."""

import json

from hearth.adapter.common.errors import invalid_request
from hearth.adapter.common.text import arguments_json
from hearth.adapter.openai.protocol.chat import (
    ChatCompletionRequest,
    ChatMessage,
    NamedToolChoice,
)
from hearth.adapter.openai.protocol.common import (
    CompletionTokensDetails,
    PromptTokensDetails,
    SamplingFields,
    Usage,
)
from hearth.adapter.openai.protocol.completions import CompletionRequest
from hearth.engine.v1 import engine_pb2 as pb

# Values past the wire's integer types are sent as their largest value, for the engine to refuse.
UINT32_MAX = 2**32 - 1
INT32_MAX = 2**31 - 1
_TOOL_CHOICES = {"auto": pb.TOOL_CHOICE_AUTO, "none": pb.TOOL_CHOICE_NONE, "required": pb.TOOL_CHOICE_REQUIRED}


def _unsupported(param: str, message: str) -> Exception:
    return invalid_request(message, param=param, code="unsupported_parameter")


def _logit_bias(request: SamplingFields, generate: pb.GenerateRequest) -> None:
    for key, bias in (request.logit_bias or {}).items():
        try:
            token = int(key)
        except ValueError:
            token = -1
        if token < 0 or token >= 2**31:
            raise invalid_request(f"logit_bias keys must be token ids; got '{key}'", param="logit_bias")
        # The engine checks the values (and the ids against the vocabulary).
        generate.logit_bias[token] = bias


def _sampling(request: SamplingFields, generate: pb.GenerateRequest) -> None:
    for name in ("temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty"):
        value = getattr(request, name)
        if value is not None:
            setattr(generate, name, value)
    if request.top_k is not None:
        generate.top_k = max(-INT32_MAX, min(request.top_k, INT32_MAX))
    if request.n is not None:
        # The engine checks n against the sequences the model serves at once.
        generate.n = min(request.n, UINT32_MAX)
    if request.seed is not None:
        # The engine takes an unsigned seed; negative seeds wrap as in C.
        generate.seed = request.seed % 2**64
    stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    generate.stop.extend(s for s in stops if s)
    _logit_bias(request, generate)


def _message_text(message: ChatMessage, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for part_index, part in enumerate(message.content):
        if part.type != "text" or part.text is None:
            raise invalid_request(
                f"Content parts of type '{part.type}' are not supported; send text parts",
                param=f"messages[{index}].content[{part_index}].type",
                code="unsupported_value",
            )
        texts.append(part.text)
    return "\n".join(texts)


def _arguments_text(arguments: str | dict, param: str) -> str:
    try:
        return arguments_json(arguments)
    except ValueError:
        raise invalid_request("Tool call arguments must be a JSON object", param=param) from None


def _messages(request: ChatCompletionRequest, generate: pb.GenerateRequest) -> None:
    for index, message in enumerate(request.messages):
        if message.role == "function":
            raise _unsupported(f"messages[{index}].role", "The legacy 'function' role is not supported; use 'tool'")
        out = generate.messages.add(role=message.role, content=_message_text(message, index))
        if message.role == "assistant" and message.reasoning_content:
            out.reasoning = message.reasoning_content
        if message.role == "tool":
            out.tool_call_id = message.tool_call_id or ""
            out.name = message.name or ""
        for call_index, call in enumerate(message.tool_calls or ()):
            if message.role != "assistant":
                raise invalid_request(
                    "Only assistant messages carry tool_calls", param=f"messages[{index}].tool_calls"
                )
            param = f"messages[{index}].tool_calls[{call_index}].function.arguments"
            out.tool_calls.add(
                id=call.id or f"call_{index}_{call_index}",
                name=call.function.name,
                arguments=_arguments_text(call.function.arguments, param),
            )


def _tools(request: ChatCompletionRequest, generate: pb.GenerateRequest) -> None:
    names = []
    for index, tool in enumerate(request.tools or ()):
        if tool.type != "function":
            raise invalid_request(
                f"Tools of type '{tool.type}' are not supported; use 'function'",
                param=f"tools[{index}].type",
                code="unsupported_value",
            )
        if tool.function is None:
            raise invalid_request("Missing required parameter: 'function'", param=f"tools[{index}].function")
        function = tool.function
        generate.tools.add(
            name=function.name,
            description=function.description or "",
            parameters_json=json.dumps(function.parameters) if function.parameters else "",
        )
        names.append(function.name)
    # The engine checks that a named function is among the tools and that a choice has tools.
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        generate.tool_choice = pb.TOOL_CHOICE_FUNCTION
        generate.tool_choice_function = choice.function.name
    elif choice is not None:
        generate.tool_choice = _TOOL_CHOICES[choice]
    if request.parallel_tool_calls is not None:
        generate.parallel_tool_calls = request.parallel_tool_calls


def _response_format(request: ChatCompletionRequest, generate: pb.GenerateRequest) -> None:
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return
    if response_format.type == "json_object":
        generate.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    elif response_format.type == "json_schema":
        schema = response_format.json_schema.schema_ if response_format.json_schema else None
        if not schema:
            raise invalid_request(
                "response_format of type 'json_schema' needs json_schema.schema", param="response_format.json_schema"
            )
        generate.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
        generate.response_format.json_schema = json.dumps(schema)
    else:
        raise invalid_request(
            f"response_format type '{response_format.type}' is not supported; use text, json_object or json_schema",
            param="response_format.type",
            code="unsupported_value",
        )


def _refuse_non_text_output(request: ChatCompletionRequest) -> None:
    if request.functions or request.function_call is not None:
        param = "functions" if request.functions else "function_call"
        raise _unsupported(param, "The legacy functions API is not supported; use tools and tool_choice")
    if request.modalities and set(request.modalities) != {"text"}:
        raise invalid_request("Only the 'text' modality is supported", param="modalities", code="unsupported_value")
    for name in ("audio", "prediction", "web_search_options"):
        if getattr(request, name):
            raise _unsupported(name, f"'{name}' is not supported by this server")


def chat_to_generate(request: ChatCompletionRequest, request_id: str) -> pb.GenerateRequest:
    _refuse_non_text_output(request)
    generate = pb.GenerateRequest(model=request.model, request_id=request_id)
    _messages(request, generate)
    _tools(request, generate)
    _response_format(request, generate)
    generate.logprobs = bool(request.logprobs)
    generate.top_logprobs = min(request.top_logprobs or 0, UINT32_MAX)
    max_tokens = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    if max_tokens is not None:
        generate.max_tokens = min(max_tokens, UINT32_MAX)
    _sampling(request, generate)
    _reasoning(request, generate.reasoning)
    return generate


def _reasoning(request: ChatCompletionRequest, reasoning: pb.Reasoning) -> None:
    switch = (request.chat_template_kwargs or {}).get("enable_thinking")
    if isinstance(switch, bool):
        reasoning.mode = pb.REASONING_MODE_ON if switch else pb.REASONING_MODE_OFF
    effort = request.reasoning_effort
    if effort == "none" or request.reasoning_budget == 0:
        reasoning.mode = pb.REASONING_MODE_OFF
    elif effort is not None:
        reasoning.effort = {"minimal": "low", "xhigh": "high"}.get(effort, effort)
    if request.reasoning_budget is not None and request.reasoning_budget > 0:
        reasoning.budget_tokens = min(request.reasoning_budget, UINT32_MAX)


def completion_to_generate(request: CompletionRequest, request_id: str) -> pb.GenerateRequest:
    prompt = request.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise invalid_request("Only a single text prompt is supported", param="prompt", code="unsupported_value")
        prompt = prompt[0]
    if not prompt:
        raise invalid_request("The prompt must not be empty", param="prompt")
    if request.echo:
        raise _unsupported("echo", "echo is not supported")
    if request.suffix:
        raise _unsupported("suffix", "suffix is not supported")
    if request.best_of not in (None, 1):
        raise invalid_request("Only best_of=1 is supported", param="best_of", code="unsupported_value")
    generate = pb.GenerateRequest(model=request.model, prompt=prompt, request_id=request_id)
    if request.max_tokens is not None:
        generate.max_tokens = min(request.max_tokens, UINT32_MAX)
    if request.logprobs is not None:
        generate.logprobs = True
        generate.top_logprobs = min(request.logprobs, UINT32_MAX)
    _sampling(request, generate)
    return generate


def usage_of(message: pb.GenerateResponse) -> Usage:
    """OpenAI's usage from the last message of a generation."""
    return Usage(
        prompt_tokens=message.usage.prompt_tokens,
        completion_tokens=message.usage.completion_tokens,
        total_tokens=message.usage.prompt_tokens + message.usage.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=message.usage.cached_prompt_tokens),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=message.usage.reasoning_tokens),
    )
