"""The one validation gate for domain rules: a request passes here once, and
what comes out is a validated type that the later steps take. Adapters and
the gRPC conversion refuse only what is specific to their wire format; every
limit lives in generation.limits. Rules that need the loaded model (the
vocabulary, the context) are checked by prepare."""

import math
from dataclasses import dataclass, fields

from hearth.engine.domain import EmbedParams, GenerateParams
from hearth.engine.errors import InvalidArgument, ModelInvalid
from hearth.engine.generation.limits import (
    MAX_LOGIT_BIAS,
    MAX_STOP_STRING_CHARS,
    MAX_STOP_STRINGS,
    MAX_TOOLS,
    MAX_TOP_LOGPROBS,
    SAMPLING_RANGES,
)
from hearth.engine.models.registry import ModelRecord

TOOL_CHOICES = ("auto", "none", "required", "function")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


@dataclass(frozen=True)
class ValidGenerateParams(GenerateParams):
    """GenerateParams that passed validate_generate for its model."""


def check_keep_alive(keep_alive: float | None) -> None:
    """A request's keep-alive is seconds (negative: until unloaded) or unset."""
    if keep_alive is not None and math.isnan(keep_alive):
        raise InvalidArgument("'keep_alive' must be a number of seconds", param="keep_alive")


def check_usable(record: ModelRecord) -> None:
    if record.invalid_reason:
        raise ModelInvalid(
            f"The model '{record.id}' cannot be used: {record.invalid_reason}", param="model", model=record.id
        )


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # NaN fails too
        raise InvalidArgument(f"'{name}' must be between {low:g} and {high:g}, got {value}", param=name)


def _check_sampling(params: GenerateParams) -> None:
    for name, (low, high) in SAMPLING_RANGES.items():
        _check_range(name, getattr(params.sampling, name), low, high)
    for token, bias in params.sampling.logit_bias:
        if not -MAX_LOGIT_BIAS <= bias <= MAX_LOGIT_BIAS:
            raise InvalidArgument(
                f"'logit_bias' values must be between {-MAX_LOGIT_BIAS:g} and {MAX_LOGIT_BIAS:g}; "
                f"token {token} has {bias}",
                param="logit_bias",
            )


def _check_input(params: GenerateParams) -> None:
    if (params.messages is None) == (params.prompt is None):
        raise InvalidArgument("Give exactly one of 'messages' and 'prompt'", param="messages")
    if params.messages is not None and not params.messages:
        raise InvalidArgument("'messages' must not be empty", param="messages")
    if params.prompt is not None and not params.prompt:
        raise InvalidArgument("The prompt must not be empty", param="prompt")


def _check_output(params: GenerateParams, record: ModelRecord, max_sequences: int) -> None:
    if params.max_tokens is not None and not 1 <= params.max_tokens <= record.max_output_tokens:
        raise InvalidArgument(
            f"'max_tokens' must be between 1 and {record.max_output_tokens} for model '{record.id}'",
            param="max_tokens",
        )
    if not 1 <= params.n <= max_sequences:
        raise InvalidArgument(
            f"'n' must be between 1 and {max_sequences}, the sequences a model serves at once", param="n"
        )
    if len(params.stop) > MAX_STOP_STRINGS:
        raise InvalidArgument(f"At most {MAX_STOP_STRINGS} stop strings are allowed", param="stop")
    if any(len(stop) > MAX_STOP_STRING_CHARS for stop in params.stop):
        raise InvalidArgument(f"A stop string may be at most {MAX_STOP_STRING_CHARS} characters", param="stop")
    if params.top_logprobs is not None and not 0 <= params.top_logprobs <= MAX_TOP_LOGPROBS:
        raise InvalidArgument(
            f"'top_logprobs' must be between 0 and {MAX_TOP_LOGPROBS}, got {params.top_logprobs}",
            param="top_logprobs",
        )
    if params.response_format not in RESPONSE_FORMATS:
        raise InvalidArgument(f"Unknown response_format '{params.response_format}'", param="response_format")
    if params.response_format == "json_schema" and not isinstance(params.json_schema, dict):
        raise InvalidArgument(
            "'response_format.json_schema' must be a JSON Schema object", param="response_format.json_schema"
        )


def _check_tools(params: GenerateParams) -> None:
    if params.tool_choice not in TOOL_CHOICES:
        raise InvalidArgument(f"Unknown tool_choice '{params.tool_choice}'", param="tool_choice")
    if len(params.tools) > MAX_TOOLS:
        raise InvalidArgument(f"At most {MAX_TOOLS} tools are allowed", param="tools")
    names = [tool.name for tool in params.tools]
    for index, name in enumerate(names):
        if not name:
            raise InvalidArgument("Every tool needs a function name", param=f"tools[{index}].function.name")
    if params.tool_choice in ("required", "function") and not params.tools:
        raise InvalidArgument(f"tool_choice '{params.tool_choice}' needs tools", param="tool_choice")
    if params.tool_choice == "function" and params.tool_choice_function not in names:
        raise InvalidArgument(
            f"tool_choice names '{params.tool_choice_function}', which is not among the tools", param="tool_choice"
        )
    if params.tools and params.messages is None:
        raise InvalidArgument("'tools' need 'messages'; a raw prompt cannot use them", param="tools")
    if params.tools and params.tool_choice != "none" and params.response_format != "text":
        raise InvalidArgument(
            "'response_format' cannot be combined with 'tools' (unless tool_choice is 'none')",
            param="response_format",
        )


def validate_generate(params: GenerateParams, record: ModelRecord, *, max_sequences: int) -> ValidGenerateParams:
    """``params`` checked against every domain rule and ``record``'s limits;
    InvalidArgument (or ModelInvalid) naming the first field that breaks one.
    ``max_sequences``: the sequences one model serves at once."""
    _check_input(params)
    _check_sampling(params)
    _check_output(params, record, max_sequences)
    _check_tools(params)
    check_keep_alive(params.keep_alive)
    check_usable(record)
    return ValidGenerateParams(**{f.name: getattr(params, f.name) for f in fields(GenerateParams)})


def validate_embed(params: EmbedParams) -> None:
    if not params.inputs:
        raise InvalidArgument("'input' must hold at least one text", param="input")
    for i, text in enumerate(params.inputs):
        if not text:
            raise InvalidArgument(f"'input[{i}]' is empty; every input must be a non-empty text", param="input")
    check_keep_alive(params.keep_alive)


def validate_tokenize(text: str | None, messages: list[dict] | None) -> None:
    if (text is None) == (messages is None):
        raise InvalidArgument("Give exactly one of 'text' and 'messages'", param="text")
    if messages is not None and not messages:
        raise InvalidArgument("'messages' must not be empty", param="messages")
    if text is not None and not text:
        raise InvalidArgument("Give a non-empty 'text' or 'messages'", param="text")
