"""Tool calling: what the prompt and the sampler get for a request's tools and
tool_choice, and the calls read back out of the model's text.

The call formats are read in tool_formats, the streaming extractors live in
tool_extractors and the grammars for calls in tool_grammars; this module
plans a request's tools (``plan_tools``, ``ToolPlan``)."""

from dataclasses import dataclass, replace

from hearth.engine.errors import InvalidArgument
from hearth.engine.requests import GenerateParams, ToolSpec

# ToolCallExtractor and AutoExtractor stay importable from here (generation.py
# and the tests import them from this module).
from hearth.engine.tool_extractors import (
    AutoExtractor,
    ForcedExtractor,
    ToolCallExtractor,
)
from hearth.engine.tool_grammars import (
    _call_marker,
    forced_call_grammar,
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


def plan_tools(
    params: GenerateParams, template_family: str | None, template_source: str | None = None
) -> ToolPlan:
    """The plan for ``params``' tools; ``template_family`` is the built-in
    template's name ("gemma", "llama3", "chatml", "mistral", "phi3") or None
    for a model's own template (then the family is guessed from its text,
    ``template_source``, when given)."""
    if not params.tools or params.tool_choice == "none":
        return ToolPlan()
    tools = params.tools
    if params.tool_choice == "function":
        tools = tuple(tool for tool in params.tools if tool.name == params.tool_choice_function)
        if not tools:
            raise InvalidArgument(
                f"tool_choice names '{params.tool_choice_function}', which is not among the tools", param="tool_choice"
            )
    elif params.tool_choice not in ("auto", "required"):
        raise InvalidArgument(f"Unknown tool_choice '{params.tool_choice}'", param="tool_choice")
    plan = ToolPlan(
        template_tools=openai_tools(tools),
        extracts=True,
        tool_names=frozenset(tool.name for tool in tools),
        parallel=params.parallel_tool_calls,
    )
    if params.tool_choice in ("required", "function"):
        grammar = forced_call_grammar(tools, parallel=params.parallel_tool_calls)
        return replace(plan, grammar=grammar, forced=True)
    marker = _call_marker(template_family, template_source)
    if marker is None:
        return plan
    grammar = lazy_call_grammar(tools, start=marker, parallel=params.parallel_tool_calls)
    return replace(plan, grammar=grammar, grammar_triggers=(marker,))
