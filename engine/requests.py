"""Domain types for generation: what is asked, and what comes back."""

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class FinishReason(enum.Enum):
    STOP = "stop"
    LENGTH = "length"


@dataclass(frozen=True)
class SamplingParams:
    # Defaults as Ollama and llama.cpp's server use them.
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    # None: a fresh random seed per request.
    seed: int | None = None


@dataclass(frozen=True)
class GenerateParams:
    model: str
    # Exactly one of messages and prompt is set.
    messages: list[dict[str, str]] | None
    prompt: str | None
    max_tokens: int | None
    stop: tuple[str, ...]
    sampling: SamplingParams
    request_id: str
    # Sequences generated from the one prompt (OpenAI's n).
    n: int = 1


@dataclass(frozen=True)
class TextPiece:
    text: str
    index: int = 0


@dataclass(frozen=True)
class ChoiceEnded:
    """Sequence ``index`` of a request with n > 1 ended; others go on."""

    index: int
    finish_reason: FinishReason


@dataclass(frozen=True)
class Finished:
    """The request's last sequence ended: its reason, and the usage of the whole request."""

    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    index: int = 0
    # Prompt tokens served from a slot's cache instead of being evaluated.
    cached_prompt_tokens: int = 0


@dataclass(frozen=True)
class Cancelled:
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    error: BaseException


GenerationEvent = TextPiece | ChoiceEnded | Finished | Cancelled | Failed


@dataclass
class GenerationJob:
    """One request as a scheduler sees it: tokens in, events out through sink."""

    request_id: str
    prompt_tokens: list[int]
    max_new_tokens: int
    stop: tuple[str, ...]
    sampling: SamplingParams
    n: int
    # Called from the scheduler's thread; must be thread-safe.
    sink: Callable[[GenerationEvent], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    enqueued_at: float = field(default_factory=time.monotonic)
