"""Responses requests -> engine GenerateRequest, and engine answers -> output items."""

import json
import uuid
from dataclasses import dataclass, field

from hearth.adapter.common.errors import invalid_request
from hearth.adapter.common.text import arguments_json
from hearth.adapter.responses.protocol import ContentPart, FunctionTool, InputItem, NamedFunction, ResponsesRequest
from hearth.engine.v1 import engine_pb2 as pb

UINT32_MAX = 2**32 - 1
INT32_MAX = 2**31 - 1
_TOOL_CHOICES = {"auto": pb.TOOL_CHOICE_AUTO, "none": pb.TOOL_CHOICE_NONE, "required": pb.TOOL_CHOICE_REQUIRED}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})
# Items of earlier turns that carry nothing the model reads again.
_SKIPPED_ITEMS = frozenset({"reasoning"})
_SUMMARIES = ("auto", "concise", "detailed")
# Tool types offered to the model (and so listed in the Response's tools).
_OFFERED_TOOLS = frozenset({"function", "namespace"})


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _text(content: str | list[ContentPart] | None, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for index, part in enumerate(content):
        if part.type not in _TEXT_PARTS:
            raise invalid_request(
                f"Content parts of type '{part.type}' are not supported; send text",
                param=f"{param}[{index}].type",
                code="unsupported_value",
            )
        texts.append(part.text or "")
    return "\n".join(texts)


# A namespaced function is offered to the model as NAMESPACE__NAME.
_NAMESPACE_JOIN = "__"


@dataclass
class ToolNames:
    """The names the model sees for namespaced functions, and back."""

    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)

    def flat(self, namespace: str | None, name: str) -> str:
        return f"{namespace}{_NAMESPACE_JOIN}{name}" if namespace else name

    def add(self, namespace: str, name: str, taken: set[str]) -> str:
        flat = self.flat(namespace, name)
        while flat in taken:
            flat += "_"
        self.namespaced[flat] = (namespace, name)
        return flat

    def offered(self, namespace: str | None, name: str) -> str:
        """The name the model was offered for ``namespace``'s ``name`` (an earlier call's, replayed)."""
        for flat, pair in self.namespaced.items():
            if pair == (namespace, name):
                return flat
        return self.flat(namespace, name)

    def call_fields(self, flat: str) -> dict:
        """name (and namespace) of a function_call item for the model's call of ``flat``."""
        if flat in self.namespaced:
            namespace, name = self.namespaced[flat]
            return {"name": name, "namespace": namespace}
        return {"name": flat}


@dataclass
class Prepared:
    """A Responses request ready for the engine."""

    generate: pb.GenerateRequest
    # Tools left out of the prompt (hosted ones a local server cannot run).
    left_out: list[str]
    names: ToolNames
    # This request's input items, each with an id, as stored and listed.
    input_items: list[dict]


def _function_call(item: InputItem, param: str, names: ToolNames) -> pb.ToolCall:
    if not item.call_id or not item.name:
        raise invalid_request("A function_call item needs call_id and name", param=param)
    try:
        arguments = arguments_json(item.arguments or "{}")
    except ValueError:
        raise invalid_request("Function call arguments must be a JSON object", param=f"{param}.arguments") from None
    return pb.ToolCall(id=item.call_id, name=names.offered(item.namespace, item.name), arguments=arguments)


def _items(request: ResponsesRequest) -> list[InputItem]:
    return [InputItem(role="user", content=request.input)] if isinstance(request.input, str) else request.input


def input_items_of(request: ResponsesRequest) -> list[dict]:
    """The request's input items as stored and listed: each with an id, text as parts."""
    out = []
    seen: set[str] = set()
    for item in _items(request):
        stored = item.model_dump(exclude_none=True)
        if item.type == "message":
            stored.setdefault("role", "user")
            if isinstance(item.content, str):
                kind = "output_text" if item.role == "assistant" else "input_text"
                stored["content"] = [{"type": kind, "text": item.content}]
        prefix = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}.get(item.type, "item")
        # Ids are what input_items pages after: one the client sent twice gets a new one the second time.
        if stored.get("id") in seen:
            del stored["id"]
        stored.setdefault("id", new_id(prefix))
        seen.add(stored["id"])
        out.append(stored)
    return out


