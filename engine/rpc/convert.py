"""Protobuf <-> engine domain types. Conversion only: what a message cannot
mean (unparseable JSON, an enum value this engine does not know, two fields
that contradict each other) is refused here; every domain rule is checked by
generation.validation."""

import json
import uuid

from hearth.engine.domain import (
    DEFAULTABLE,
    ChoiceEnded,
    EmbedParams,
    EmbedResult,
    Finished,
    FinishReason,
    GenerateParams,
    ReasoningRequest,
    SamplingParams,
    TextPiece,
    TokenizeParams,
    ToolSpec,
)
from hearth.engine.errors import InvalidArgument
from hearth.engine.events import EngineEvent, ModelStateEvent, RequestEvent
from hearth.engine.log_stream import LogEvent
from hearth.engine.models.pull import PullProgress
from hearth.engine.rpc.model_settings import parameter_text, settings_to_proto
from hearth.engine.service.views import (
    ModelView,
    PulledModel,
    StatusView,
    TokenizeResult,
)
from hearth.engine.v1 import engine_pb2 as pb

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_FINISH = {
    FinishReason.STOP: pb.FINISH_REASON_STOP,
    FinishReason.LENGTH: pb.FINISH_REASON_LENGTH,
    FinishReason.TOOL_CALLS: pb.FINISH_REASON_TOOL_CALLS,
}
_TOOL_CHOICES = {
    pb.TOOL_CHOICE_UNSPECIFIED: "auto",
    pb.TOOL_CHOICE_AUTO: "auto",
    pb.TOOL_CHOICE_NONE: "none",
    pb.TOOL_CHOICE_REQUIRED: "required",
    pb.TOOL_CHOICE_FUNCTION: "function",
}
_RESPONSE_FORMATS = {
    pb.RESPONSE_FORMAT_TYPE_UNSPECIFIED: "text",
    pb.RESPONSE_FORMAT_TYPE_TEXT: "text",
    pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT: "json_object",
    pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA: "json_schema",
}
_FINISH_BY_NAME = {
    "stop": pb.FINISH_REASON_STOP,
    "length": pb.FINISH_REASON_LENGTH,
    "tool_calls": pb.FINISH_REASON_TOOL_CALLS,
}


def model_to_proto(view: ModelView) -> pb.Model:
    record, info = view.record, view.record.info
    return pb.Model(
        id=record.id,
        path=str(record.path),
        file_size_bytes=record.file_size,
        architecture=info.architecture if info else "",
        parameter_count=info.parameter_count if info else 0,
        quantization=info.quantization if info else "",
        trained_context_length=info.trained_context_length if info else 0,
        context_window=record.context_window,
        max_output_tokens=record.max_output_tokens,
        has_chat_template=bool(info and info.chat_template),
        chat_template_source=view.template_source,
        state=pb.ModelState.Value(f"MODEL_STATE_{view.state}"),
        state_reason=view.reason,
        memory_bytes=view.memory_bytes,
        display_name=info.display_name if info else "",
        modified_unix_seconds=record.modified,
        capabilities=[pb.Capability.Value(f"CAPABILITY_{name}") for name in view.capabilities],
        expires_in_seconds=view.expires_in,
        reasoning_format=view.reasoning_format,
        system=record.system_prompt or "",
        parameters={name: parameter_text(value) for name, value in record.parameters},
        settings=settings_to_proto(record),
        estimated_memory_bytes=view.estimated_bytes,
    )


def _optional(request: pb.GenerateRequest, name: str, default):
    return getattr(request, name) if request.HasField(name) else default



