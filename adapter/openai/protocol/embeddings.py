"""OpenAI embeddings: request and response shapes."""

from typing import Literal

from pydantic import BaseModel, Field

from hearth.adapter.openai.protocol.common import OpenAIRequest

# OpenAI's own limit on inputs per request.
MAX_INPUTS = 2048


class EmbeddingRequest(OpenAIRequest):
    model: str = Field(min_length=1, max_length=256)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    # Accepted and meaningless here.
    user: str | None = None


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    # A list of floats, or with encoding_format "base64" the little-endian float32 bytes.
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage
