"""Protobuf <-> engine domain types."""

import uuid

from hearth.engine.core import ModelView, StatusView
from hearth.engine.errors import InvalidArgument
from hearth.engine.events import EngineEvent, ModelStateEvent, RequestEvent
from hearth.engine.requests import ChoiceEnded, Finished, FinishReason, GenerateParams, SamplingParams, TextPiece
from hearth.engine.v1 import engine_pb2 as pb

_ROLES = {"system", "developer", "user", "assistant"}
_FINISH = {FinishReason.STOP: pb.FINISH_REASON_STOP, FinishReason.LENGTH: pb.FINISH_REASON_LENGTH}
_FINISH_BY_NAME = {"stop": pb.FINISH_REASON_STOP, "length": pb.FINISH_REASON_LENGTH}


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
    )


def _optional(request: pb.GenerateRequest, name: str, default):
    return getattr(request, name) if request.HasField(name) else default


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise InvalidArgument(f"'{name}' must be between {low} and {high}, got {value}", param=name)


def generate_params_from_proto(request: pb.GenerateRequest) -> GenerateParams:
    if not request.model:
        raise InvalidArgument("'model' is required", param="model")
    if request.messages and request.prompt:
        raise InvalidArgument("Give either 'messages' or 'prompt', not both", param="messages")
    if not request.messages and not request.prompt:
        raise InvalidArgument("Give 'messages' or a non-empty 'prompt'", param="messages")
    for message in request.messages:
        if message.role not in _ROLES:
            raise InvalidArgument(
                f"Unsupported role '{message.role}'; use one of {sorted(_ROLES)}", param="messages.role"
            )
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
    )
    _check_range("temperature", sampling.temperature, 0.0, 2.0)
    _check_range("top_p", sampling.top_p, 0.0, 1.0)
    _check_range("top_k", sampling.top_k, 0, 1_000_000)
    _check_range("min_p", sampling.min_p, 0.0, 1.0)
    _check_range("repeat_penalty", sampling.repeat_penalty, 0.0, 10.0)
    _check_range("presence_penalty", sampling.presence_penalty, -2.0, 2.0)
    _check_range("frequency_penalty", sampling.frequency_penalty, -2.0, 2.0)
    return GenerateParams(
        model=request.model,
        messages=[{"role": m.role, "content": m.content} for m in request.messages] or None,
        prompt=request.prompt or None,
        max_tokens=_optional(request, "max_tokens", None),
        stop=tuple(request.stop),
        sampling=sampling,
        request_id=request.request_id or uuid.uuid4().hex,
        n=_optional(request, "n", 1),
    )


def generation_event_to_proto(event: TextPiece | ChoiceEnded | Finished) -> pb.GenerateResponse:
    if isinstance(event, TextPiece):
        return pb.GenerateResponse(text=event.text, index=event.index)
    if isinstance(event, ChoiceEnded):
        return pb.GenerateResponse(finish_reason=_FINISH[event.finish_reason], index=event.index)
    return pb.GenerateResponse(
        finish_reason=_FINISH[event.finish_reason],
        index=event.index,
        usage=pb.Usage(
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            cached_prompt_tokens=event.cached_prompt_tokens,
        ),
    )


def status_to_proto(status: StatusView) -> pb.GetStatusResponse:
    return pb.GetStatusResponse(
        backend=status.backend.backend,
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
    )


def event_to_proto(timestamp: float, event: EngineEvent) -> pb.WatchEventsResponse:
    if isinstance(event, ModelStateEvent):
        return pb.WatchEventsResponse(
            timestamp=timestamp,
            model_state_changed=pb.ModelStateChanged(
                model=event.model, state=pb.ModelState.Value(f"MODEL_STATE_{event.state}"), reason=event.reason
            ),
        )
    assert isinstance(event, RequestEvent)
    return pb.WatchEventsResponse(
        timestamp=timestamp,
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