def generate_params_from_proto(request: pb.GenerateRequest) -> GenerateParams:
    required_model(request.model)
    if request.messages and request.prompt:
        raise InvalidArgument("Give either 'messages' or 'prompt', not both", param="messages")
    if not request.messages and not request.prompt:
        raise InvalidArgument("Give 'messages' or a non-empty 'prompt'", param="messages")
    messages = [_message_dict(i, m) for i, m in enumerate(request.messages)]
    defaults = SamplingParams()
    sampling = SamplingParams(
        temperature=_optional(request, "temperature", defaults.temperature),
        top_p=_optional(request, "top_p", defaults.top_p),
        top_k=_optional(request, "top_k", defaults.top_k),
        min_p=_optional(request, "min_p", defaults.min_p),
        repeat_penalty=_optional(request, "repeat_penalty", defaults.repeat_penalty),
        presence_penalty=_optional(request, "presence_penalty", defaults.presence_penalty),
        frequency_penalty=_optional(request, "frequency_penalty", defaults.frequency_penalty),
        seed=_optional(request, "seed", None),
        logit_bias=_logit_bias(request),
    )
    tools = tuple(_tool_spec(i, t) for i, t in enumerate(request.tools))
    tool_choice = _tool_choice(request)
    response_format, json_schema = _response_format(request)
    return GenerateParams(
        model=request.model,
        messages=messages or None,
        prompt=request.prompt or None,
        max_tokens=_optional(request, "max_tokens", None),
        stop=tuple(request.stop),
        sampling=sampling,
        request_id=request.request_id or uuid.uuid4().hex,
        n=_optional(request, "n", 1),
        tools=tools,
        tool_choice=tool_choice,
        tool_choice_function=request.tool_choice_function if tool_choice == "function" else "",
        parallel_tool_calls=_optional(request, "parallel_tool_calls", True),
        response_format=response_format,
        json_schema=json_schema,
        top_logprobs=_top_logprobs(request),
        keep_alive=_optional(request, "keep_alive_seconds", None),
        reasoning=_reasoning(request.reasoning),
        unset=_unset(request),
    )


def _unset(request: pb.GenerateRequest) -> frozenset[str]:
    """The fields a model's defaults may fill: those the request left unset, less those it keeps unset on purpose."""
    kept = set(request.without_model_defaults)
    if unknown := kept.difference(DEFAULTABLE):
        raise InvalidArgument(
            f"'without_model_defaults' names unknown fields: {', '.join(sorted(unknown))}",
            param="without_model_defaults",
        )
    return frozenset(name for name in DEFAULTABLE if name not in kept and not _given(request, name))


def _given(request: pb.GenerateRequest, name: str) -> bool:
    return bool(request.stop) if name == "stop" else request.HasField(name)


_REASONING_MODES = {pb.REASONING_MODE_UNSPECIFIED: None, pb.REASONING_MODE_ON: True, pb.REASONING_MODE_OFF: False}
_EFFORTS = frozenset({"", "low", "medium", "high"})


def _reasoning(reasoning: pb.Reasoning) -> ReasoningRequest:
    if reasoning.mode not in _REASONING_MODES:
        raise InvalidArgument(f"Unknown reasoning mode {reasoning.mode}", param="reasoning.mode")
    if reasoning.effort not in _EFFORTS:
        raise InvalidArgument(
            f"Unknown reasoning effort '{reasoning.effort[:32]}'; use low, medium or high", param="reasoning.effort"
        )
    return ReasoningRequest(
        enabled=_REASONING_MODES[reasoning.mode],
        budget_tokens=reasoning.budget_tokens if reasoning.HasField("budget_tokens") else None,
        effort=reasoning.effort,
    )


