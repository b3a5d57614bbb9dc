"""OpenAI chat completions: request and response shapes."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hearth.adapter.openai.protocol.common import LENIENT, SamplingFields, Usage


class ContentPart(BaseModel):
    model_config = LENIENT
    type: str
    text: str | None = None


class FunctionCall(BaseModel):
    model_config = LENIENT
    name: str = Field(min_length=1, max_length=256)
    # JSON text, as OpenAI sends it; some clients send the object itself.
    arguments: str | dict[str, Any] = "{}"


class ToolCallIn(BaseModel):
    """A call in an assistant message of the history."""

    model_config = LENIENT
    id: str | None = Field(default=None, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = LENIENT
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=256)
    # An earlier answer's thinking, as this server (and llama-server, DeepSeek) returns it.
    reasoning_content: str | None = None


class FunctionDefinition(BaseModel):
    model_config = LENIENT
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    # Hearth always enforces the schema when it forces a call; accepted.
    strict: bool | None = None


class ToolDefinition(BaseModel):
    model_config = LENIENT
    type: str
    function: FunctionDefinition | None = None


class NamedFunction(BaseModel):
    model_config = LENIENT
    name: str


class NamedToolChoice(BaseModel):
    model_config = LENIENT
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(BaseModel):
    model_config = LENIENT
    name: str | None = None
    description: str | None = None
    # OpenAI calls it "schema"; accepted as an alias.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = LENIENT
    type: str
    json_schema: JsonSchemaFormat | None = None


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1, max_length=10_000)
    max_tokens: int | None = Field(default=None, ge=0)
    max_completion_tokens: int | None = Field(default=None, ge=0)
    tools: list[ToolDefinition] | None = Field(default=None, max_length=256)
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0)
    # Output kinds and features a text model cannot give; refused unless text.
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    # Accepted and meaningless here.
    store: bool | None = None
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None
    # "none" turns a reasoning model's thinking off; "low", "medium", "high" go to templates that take one.
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    # llama-server's: reasoning tokens at most (-1: no limit, 0: no thinking).
    reasoning_budget: int | None = Field(default=None, ge=-1)
    # Template variables; enable_thinking is the one read (vLLM's and llama-server's switch for Qwen3).
    chat_template_kwargs: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None


class FunctionCallOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = None
    refusal: None = None
    # A reasoning model's thinking, apart from content (left out when it did not think).
    reasoning_content: str | None = None


class TopLogprobOut(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobOut(TopLogprobOut):
    top_logprobs: list[TopLogprobOut]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None
    refusal: None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class FunctionDelta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    """A streamed fragment of a call: id, type and name only in the first."""

    model_config = ConfigDict(extra="forbid")
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionDelta


class ChatDelta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    system_fingerprint: str | None = None
    usage: Usage | None = None
