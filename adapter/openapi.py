"""What /openapi.json (and so FastAPI's /docs) says beyond each route's own
models: the API families as tags, and each family's error body.

Every route answers its errors in its family's shape (common.errors.error_response
picks it by path), request validation errors included: those are 400s, never
FastAPI's 422 (whose HTTPValidationError body no route sends). Declaring 4XX and
5XX responses per family documents that shape and keeps FastAPI from adding 422."""

from typing import Any, Literal

from pydantic import BaseModel

OPENAI = "OpenAI"
ANTHROPIC = "Anthropic"
OLLAMA = "Ollama"
SERVER = "Server"

TAGS = [
    {
        "name": OPENAI,
        "description": "The OpenAI API under /v1 (Chat Completions, Completions, Embeddings, Models, Responses), "
        "and /tokenize and /detokenize as vLLM and llama.cpp's server have them.",
    },
    {"name": ANTHROPIC, "description": "The Anthropic Messages API under /v1/messages."},
    {"name": OLLAMA, "description": "Ollama's native API under /api."},
    {"name": SERVER, "description": "Of no API family: health, Prometheus metrics, and / (Ollama clients probe it)."},
]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error body, which every route outside /api/ and /v1/messages answers with."""

    error: OpenAIErrorDetail


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicErrorResponse(BaseModel):
    """Anthropic's error body, under /v1/messages."""

    type: Literal["error"]
    error: AnthropicErrorDetail


class OllamaErrorResponse(BaseModel):
    """Ollama's error body, under /api/."""

    error: str


def error_responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The 4XX and 5XX responses of a family whose error body is ``model``."""
    return {
        "4XX": {"model": model, "description": "The request is refused (invalid, unknown model, missing API key…)"},
        "5XX": {"model": model, "description": "The engine failed or is unavailable, or the feature is not supported"},
    }


def streamed(model: type[BaseModel] | None, media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 that is one JSON object (``model`` where the route has one) or a
    stream of ``media_type``, as the request's ``stream`` field asks."""
    response: dict[str, Any] = {
        "description": description,
        "content": {media_type: {"schema": {"type": "string", "description": description}}},
    }
    if model is not None:
        response["model"] = model
    return {200: response}