def _message_dict(i: int, message: pb.ChatMessage) -> dict:
    """A message as chat templates expect it (OpenAI's shape)."""
    if message.role not in _ROLES:
        raise InvalidArgument(f"Unsupported role '{message.role}'; use one of {sorted(_ROLES)}", param="messages.role")
    result: dict = {"role": message.role, "content": message.content}
    if message.reasoning and message.role == "assistant":
        # The names templates read (Qwen3's and DeepSeek's; gpt-oss's); most drop it from earlier turns.
        result["reasoning_content"] = result["thinking"] = message.reasoning
    if message.tool_calls:
        if message.role != "assistant":
            raise InvalidArgument("Only assistant messages carry 'tool_calls'", param=f"messages[{i}].tool_calls")
        result["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.role == "tool":
        if message.tool_call_id:
            result["tool_call_id"] = message.tool_call_id
        if message.name:
            result["name"] = message.name
    return result


def _tool_spec(i: int, tool: pb.Tool) -> ToolSpec:
    parameters: object = {}
    if tool.parameters_json:
        try:
            parameters = json.loads(tool.parameters_json)
        except (ValueError, RecursionError) as exc:
            raise InvalidArgument(
                f"Tool '{tool.name}': 'parameters' is not valid JSON: {exc}", param=f"tools[{i}].function.parameters"
            ) from exc
    if not isinstance(parameters, dict):
        raise InvalidArgument(
            f"Tool '{tool.name}': 'parameters' must be a JSON Schema object", param=f"tools[{i}].function.parameters"
        )
    return ToolSpec(name=tool.name, description=tool.description, parameters=parameters)


def _tool_choice(request: pb.GenerateRequest) -> str:
    choice = _TOOL_CHOICES.get(request.tool_choice)
    if choice is None:
        raise InvalidArgument(f"Unknown tool_choice {request.tool_choice}", param="tool_choice")
    return choice


def _response_format(request: pb.GenerateRequest) -> tuple[str, dict | None]:
    kind = _RESPONSE_FORMATS.get(request.response_format.type)
    if kind is None:
        raise InvalidArgument(f"Unknown response_format type {request.response_format.type}", param="response_format")
    if kind != "json_schema":
        return kind, None
    try:
        schema = json.loads(request.response_format.json_schema)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(
            f"'response_format.json_schema' is not valid JSON: {exc}", param="response_format.json_schema"
        ) from exc
    if not isinstance(schema, dict):
        raise InvalidArgument(
            "'response_format.json_schema' must be a JSON Schema object", param="response_format.json_schema"
        )
    return kind, schema


def _top_logprobs(request: pb.GenerateRequest) -> int | None:
    """None without logprobs; alternatives per token with them."""
    if request.top_logprobs and not request.logprobs:
        raise InvalidArgument("'top_logprobs' needs 'logprobs' set to true", param="top_logprobs")
    return request.top_logprobs if request.logprobs else None


def _logit_bias(request: pb.GenerateRequest) -> tuple[tuple[int, float], ...]:
    return tuple(sorted(request.logit_bias.items()))


def generation_event_to_proto(event: TextPiece | ChoiceEnded | Finished) -> pb.GenerateResponse:
    if isinstance(event, TextPiece):
        return pb.GenerateResponse(
            text=event.text,
            index=event.index,
            logprobs=[
                pb.TokenLogprob(
                    token=lp.token,
                    logprob=lp.logprob,
                    bytes=lp.bytes,
                    token_id=lp.token_id,
                    top_logprobs=[
                        pb.TopLogprob(token=t.token, logprob=t.logprob, bytes=t.bytes, token_id=t.token_id)
                        for t in lp.top
                    ],
                )
                for lp in event.logprobs
            ],
            tool_calls=[pb.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in event.tool_calls],
            reasoning=event.reasoning,
        )
    if isinstance(event, ChoiceEnded):
        return pb.GenerateResponse(
            finish_reason=_FINISH[event.finish_reason], index=event.index, stop_sequence=event.stop_string
        )
    return pb.GenerateResponse(
        finish_reason=_FINISH[event.finish_reason],
        index=event.index,
        stop_sequence=event.stop_string,
        usage=pb.Usage(
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            cached_prompt_tokens=event.cached_prompt_tokens,
            reasoning_tokens=event.reasoning_tokens,
        ),
    )


def status_to_proto(status: StatusView) -> pb.GetStatusResponse:
    return pb.GetStatusResponse(
        backend=pb.Backend.Value(f"BACKEND_{status.backend.backend.value}"),
        gpu_offload=status.gpu_offload,
        engine_version=status.engine_version,
        llama_cpp_python_version=status.llama_cpp_python_version,
        loaded_models=[
            pb.LoadedModel(
                id=m.id,
                memory_bytes=m.memory_bytes,
                active_requests=m.active_requests,
                idle_seconds=m.idle_seconds,
                slots=m.slots,
                busy_slots=m.busy_slots,
                queued_requests=m.queued_requests,
                expires_in_seconds=m.expires_in,
                kv_cells=m.kv_cells,
                kv_cells_used=m.kv_cells_used,
                kv_bytes=m.kv_bytes,
            )
            for m in status.loaded
        ],
        process_memory_bytes=status.process_memory,
        system_memory_total_bytes=status.system_memory_total,
        system_memory_available_bytes=status.system_memory_available,
        uptime_seconds=status.uptime,
        models_dir=status.models_dir,
        keep_alive_seconds=status.keep_alive,
        system_info=status.backend.system_info,
        memory_budget_bytes=status.memory_budget,
    )


def log_to_proto(timestamp: float, event: LogEvent, replayed: bool) -> pb.LogLine:
    level = pb.LogLevel.Value(f"LOG_LEVEL_{event.level}")
    return pb.LogLine(timestamp=timestamp, level=level, logger=event.logger, message=event.message, replayed=replayed)


def event_to_proto(timestamp: float, event: EngineEvent, replayed: bool = False) -> pb.WatchEventsResponse:
    if isinstance(event, ModelStateEvent):
        return pb.WatchEventsResponse(
            timestamp=timestamp,
            replayed=replayed,
            model_state_changed=pb.ModelStateChanged(
                model=event.model, state=pb.ModelState.Value(f"MODEL_STATE_{event.state}"), reason=event.reason
            ),
        )
    assert isinstance(event, RequestEvent)
    return pb.WatchEventsResponse(
        timestamp=timestamp,
        replayed=replayed,
        request_finished=pb.RequestFinished(
            request_id=event.request_id,
            model=event.model,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            time_to_first_token_seconds=event.time_to_first_token,
            duration_seconds=event.duration,
            tokens_per_second=event.tokens_per_second,
            outcome=pb.RequestOutcome.Value(f"REQUEST_OUTCOME_{event.outcome}"),
            finish_reason=_FINISH_BY_NAME.get(event.finish_reason, pb.FINISH_REASON_UNSPECIFIED),
            error=event.error,
        ),
    )


def pull_update_to_proto(update: PullProgress | PulledModel) -> pb.PullModelResponse:
    progress = update.progress if isinstance(update, PulledModel) else update
    message = pb.PullModelResponse(
        phase=pb.PullPhase.Value(f"PULL_PHASE_{progress.phase.value}"),
        file=progress.file,
        completed_bytes=progress.completed,
        total_bytes=progress.total,
        sha256=progress.sha256,
    )
    if isinstance(update, PulledModel):
        message.model.CopyFrom(model_to_proto(update.model))
    return message


# Embeddings and tokens


def required_model(model: str) -> str:
    if not model:
        raise InvalidArgument("'model' is required", param="model")
    return model


def embed_params_from_proto(request: pb.EmbedRequest) -> EmbedParams:
    return EmbedParams(
        model=required_model(request.model),
        inputs=tuple(request.inputs),
        truncate=request.truncate,
        request_id=request.request_id or uuid.uuid4().hex,
        keep_alive=request.keep_alive_seconds if request.HasField("keep_alive_seconds") else None,
    )


def embed_result_to_proto(result: EmbedResult) -> pb.EmbedResponse:
    return pb.EmbedResponse(
        embeddings=[pb.Embedding(values=vector.tolist()) for vector in result.vectors],
        prompt_tokens=result.prompt_tokens,
    )


def tokenize_params_from_proto(request: pb.TokenizeRequest) -> TokenizeParams:
    """An empty text counts as not given."""
    if request.text and request.messages:
        raise InvalidArgument("Give either 'text' or 'messages', not both", param="text")
    messages = [_message_dict(i, m) for i, m in enumerate(request.messages)] or None
    if request.tools and messages is None:
        raise InvalidArgument("'tools' go with 'messages'", param="tools")
    return TokenizeParams(
        model=required_model(request.model),
        text=request.text if messages is None else None,
        messages=messages,
        add_special=request.add_special if request.HasField("add_special") else True,
        tools=tuple(_tool_spec(i, t) for i, t in enumerate(request.tools)),
    )


def tokenize_result_to_proto(result: TokenizeResult) -> pb.TokenizeResponse:
    return pb.TokenizeResponse(tokens=result.tokens, pieces=result.pieces, context_window=result.context_window)
