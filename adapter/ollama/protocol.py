"""Ollama's request bodies (docs/api.md), as lenient pydantic models: fields
that Ollama clients send and Hearth does not know are ignored, as Ollama does."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hearth.adapter.common.text import lone_surrogate_at
from hearth.adapter.ollama.errors import bad_request

LENIENT = ConfigDict(extra="ignore")

# keep_alive: a Go duration ("5m", "1h30m"), a number of seconds, or a string of one.
KeepAlive = float | str | None


class OllamaRequest(BaseModel):
    model_config = LENIENT

    @model_validator(mode="before")
    @classmethod
    def _text_is_unicode(cls, data: Any) -> Any:
        # JSON may escape a lone surrogate ("\ud800"); protobuf cannot carry it.
        if where := lone_surrogate_at(data):
            raise bad_request(f"invalid value for '{where}': the text is not valid Unicode")
        return data


class NamedModelRequest(OllamaRequest):
    """A request naming one model; older clients send it as ``name``."""

    model: str = Field(min_length=1, max_length=512)

    @model_validator(mode="before")
    @classmethod
    def _legacy_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model") and data.get("name"):
            data = {**data, "model": data["name"]}
        return data


class FunctionCall(BaseModel):
    model_config = LENIENT
    name: str = Field(min_length=1)
    # An object, as Ollama sends it; some clients send the JSON text instead.
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class ToolCall(BaseModel):
    model_config = LENIENT
    function: FunctionCall


class Message(BaseModel):
    model_config = LENIENT
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    images: list[Any] | None = None
    tool_calls: list[ToolCall] | None = None
    # On a "tool" message: which tool produced it.
    tool_name: str | None = None
    # The assistant's reasoning in earlier turns (templates mostly drop it).
    thinking: str | None = None


class ToolFunction(BaseModel):
    model_config = LENIENT
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    model_config = LENIENT
    type: str = "function"
    function: ToolFunction


class GenerationFields(NamedModelRequest):
    """What /api/chat and /api/generate share."""

    stream: bool = True
    # "json", a JSON schema object, or ""/None for free text.
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None
    think: bool | str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0)


class ChatRequest(GenerationFields):
    messages: list[Message] = Field(default_factory=list, max_length=10_000)
    tools: list[Tool] | None = None


class GenerateRequest(GenerationFields):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[Any] | None = None


class EmbedRequest(NamedModelRequest):
    input: str | list[str] = ""
    # Ollama cuts inputs longer than the context unless told not to.
    truncate: bool = True
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None
    dimensions: int | None = None


class EmbeddingsRequest(NamedModelRequest):
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None


class ShowRequest(NamedModelRequest):
    verbose: bool = False


class PullRequest(NamedModelRequest):
    stream: bool = True
    insecure: bool = False


class DeleteRequest(NamedModelRequest):
    pass


class CopyRequest(OllamaRequest):
    source: str = Field(min_length=1, max_length=512)
    destination: str = Field(min_length=1, max_length=512)
