"""The prepare step: everything a validated request needs before it can be
queued, in one blocking call on a worker thread — the output plan (tools,
response format and logit bias as the prompt and the sampler need them, with
the grammar built and checked), the prompt rendered with the chat template,
and its tokens."""

import random
from dataclasses import dataclass, replace
from typing import Protocol

from hearth.engine.domain import GenerateParams, ReasoningPlan, ReasoningRequest, SamplingParams
from hearth.engine.errors import ContextLengthExceeded, InvalidArgument, TemplateError
from hearth.engine.generation.validation import ValidGenerateParams
from hearth.engine.grammar.json_schema import json_object_grammar, json_schema_grammar
from hearth.engine.llama.model import MAX_BYTES_PER_TOKEN, LlamaModel
from hearth.engine.llama.sampling import GrammarRefused, Sampler
from hearth.engine.reasoning.formats import HARMONY, ReasoningFormat
from hearth.engine.reasoning.grammar import after_reasoning
from hearth.engine.reasoning.harmony import END, open_message
from hearth.engine.templates.chat_template import ChatTemplate, normalize_messages
from hearth.engine.tools.planning import ToolPlan, harmony_tools, plan_tools


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

    @property
    def reasoning(self) -> ReasoningFormat:
        """How the model marks its reasoning."""
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
    # How the scheduler follows the model's reasoning; None for a model that does not reason.
    reasoning: ReasoningPlan | None = None


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
        if served.reasoning.name == HARMONY:
            plan = harmony_tools(plan, params.tools)
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


def _template_variables(fmt: ReasoningFormat, request: ReasoningRequest) -> dict:
    """What the template's own switches are set to for ``request``."""
    variables: dict = {}
    if fmt.switch and request.enabled is not None:
        variables[fmt.switch] = request.enabled
    if fmt.effort and request.effort:
        variables[fmt.effort] = request.effort
    return variables


def rendered_prompt(served: ServedModel, params: GenerateParams, tools: list[dict] | None = None) -> str:
    """The text of the prompt: the messages rendered with the chat template
    (with ``tools`` and the reasoning switches in its context), or the raw prompt."""
    if params.messages is None:
        return params.prompt or ""
    if served.template is None:
        raise TemplateError(served.template_error or "the model has no usable chat template", param="messages")
    variables = _template_variables(served.reasoning, params.reasoning)
    return served.template.render(normalize_messages(params.messages), tools=tools, variables=variables)


def prompt_tokens(served: ServedModel, params: GenerateParams, tools: list[dict] | None = None) -> list[int]:
    """The prompt's tokens (see rendered_prompt)."""
    return _tokens(served, params, rendered_prompt(served, params, tools))


def _tokens(served: ServedModel, params: GenerateParams, text: str) -> list[int]:
    check_text_fits(text, served.n_ctx, param=_input_param(params), model=served.id)
    bos = served.template.bos_token if params.messages is not None and served.template is not None else ""
    # A template that writes the BOS token itself must not get a second one.
    tokens = served.model.tokenize(text, add_special=not (bos and text.startswith(bos)))
    if not tokens:
        raise InvalidArgument("The prompt is empty", param="prompt")
    return tokens


def reasoning_plan(served: ServedModel, params: GenerateParams, prompt: str, plan: ToolPlan) -> ReasoningPlan | None:
    """How the scheduler follows this request's reasoning: None for a model
    that does not reason, or a raw prompt. Off, where no template switch
    turned it off, is a budget of 0: the engine closes what the model opens.
    A harmony model forced to call a tool ends its analysis without opening
    the final channel: the call's commentary message follows."""
    fmt = served.reasoning
    if not fmt.reasons or params.messages is None:
        return None
    started = prompt.rstrip().endswith(fmt.open_tag)
    budget = params.reasoning.budget_tokens
    if params.reasoning.enabled is False:
        budget = 0
    closing, opened = fmt.closing, ""
    if fmt.name == HARMONY:
        opened = open_message(prompt)
        if plan.forced:
            closing = END
    close = _close_tokens(served.model, closing)
    return ReasoningPlan(fmt.open_tag, fmt.close_tag, started, budget, close, closing, opened)


def _close_tokens(model: LlamaModel, tag: str) -> tuple[int, ...]:
    """The tokens of ``tag`` alone: without the space a SentencePiece
    tokenizer puts before a text (the answer's own whitespace follows it)."""
    tokens = model.tokenize(tag, add_special=False)
    while len(tokens) > 1 and not model.token_piece(tokens[0], special=True).strip(b" \xe2\x96\x81"):
        tokens.pop(0)
    return tuple(tokens)


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
    text = rendered_prompt(served, params, plan.template_tools)
    tokens = _tokens(served, params, text)
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
    reasoning = reasoning_plan(served, params, text, plan)
    if reasoning is not None and sampling.grammar and not sampling.grammar_triggers:
        # A forced call or JSON answer comes after the thinking, not instead of it.
        grammar, triggers = after_reasoning(sampling.grammar, reasoning)
        sampling = replace(sampling, grammar=grammar, grammar_triggers=triggers)
    elif reasoning is not None and sampling.grammar and reasoning.started:
        # A call's marker in the thinking is not a call: its grammar waits for the answer.
        sampling = replace(sampling, grammar_triggers_after=reasoning.closing)
    samplers = samplers_for(served, sampling, params.n, param)
    max_new = min(params.max_tokens or room, room)
    return Prepared(tokens, plan, sampling, max_new, samplers, reasoning)
