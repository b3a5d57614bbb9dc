"""The prepare step: everything a validated request needs before it can be
queued, in one blocking call on a worker thread — the output plan (tools,
response format and logit bias as the prompt and the sampler need them, with
the grammar built and checked), the prompt rendered with the chat template,
and its tokens."""

import random
from dataclasses import dataclass, replace
from typing import Protocol

from hearth.engine.domain import GenerateParams, SamplingParams
from hearth.engine.errors import ContextLengthExceeded, InvalidArgument, TemplateError
from hearth.engine.generation.validation import ValidGenerateParams
from hearth.engine.grammar.json_schema import json_object_grammar, json_schema_grammar
from hearth.engine.llama.model import MAX_BYTES_PER_TOKEN, LlamaModel
from hearth.engine.llama.sampling import GrammarRefused, Sampler
from hearth.engine.templates.chat_template import ChatTemplate, normalize_messages
from hearth.engine.tools.planning import ToolPlan, plan_tools


class ServedModel(Protocol):
    """What prepare needs of a loaded model (runtime's LoadedModel is one)."""

    model: LlamaModel
    template: ChatTemplate | None
    # Why the model has no template, when it has none.
    template_error: str | None

    @property
    def id(self) -> str: ...

    @property
    def n_ctx(self) -> int:
        """Context of one sequence: prompt plus output must fit in it."""
        ...

    @property
    def trained_n_ctx(self) -> int:
        """The context the model was trained with (0 if its file does not say)."""
        ...


@dataclass(frozen=True)
class Prepared:
    tokens: list[int]
    plan: ToolPlan
    sampling: SamplingParams
    # New tokens the sequence may generate: the request's max_tokens within the room left.
    max_new_tokens: int
    # One sampler per sequence, grammar parsed (the scheduler takes them over).
    samplers: list[Sampler]


def _input_param(params: GenerateParams) -> str:
    return "messages" if params.messages is not None else "prompt"


def output_plan(served: ServedModel, params: GenerateParams) -> tuple[ToolPlan, SamplingParams, str]:
    """What the request's tools, response_format and logit_bias ask of the
    prompt and the sampler: the tool plan, the sampling parameters with its
    grammar, and the field the grammar comes from."""
    n_vocab = served.model.n_vocab()
    for token, _ in params.sampling.logit_bias:
        if not 0 <= token < n_vocab:
            raise InvalidArgument(
                f"'logit_bias' names token {token}, outside this model's vocabulary (0-{n_vocab - 1})",
                param="logit_bias",
            )
    plan = ToolPlan()
    if params.tools:
        template = served.template
        plan = plan_tools(params, template.family if template else None, template.source if template else None)
    grammar, triggers, param = plan.grammar, plan.grammar_triggers, "tools"
    if params.response_format == "json_object":
        grammar, triggers, param = json_object_grammar(), (), "response_format"
    elif params.response_format == "json_schema":
        grammar, triggers, param = json_schema_grammar(params.json_schema or {}), (), "response_format.json_schema"
    return plan, replace(params.sampling, grammar=grammar, grammar_triggers=tuple(triggers)), param


def samplers_for(served: ServedModel, sampling: SamplingParams, n: int, param: str) -> list[Sampler]:
    """One sampler per sequence (seeds seed, seed+1, ...), grammars parsed here."""
    seed = sampling.seed if sampling.seed is not None else random.getrandbits(32)
    samplers: list[Sampler] = []
    try:
        for index in range(n):
            samplers.append(Sampler(sampling, (seed + index) % 2**32, served.model))
    except BaseException as exc:
        for sampler in samplers:
            sampler.close()
        if isinstance(exc, GrammarRefused):
            what = "the tools' argument schemas" if param == "tools" else "'response_format'"
            raise InvalidArgument(f"No usable grammar could be built from {what}", param=param) from None
        raise
    return samplers


def check_text_fits(text: str, n_ctx: int, *, param: str, model: str, what: str = "prompt") -> None:
    """A text this long cannot fit (see MAX_BYTES_PER_TOKEN): refused before tokenizing."""
    if len(text.encode("utf-8", "replace")) > n_ctx * MAX_BYTES_PER_TOKEN:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {n_ctx} tokens; the {what} is far longer.",
            param=param,
            model=model,
        )


def prompt_tokens(served: ServedModel, params: GenerateParams, tools: list[dict] | None = None) -> list[int]:
    """The prompt's tokens: the messages rendered with the chat template (with
    ``tools`` in its context), or the raw prompt."""
    if params.messages is not None:
        if served.template is None:
            raise TemplateError(served.template_error or "the model has no usable chat template", param="messages")
        text = served.template.render(normalize_messages(params.messages), tools=tools)
        bos = served.template.bos_token
    else:
        text, bos = params.prompt or "", ""
    check_text_fits(text, served.n_ctx, param=_input_param(params), model=served.id)
    # A template that writes the BOS token itself must not get a second one.
    tokens = served.model.tokenize(text, add_special=not (bos and text.startswith(bos)))
    if not tokens:
        raise InvalidArgument("The prompt is empty", param="prompt")
    return tokens


def _raise_hint(served: ServedModel) -> str:
    """What sets the context, when the model could be served with more."""
    if served.n_ctx >= served.trained_n_ctx:
        return ""
    return (
        f" This server serves the model with {served.n_ctx} of the {served.trained_n_ctx} tokens it was trained "
        "for: raise LLM_CONTEXT_SIZE (or the model's context_window in the config file), or LLM_MEMORY_BUDGET "
        "when it left no room for more."
    )


def prepare(served: ServedModel, params: ValidGenerateParams) -> Prepared:
    """The output plan and the prompt's tokens of a validated request. Blocking."""
    plan, sampling, param = output_plan(served, params)
    tokens = prompt_tokens(served, params, plan.template_tools)
    # The n sequences share the prompt's cells and need one more each.
    room = served.n_ctx - len(tokens) - (params.n - 1)
    if room <= 0:
        choices = f" and {params.n} choices need one token each beyond it" if params.n > 1 else ""
        raise ContextLengthExceeded(
            f"This model's maximum context length is {served.n_ctx} tokens. However, your prompt "
            f"resulted in {len(tokens)} tokens{choices}. Please reduce the length of the prompt.{_raise_hint(served)}",
            param=_input_param(params),
            model=served.id,
        )
    samplers = samplers_for(served, sampling, params.n, param)
    return Prepared(tokens, plan, sampling, min(params.max_tokens or room, room), samplers)
