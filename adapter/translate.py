"""OpenAI requests -> engine GenerateRequest. Fields Hearth cannot honour are
refused here with a 400 naming them, never silently dropped."""

from hearth.adapter.errors import invalid_request
from hearth.adapter.protocol.chat import ChatCompletionRequest, ChatMessage
from hearth.adapter.protocol.common import SamplingFields
from hearth.adapter.protocol.completions import CompletionRequest
from hearth.engine.v1 import engine_pb2 as pb

MAX_STOP_STRINGS = 16


def _sampling(request: SamplingFields, generate: pb.GenerateRequest) -> None:
    if request.logprobs not in (None, False, 0):
        raise invalid_request("logprobs are not supported", param="logprobs", code="unsupported_parameter")
    if request.logit_bias:
        raise invalid_request("logit_bias is not supported", param="logit_bias", code="unsupported_parameter")
    for name in ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty"):
        value = getattr(request, name)
        if value is not None:
            setattr(generate, name, value)
    if request.n is not None:
        # The engine checks n against the sequences the model serves at once.
        generate.n = request.n
    if request.seed is not None:
        # The engine takes an unsigned seed; negative seeds wrap as in C.
        generate.seed = request.seed % 2**64
    stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stops) > MAX_STOP_STRINGS:
        raise invalid_request(f"At most {MAX_STOP_STRINGS} stop sequences are allowed", param="stop")
    generate.stop.extend(s for s in stops if s)


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


def chat_to_generate(request: ChatCompletionRequest, request_id: str) -> pb.GenerateRequest:
    if request.tools and request.tool_choice != "none":
        raise invalid_request("Tool calling is not supported yet", param="tools", code="unsupported_parameter")
    if request.functions:
        raise invalid_request("Function calling is not supported yet", param="functions", code="unsupported_parameter")
    if request.response_format and request.response_format.get("type") not in (None, "text"):
        raise invalid_request(
            "Only response_format type 'text' is supported", param="response_format.type", code="unsupported_value"
        )
    if request.top_logprobs:
        raise invalid_request("top_logprobs is not supported", param="top_logprobs", code="unsupported_parameter")
    generate = pb.GenerateRequest(model=request.model, request_id=request_id)
    for index, message in enumerate(request.messages):
        if message.role in ("tool", "function") or message.tool_calls:
            raise invalid_request(
                "Tool messages are not supported yet", param=f"messages[{index}].role", code="unsupported_value"
            )
        generate.messages.add(role=message.role, content=_message_text(message, index))
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is not None:
        generate.max_tokens = min(max_tokens, 2**32 - 1)
    _sampling(request, generate)
    return generate


def completion_to_generate(request: CompletionRequest, request_id: str) -> pb.GenerateRequest:
    prompt = request.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise invalid_request("Only a single text prompt is supported", param="prompt", code="unsupported_value")
        prompt = prompt[0]
    if not prompt:
        raise invalid_request("The prompt must not be empty", param="prompt")
    if request.echo:
        raise invalid_request("echo is not supported", param="echo", code="unsupported_parameter")
    if request.suffix:
        raise invalid_request("suffix is not supported", param="suffix", code="unsupported_parameter")
    if request.best_of not in (None, 1):
        raise invalid_request("Only best_of=1 is supported", param="best_of", code="unsupported_value")
    generate = pb.GenerateRequest(model=request.model, prompt=prompt, request_id=request_id)
    if request.max_tokens is not None:
        generate.max_tokens = min(request.max_tokens, 2**32 - 1)
    _sampling(request, generate)
    return generate
