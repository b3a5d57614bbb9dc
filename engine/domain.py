"""The engine's domain types for generation: what is asked (parameters, tools),
what comes back (text pieces, calls, log-probabilities, ends), and the job a
scheduler runs. Pure data: imports nothing of the engine."""

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class FinishReason(enum.Enum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"


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
    # (token id, bias) pairs added to the logits; -100 bans a token.
    logit_bias: tuple[tuple[int, float], ...] = ()
    # A GBNF grammar the output must follow (root rule "root"); None: free text.
    grammar: str | None = None
    # With a grammar: when non-empty the grammar applies only from the first
    # occurrence of one of these words on (llama.cpp's lazy grammar), so the
    # model may write free text before, e.g., "<tool_call>".
    grammar_triggers: tuple[str, ...] = ()
    # With triggers: they count only after this text (where a reasoning ends); "": from the start.
    grammar_triggers_after: str = ""


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call."""

    name: str
    description: str
    # JSON Schema of the arguments object (parsed); {} for any object.
    parameters: dict


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    # The arguments as JSON object text.
    arguments: str


@dataclass(frozen=True)
class TopLogprob:
    token_id: int
    token: str
    bytes: bytes
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    token_id: int
    token: str
    bytes: bytes
    logprob: float
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True)
class ReasoningRequest:
    """Whether and how much a reasoning model thinks first."""

    # None: as the template does by default; True/False: on or off.
    enabled: bool | None = None
    # Reasoning tokens after which the engine closes the reasoning itself.
    budget_tokens: int | None = None
    # "low", "medium" or "high" for templates that take one; "" for none.
    effort: str = ""


@dataclass(frozen=True)
class GenerateParams:
    model: str
    # Exactly one of messages and prompt is set. A message is a dict with
    # "role" and "content", plus "tool_calls" (list of {"id", "type":
    # "function", "function": {"name", "arguments"}}) on assistant messages
    # and "tool_call_id"/"name" on tool messages, as chat templates expect.
    messages: list[dict] | None
    prompt: str | None
    max_tokens: int | None
    stop: tuple[str, ...]
    sampling: SamplingParams
    request_id: str
    # Sequences generated from the one prompt (OpenAI's n).
    n: int = 1
    tools: tuple[ToolSpec, ...] = ()
    # "auto", "none", "required" or "function" (then tool_choice_function names it).
    tool_choice: str = "auto"
    tool_choice_function: str = ""
    parallel_tool_calls: bool = True
    # "text", "json_object" or "json_schema" (then json_schema holds the schema).
    response_format: str = "text"
    json_schema: dict | None = None
    # None: no log-probabilities; else how many alternatives per token (0-20).
    top_logprobs: int | None = None
    # Seconds the model stays loaded after this request; negative: until
    # unloaded; None: as before.
    keep_alive: float | None = None
    reasoning: ReasoningRequest = ReasoningRequest()
    # Of DEFAULTABLE, the fields the request left unset: a model's own defaults may fill them.
    unset: frozenset[str] = frozenset()


# Request fields a model's config entry may give defaults for: the sampling
# parameters (SamplingParams' names), max_tokens and stop.
DEFAULTABLE = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "max_tokens",
    "stop",
)


@dataclass(frozen=True)
class TextPiece:
    text: str
    index: int = 0
    # Tokens sampled since the previous piece of this sequence (with logprobs).
    logprobs: tuple[TokenLogprob, ...] = ()
    # Tool calls completed since the previous piece of this sequence.
    tool_calls: tuple[ToolCall, ...] = ()
    # Reasoning text since the previous piece (kept out of text).
    reasoning: str = ""


@dataclass(frozen=True)
class ChoiceEnded:
    """Sequence ``index`` of a request with n > 1 ended; others go on."""

    index: int
    finish_reason: FinishReason
    # The stop string that ended it, when one did.
    stop_string: str = ""


@dataclass(frozen=True)
class Finished:
    """The request's last sequence ended: its reason, and the usage of the whole request."""

    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    index: int = 0
    # Prompt tokens served from a slot's cache instead of being evaluated.
    cached_prompt_tokens: int = 0
    # The stop string that ended the last sequence, when one did.
    stop_string: str = ""
    # Of completion_tokens, those generated inside the reasoning.
    reasoning_tokens: int = 0


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
    # None: no log-probabilities; else alternatives per token (0-20).
    top_logprobs: int | None = None
    # Write control tokens into the text (tool-call markers such as
    # [TOOL_CALLS] or <|python_tag|> are control tokens in some vocabularies).
    special_tokens_as_text: bool = False
    # One ready sampler per sequence, made off the decode thread (prepare);
    # the scheduler owns them once submit() returns. None: it makes its own.
    samplers: list | None = None
    # How the scheduler follows the reasoning of a reasoning model; None: it does not.
    reasoning: "ReasoningPlan | None" = None

    def close_samplers(self) -> None:
        for sampler in self.samplers or ():
            sampler.close()
        self.samplers = None


@dataclass(frozen=True)
class ReasoningPlan:
    """A request's reasoning as the scheduler follows it: the model's tags,
    whether the prompt opened them, the budget, and the tokens that close
    the reasoning when the budget is spent."""

    open_tag: str
    close_tag: str
    started: bool
    budget_tokens: int | None
    close_tokens: tuple[int, ...]
    # The text that ends the reasoning and begins the answer (close_tokens' text).
    closing: str = ""
    # Harmony: the message the prompt leaves open (its header so far), read by the output's parser.
    opened: str = ""


@dataclass(frozen=True)
class TokenizeParams:
    model: str
    # Exactly one of text (tokenized as is) and messages (rendered with the chat template).
    text: str | None
    messages: list[dict] | None
    add_special: bool = True
    # Tools rendered into the prompt with the messages, as generation renders them.
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True)
class EmbedParams:
    model: str
    inputs: tuple[str, ...]
    # Cut inputs longer than the context instead of failing.
    truncate: bool
    request_id: str
    # Seconds the model stays loaded after this request; None: as before.
    keep_alive: float | None = None


@dataclass(frozen=True)
class EmbedResult:
    # One L2-normalised float32 vector per input, in order.
    vectors: list[np.ndarray]
    prompt_tokens: int