def messages_of(request: ResponsesRequest, history: list[dict] = (), names: ToolNames | None = None) -> list[pb.ChatMessage]:
    """instructions, then the earlier turns' items (``history``) and the input
    items; consecutive function calls join the assistant message before them."""
    out: list[pb.ChatMessage] = []
    if request.instructions:
        out.append(pb.ChatMessage(role="system", content=request.instructions))
    earlier = [(f"previous_response_id[{index}]", InputItem.model_validate(item)) for index, item in enumerate(history)]
    current = [(f"input[{index}]", item) for index, item in enumerate(_items(request))]
    # An earlier turn's reasoning goes with the assistant message after it (templates mostly drop it).
    thought = ""
    for param, item in earlier + current:
        if item.type == "reasoning":
            thought += _text(item.content, f"{param}.content") if isinstance(item.content, list) else ""
        elif item.type == "message":
            if item.role is None:
                raise invalid_request("A message item needs a role", param=f"{param}.role")
            out.append(pb.ChatMessage(role=item.role, content=_text(item.content, f"{param}.content")))
            if item.role == "assistant":
                out[-1].reasoning, thought = thought, ""
        elif item.type == "function_call":
            if not out or out[-1].role != "assistant":
                out.append(pb.ChatMessage(role="assistant", reasoning=thought))
                thought = ""
            out[-1].tool_calls.append(_function_call(item, param, names or ToolNames()))
        elif item.type == "function_call_output":
            if not item.call_id:
                raise invalid_request("A function_call_output item needs call_id", param=f"{param}.call_id")
            out.append(
                pb.ChatMessage(role="tool", tool_call_id=item.call_id, content=_text(item.output, f"{param}.output"))
            )
        elif item.type == "item_reference":
            # The referenced item is already in the prompt when it is one of the earlier turns'.
            if item.id not in {earlier_item.get("id") for earlier_item in history}:
                raise invalid_request(
                    f"No item with id '{item.id}' in the conversation of previous_response_id; send the item itself",
                    param=f"{param}.id",
                )
        elif item.type not in _SKIPPED_ITEMS:
            raise invalid_request(
                f"Input items of type '{item.type}' are not supported", param=f"{param}.type", code="unsupported_value"
            )
    return out


def _add_function(generate: pb.GenerateRequest, tool: FunctionTool, name: str, description: str) -> None:
    generate.tools.add(
        name=name,
        description=description,
        parameters_json=json.dumps(tool.parameters) if tool.parameters else "",
    )


def _tools(request: ResponsesRequest, generate: pb.GenerateRequest, names: ToolNames) -> list[str]:
    """Adds the function tools, a namespace's functions under flat names; returns
    the names of the others, left out (hosted tools a local server cannot run,
    and kinds it cannot offer a model)."""
    left_out = []
    tools = request.tools or ()
    taken = {tool.name for tool in tools if tool.type == "function" and tool.name}
    for tool in tools:
        if tool.type == "function" and tool.name:
            _add_function(generate, tool, tool.name, tool.description or "")
        elif tool.type == "namespace" and tool.name and tool.tools:
            for nested in tool.tools:
                if nested.type != "function" or not nested.name:
                    left_out.append(f"{tool.name}.{nested.name or nested.type}")
                    continue
                flat = names.add(tool.name, nested.name, taken)
                taken.add(flat)
                description = "\n\n".join(text for text in (tool.description, nested.description) if text)
                _add_function(generate, nested, flat, description)
        else:
            left_out.append(tool.name or tool.type)
    choice = request.tool_choice
    if isinstance(choice, NamedFunction):
        generate.tool_choice = pb.TOOL_CHOICE_FUNCTION
        generate.tool_choice_function = choice.name
    elif choice is not None and generate.tools:
        generate.tool_choice = _TOOL_CHOICES[choice]
    if request.parallel_tool_calls is not None:
        generate.parallel_tool_calls = request.parallel_tool_calls
    return left_out


def _text_format(request: ResponsesRequest, generate: pb.GenerateRequest) -> None:
    text_format = request.text.format if request.text else None
    if text_format is None or text_format.type == "text":
        return
    if text_format.type == "json_object":
        generate.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
        return
    if not text_format.schema_:
        raise invalid_request("text.format of type 'json_schema' needs a schema", param="text.format.schema")
    generate.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    generate.response_format.json_schema = json.dumps(text_format.schema_)


