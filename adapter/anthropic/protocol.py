"""Anthropic Messages request and response bodies. Unknown fields are
ignored (the SDKs and Claude Code send new ones often); every string must be
valid Unicode."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from hearth.adapter.common.request import LENIENT, RequestBody


class ContentBlock(BaseModel):
    """One block of a message: text, tool_use, tool_result, thinking, or a
    kind Hearth refuses by name (image, document)."""

    model_config = LENIENT
    type: str = Field(max_length=64)
    text: str | None = None
    # tool_use
    id: str | None = Field(default=None, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    input: dict[str, Any] | None = None
    # tool_result
    tool_use_id: str | None = Field(default=None, max_length=256)
    content: str | list["ContentBlock"] | None = None
    is_error: bool | None = None
    # thinking (from an earlier turn; passed to the template, which mostly drops it)
    thinking: str | None = None


class Message(BaseModel):
    model_config = LENIENT
    role: Literal["user", "assistant", "system"]
    content: str | Annotated[list[ContentBlock], Field(max_length=100_000)]


class ToolDefinition(BaseModel):
    model_config = LENIENT
    name: str = Field(min_length=1, max_length=256)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    # Absent or "custom" for a client tool; server tools (web_search_…, bash_…) have their own.
    type: str | None = Field(default=None, max_length=64)


class ToolChoice(BaseModel):
    model_config = LENIENT
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = Field(default=None, max_length=256)
    disable_parallel_tool_use: bool | None = None


class MessagesRequest(RequestBody):
    model: str = Field(min_length=1, max_length=256)
    # A cap: clamped to what the model can write (Claude Code asks for 32000).
    max_tokens: int = Field(ge=1)
    messages: list[Message] = Field(min_length=1, max_length=10_000)
    system: str | list[ContentBlock] | None = None
    stop_sequences: list[str] | None = Field(default=None, max_length=16)
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[ToolDefinition] | None = Field(default=None, max_length=512)
    tool_choice: ToolChoice | None = None
    # enabled (budget_tokens), adaptive or disabled; a model without reasoning answers without thinking blocks.
    thinking: dict[str, Any] | None = None
    # Its effort goes to templates that take one; the rest is accepted.
    output_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class CountTokensRequest(RequestBody):
    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1, max_length=10_000)
    system: str | list[ContentBlock] | None = None
    tools: list[ToolDefinition] | None = Field(default=None, max_length=512)
    tool_choice: ToolChoice | None = None
    thinking: dict[str, Any] | None = None


class Usage(BaseModel):
    # Prompt tokens evaluated for this request; those the prefix cache held are cache_read_input_tokens.
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class MessageResponse(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[dict[str, Any]]
    stop_reason: Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"] | None
    stop_sequence: str | None = None
    usage: Usage
