"""Request fields shared by the chat and completions endpoints."""

from typing import Annotated

from pydantic import BaseModel, Field

from hearth.adapter.common.request import LENIENT, RequestBody

StopField = Annotated[str | list[str] | None, Field(default=None, description="Up to 16 stop strings.")]


class StreamOptions(BaseModel):
    model_config = LENIENT
    include_usage: bool = False


class OpenAIRequest(RequestBody):
    """An OpenAI request body (see RequestBody)."""


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


class CompletionTokensDetails(BaseModel):
    # Completion tokens the model spent reasoning.
    reasoning_tokens: int


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
