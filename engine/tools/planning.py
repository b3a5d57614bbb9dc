"""Planning a request's tools: what the prompt and the sampler get for its
tools and tool_choice (``plan_tools``, ``ToolPlan``). The call formats are
read in formats, the streaming extractors live in extractors and the
grammars for calls in grammars."""

from dataclasses import dataclass, replace

from hearth.engine.domain import GenerateParams, ToolSpec
from hearth.engine.tools.extractors import (
    AutoExtractor,
    ForcedExtractor,
    ToolCallExtractor,
)
from hearth.engine.tools.grammars import (
    call_marker,
    forced_call_grammar,
    harmony_call_grammar,
    lazy_call_grammar,
)


def openai_tools(tools: tuple[ToolSpec, ...] | list[ToolSpec]) -> list[dict]:
    """Tools as chat templates expect them (OpenAI's shape)."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]


@dataclass(frozen=True)
class ToolPlan:
    # Tools as the chat template receives them (OpenAI's [{"type": "function",
    # "function": {...}}]); None: the template gets no tools.
    template_tools: list[dict] | None = None
    # GBNF grammar the output must follow, and its lazy triggers (see SamplingParams).
    grammar: str | None = None
    grammar_triggers: tuple[str, ...] = ()
    # Whether outputs are read for tool calls (a new extractor per sequence).
    extracts: bool = False
    # The names calls may use; whether the whole output is the call(s) (forced);
    # whether more than one call is kept.
    tool_names: frozenset[str] = frozenset()
    forced: bool = False
    parallel: bool = True

    def new_extractor(self) -> ToolCallExtractor:
        if not self.extracts:
            return ToolCallExtractor()
        if self.forced:
            return ForcedExtractor(self.tool_names, self.parallel)
        return AutoExtractor(self.tool_names, self.parallel)


def plan_tools(params: GenerateParams, template_family: str | None, template_source: str | None = None) -> ToolPlan:
    """The plan for ``params``' tools; ``template_family`` is the built-in
    template's name ("gemma", "llama3", "chatml", "mistral", "phi3") or None
    for a model's own template (then the family is guessed from its text,
    ``template_source``, when given)."""
    if not params.tools or params.tool_choice == "none":
        return ToolPlan()
    tools = params.tools
    # The validation gate made sure a named function is among the tools.
    if params.tool_choice == "function":
        tools = tuple(tool for tool in params.tools if tool.name == params.tool_choice_function)
    # A named function means one call of it, as OpenAI answers it.
    parallel = params.parallel_tool_calls and params.tool_choice != "function"
    plan = ToolPlan(
        template_tools=openai_tools(tools),
        extracts=True,
        tool_names=frozenset(tool.name for tool in tools),
        parallel=parallel,
    )
    if params.tool_choice in ("required", "function"):
        grammar = forced_call_grammar(tools, parallel=parallel)
        return replace(plan, grammar=grammar, forced=True)
    marker = call_marker(template_family, template_source)
    if marker is None:
        return plan
    grammar = lazy_call_grammar(tools, start=marker, parallel=parallel)
    return replace(plan, grammar=grammar, grammar_triggers=(marker,))


def harmony_tools(plan: ToolPlan, tools: tuple[ToolSpec, ...]) -> ToolPlan:
    """``plan`` for gpt-oss, which addresses a call to its tool in a
    commentary message: a forced call gets that message's grammar; calls the
    model chooses to make need none (the harmony reader finds them)."""
    if not plan.extracts:
        return plan
    if plan.forced:
        chosen = tuple(tool for tool in tools if tool.name in plan.tool_names)
        return replace(plan, grammar=harmony_call_grammar(chosen), grammar_triggers=())
    return replace(plan, grammar=None, grammar_triggers=())
