from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATE_UNSPECIFIED: _ClassVar[ModelState]
    MODEL_STATE_UNLOADED: _ClassVar[ModelState]
    MODEL_STATE_LOADING: _ClassVar[ModelState]
    MODEL_STATE_READY: _ClassVar[ModelState]
    MODEL_STATE_FAILED: _ClassVar[ModelState]
    MODEL_STATE_INVALID: _ClassVar[ModelState]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_CPU: _ClassVar[Backend]
    BACKEND_METAL: _ClassVar[Backend]
    BACKEND_CUDA: _ClassVar[Backend]
    BACKEND_VULKAN: _ClassVar[Backend]
    BACKEND_OTHER_GPU: _ClassVar[Backend]

class RequestOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_OUTCOME_UNSPECIFIED: _ClassVar[RequestOutcome]
    REQUEST_OUTCOME_COMPLETED: _ClassVar[RequestOutcome]
    REQUEST_OUTCOME_CANCELLED: _ClassVar[RequestOutcome]
    REQUEST_OUTCOME_FAILED: _ClassVar[RequestOutcome]
MODEL_STATE_UNSPECIFIED: ModelState
MODEL_STATE_UNLOADED: ModelState
MODEL_STATE_LOADING: ModelState
MODEL_STATE_READY: ModelState
MODEL_STATE_FAILED: ModelState
MODEL_STATE_INVALID: ModelState
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
BACKEND_UNSPECIFIED: Backend
BACKEND_CPU: Backend
BACKEND_METAL: Backend
BACKEND_CUDA: Backend
BACKEND_VULKAN: Backend
BACKEND_OTHER_GPU: Backend
REQUEST_OUTCOME_UNSPECIFIED: RequestOutcome
REQUEST_OUTCOME_COMPLETED: RequestOutcome
REQUEST_OUTCOME_CANCELLED: RequestOutcome
REQUEST_OUTCOME_FAILED: RequestOutcome

class Model(_message.Message):
    __slots__ = ("id", "path", "file_size_bytes", "architecture", "parameter_count", "quantization", "trained_context_length", "context_window", "max_output_tokens", "has_chat_template", "chat_template_source", "state", "state_reason", "memory_bytes", "display_name", "modified_unix_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_COUNT_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    TRAINED_CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HAS_CHAT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CHAT_TEMPLATE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_UNIX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    path: str
    file_size_bytes: int
    architecture: str
    parameter_count: int
    quantization: str
    trained_context_length: int
    context_window: int
    max_output_tokens: int
    has_chat_template: bool
    chat_template_source: str
    state: ModelState
    state_reason: str
    memory_bytes: int
    display_name: str
    modified_unix_seconds: int
    def __init__(self, id: _Optional[str] = ..., path: _Optional[str] = ..., file_size_bytes: _Optional[int] = ..., architecture: _Optional[str] = ..., parameter_count: _Optional[int] = ..., quantization: _Optional[str] = ..., trained_context_length: _Optional[int] = ..., context_window: _Optional[int] = ..., max_output_tokens: _Optional[int] = ..., has_chat_template: _Optional[bool] = ..., chat_template_source: _Optional[str] = ..., state: _Optional[_Union[ModelState, str]] = ..., state_reason: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., display_name: _Optional[str] = ..., modified_unix_seconds: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class LoadModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class UnloadModelRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UnloadModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("model", "messages", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "repeat_penalty", "presence_penalty", "frequency_penalty", "request_id", "n")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MIN_P_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    REPEAT_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    prompt: str
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    seed: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    request_id: str
    n: int
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., prompt: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., min_p: _Optional[float] = ..., seed: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ..., repeat_penalty: _Optional[float] = ..., presence_penalty: _Optional[float] = ..., frequency_penalty: _Optional[float] = ..., request_id: _Optional[str] = ..., n: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "cached_prompt_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_prompt_tokens: _Optional[int] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("text", "finish_reason", "usage", "index")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    text: str
    finish_reason: FinishReason
    usage: Usage
    index: int
    def __init__(self, text: _Optional[str] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., index: _Optional[int] = ...) -> None: ...

class LoadedModel(_message.Message):
    __slots__ = ("id", "memory_bytes", "active_requests", "idle_seconds", "slots", "busy_slots", "queued_requests")
    ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    BUSY_SLOTS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    memory_bytes: int
    active_requests: int
    idle_seconds: float
    slots: int
    busy_slots: int
    queued_requests: int
    def __init__(self, id: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., active_requests: _Optional[int] = ..., idle_seconds: _Optional[float] = ..., slots: _Optional[int] = ..., busy_slots: _Optional[int] = ..., queued_requests: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("backend", "gpu_offload", "engine_version", "llama_cpp_python_version", "loaded_models", "process_memory_bytes", "system_memory_total_bytes", "system_memory_available_bytes", "uptime_seconds", "models_dir", "keep_alive_seconds", "system_info")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    GPU_OFFLOAD_FIELD_NUMBER: _ClassVar[int]
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LLAMA_CPP_PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODELS_FIELD_NUMBER: _ClassVar[int]
    PROCESS_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_MEMORY_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MODELS_DIR_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_INFO_FIELD_NUMBER: _ClassVar[int]
    backend: Backend
    gpu_offload: bool
    engine_version: str
    llama_cpp_python_version: str
    loaded_models: _containers.RepeatedCompositeFieldContainer[LoadedModel]
    process_memory_bytes: int
    system_memory_total_bytes: int
    system_memory_available_bytes: int
    uptime_seconds: float
    models_dir: str
    keep_alive_seconds: float
    system_info: str
    def __init__(self, backend: _Optional[_Union[Backend, str]] = ..., gpu_offload: _Optional[bool] = ..., engine_version: _Optional[str] = ..., llama_cpp_python_version: _Optional[str] = ..., loaded_models: _Optional[_Iterable[_Union[LoadedModel, _Mapping]]] = ..., process_memory_bytes: _Optional[int] = ..., system_memory_total_bytes: _Optional[int] = ..., system_memory_available_bytes: _Optional[int] = ..., uptime_seconds: _Optional[float] = ..., models_dir: _Optional[str] = ..., keep_alive_seconds: _Optional[float] = ..., system_info: _Optional[str] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelStateChanged(_message.Message):
    __slots__ = ("model", "state", "reason")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    model: str
    state: ModelState
    reason: str
    def __init__(self, model: _Optional[str] = ..., state: _Optional[_Union[ModelState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class RequestFinished(_message.Message):
    __slots__ = ("request_id", "model", "prompt_tokens", "completion_tokens", "time_to_first_token_seconds", "duration_seconds", "tokens_per_second", "outcome", "finish_reason", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_seconds: float
    duration_seconds: float
    tokens_per_second: float
    outcome: RequestOutcome
    finish_reason: FinishReason
    error: str
    def __init__(self, request_id: _Optional[str] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., time_to_first_token_seconds: _Optional[float] = ..., duration_seconds: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., outcome: _Optional[_Union[RequestOutcome, str]] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., error: _Optional[str] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("timestamp", "model_state_changed", "request_finished")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MODEL_STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FINISHED_FIELD_NUMBER: _ClassVar[int]
    timestamp: float
    model_state_changed: ModelStateChanged
    request_finished: RequestFinished
    def __init__(self, timestamp: _Optional[float] = ..., model_state_changed: _Optional[_Union[ModelStateChanged, _Mapping]] = ..., request_finished: _Optional[_Union[RequestFinished, _Mapping]] = ...) -> None: ...