def responses_to_generate(request: ResponsesRequest, response_id: str, history: list[dict] = ()) -> Prepared:
    """``history``: the conversation of the response ``previous_response_id`` names."""
    generate = pb.GenerateRequest(model=request.model, request_id=response_id)
    names = ToolNames()
    left_out = _tools(request, generate, names)
    generate.messages.extend(messages_of(request, history, names))
    _text_format(request, generate)
    if request.max_output_tokens is not None:
        generate.max_tokens = min(request.max_output_tokens, UINT32_MAX)
    for name in ("temperature", "top_p", "min_p"):
        if getattr(request, name) is not None:
            setattr(generate, name, getattr(request, name))
    if request.top_k is not None:
        generate.top_k = max(-INT32_MAX, min(request.top_k, INT32_MAX))
    if request.seed is not None:
        generate.seed = request.seed % 2**64
    effort = (request.reasoning or {}).get("effort")
    if effort == "none":
        generate.reasoning.mode = pb.REASONING_MODE_OFF
    elif effort in ("minimal", "low", "medium", "high", "xhigh"):
        generate.reasoning.effort = {"minimal": "low", "xhigh": "high"}.get(effort, effort)
    return Prepared(generate, left_out, names, input_items_of(request))


def _reasoning_option(request: ResponsesRequest, name: str) -> str | None:
    value = (request.reasoning or {}).get(name)
    return value if isinstance(value, str) else None


def summarized(request: ResponsesRequest) -> bool:
    """Whether the request asks for a summary of the reasoning (``reasoning.summary``).
    No model here writes one apart: the summary given is the thinking itself."""
    return (request.reasoning or {}).get("summary") in _SUMMARIES


def reasoning_item(item_id: str, text: str, status: str = "completed", *, summary: bool = False) -> dict:
    """A reasoning model's thinking, before the answer; as first announced (in_progress) without content."""
    content = [] if status == "in_progress" else [{"type": "reasoning_text", "text": text}]
    summaries = [{"type": "summary_text", "text": text}] if summary and status != "in_progress" else []
    return {"type": "reasoning", "id": item_id, "status": status, "summary": summaries, "content": content}


def message_item(item_id: str, text: str, status: str = "completed") -> dict:
    """An output message; ``status`` in_progress (as first announced: no content
    yet), completed, or incomplete (cut by max_output_tokens)."""
    content = (
        [] if status == "in_progress" else [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def function_call_item(call: pb.ToolCall, names: ToolNames, status: str = "completed") -> dict:
    return {
        "type": "function_call",
        "id": f"fc_{call.id}",
        "call_id": call.id,
        **names.call_fields(call.name),
        "arguments": call.arguments if status != "in_progress" else "",
        "status": status,
    }


def usage_of(message: pb.GenerateResponse) -> dict:
    usage = message.usage
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_prompt_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def response_object(
    request: ResponsesRequest,
    response_id: str,
    created_at: int,
    *,
    status: str,
    output: list,
    usage: dict | None,
    stored: bool,
    error: dict | None = None,
) -> dict:
    """The Response object, as every event and the non-streamed answer carry it."""
    text = request.text.model_dump(by_alias=True, exclude_none=True) if request.text else {"format": {"type": "text"}}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "model": request.model,
        "output": output,
        "output_text": "".join(
            part["text"] for item in output if item["type"] == "message" for part in item["content"]
        ),
        "usage": usage,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "error": error,
        "previous_response_id": request.previous_response_id,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "tool_choice": request.tool_choice.model_dump()
        if isinstance(request.tool_choice, NamedFunction)
        else (request.tool_choice or "auto"),
        "tools": [tool.model_dump(exclude_none=True) for tool in request.tools or () if tool.type in _OFFERED_TOOLS],
        "text": text,
        "truncation": request.truncation or "disabled",
        "metadata": request.metadata or {},
        "store": stored,
        "reasoning": {"effort": _reasoning_option(request, "effort"), "summary": _reasoning_option(request, "summary")},
    }
