"""Tokenize and detokenize (vLLM's and llama.cpp server's extension endpoints)."""

from pydantic import BaseModel, Field

from hearth.adapter.openai.protocol.chat import ChatMessage
from hearth.adapter.openai.protocol.common import OpenAIRequest


class TokenizeRequest(OpenAIRequest):
    model: str = Field(min_length=1, max_length=256)
    # One of: prompt (vLLM), content (llama.cpp server), messages (chat, rendered with the template).
    prompt: str | None = None
    content: str | None = None
    messages: list[ChatMessage] | None = Field(default=None, min_length=1, max_length=10_000)
    add_special_tokens: bool = True
    with_pieces: bool = False


class TokenizeResponse(BaseModel):
    tokens: list[int]
    count: int
    max_model_len: int
    pieces: list[str] | None = None


class DetokenizeRequest(OpenAIRequest):
    model: str = Field(min_length=1, max_length=256)
    tokens: list[int] = Field(max_length=1_048_576)


class DetokenizeResponse(BaseModel):
    prompt: str
