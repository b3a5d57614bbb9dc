"""Responses API request bodies. Unknown fields are ignored, as in the chat
API; every string must be valid Unicode."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from hearth.adapter.common.request import LENIENT, RequestBody


class ContentPart(BaseModel):
    model_config = LENIENT
    type: str = Field(max_length=64)
    text: str | None = None


class InputItem(BaseModel):
    """A message (type "message", or a bare role), a function_call, a
    function_call_output, or a reasoning item from an earlier turn."""

    model_config = LENIENT
    type: str = Field(default="message", max_length=64)
    id: str | None = Field(default=None, max_length=256)
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[ContentPart] | None = None
    # function_call
    call_id: str | None = Field(default=None, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    # The namespace of a namespaced function's call (Codex's MCP tools).
    namespace: str | None = Field(default=None, max_length=256)
    arguments: str | None = None
    # function_call_output
    output: str | list[ContentPart] | None = None


class FunctionTool(BaseModel):
    """A function, a namespace of functions (Codex's MCP tools), or a hosted tool."""

    model_config = LENIENT
    type: str = Field(max_length=64)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    # A namespace's functions.
    tools: list["FunctionTool"] | None = Field(default=None, max_length=512)


class TextFormat(BaseModel):
    model_config = LENIENT
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextOptions(BaseModel):
    model_config = LENIENT
    format: TextFormat | None = None
    verbosity: str | None = None


class NamedFunction(BaseModel):
    model_config = LENIENT
    type: Literal["function"]
    name: str = Field(max_length=256)


class ResponsesRequest(RequestBody):
    model: str = Field(min_length=1, max_length=256)
    input: str | Annotated[list[InputItem], Field(max_length=100_000)]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = None
    top_p: float | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=512)
    tool_choice: Literal["auto", "none", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextOptions | None = None
    stream: bool = False
    store: bool | None = None
    previous_response_id: str | None = Field(default=None, max_length=256)
    # effort "none" turns a reasoning model's thinking off; other levels go to templates that take one.
    reasoning: dict[str, Any] | None = None
    include: list[str] | None = None
    prompt_cache_key: str | None = None
    client_metadata: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    user: str | None = None
    truncation: str | None = None
    service_tier: str | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)
    top_k: int | None = None
    min_p: float | None = None
