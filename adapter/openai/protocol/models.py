"""OpenAI model listing shapes, with the context facts clients ask for."""

from typing import Literal

from pydantic import BaseModel


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "hearth"
    context_window: int
    max_output_tokens: int
    architecture: str
    quantization: str
    parameter_count: int
    state: str
    # Hearth's extensions: whether it is in memory now, how much it takes, and what it can do.
    loaded: bool
    memory_bytes: int
    capabilities: list[str]
    # How it marks its reasoning ("think"), or "none".
    reasoning_format: str = "none"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
