"""Request fields shared by the chat and completions endpoints."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hearth.adapter.common.errors import invalid_request
from hearth.adapter.common.text import lone_surrogate_at

# Real clients send vendor fields we do not know; they are ignored, not refused.
LENIENT = ConfigDict(extra="ignore")

StopField = Annotated[str | list[str] | None, Field(default=None, description="Up to 16 stop strings.")]


class StreamOptions(BaseModel):
    model_config = LENIENT
    include_usage: bool = False


class OpenAIRequest(BaseModel):
    """A request body: unknown fields ignored, every string valid Unicode."""

    model_config = LENIENT

    @model_validator(mode="before")
    @classmethod
    def _text_is_unicode(cls, data: Any) -> Any:
        if where := lone_surrogate_at(data):
            raise invalid_request(
                f"Invalid value for '{where}': the text is not valid Unicode", param=where, code="invalid_value"
            )
        return data


class SamplingFields(OpenAIRequest):
    """Sampling controls every generation endpoint accepts."""

    model: str = Field(min_length=1, max_length=256)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = Field(default=None, ge=0)
    stop: StopField
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # Extensions that llama.cpp, Ollama and vLLM clients send.
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None


class PromptTokensDetails(BaseModel):
    # Prompt tokens served from the KV cache of an earlier request.
    cached_tokens: int


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
