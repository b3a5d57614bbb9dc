"""Tool calling: what the prompt and the sampler get for a request's tools and
tool_choice, and the calls read back out of the model's text.

(Interface in place; the parsers and grammars are being filled in.)"""

from dataclasses import dataclass, field

from hearth.engine.requests import GenerateParams, ToolCall


class ToolCallExtractor:
    """One sequence's output text in; text to show and completed tool calls out."""

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        return text, []

    def finish(self) -> tuple[str, list[ToolCall]]:
        """End of the sequence: what was held back, and the calls it made."""
        return "", []


@dataclass(frozen=True)
class ToolPlan:
    # Tools as the chat template receives them (OpenAI's [{"type": "function",
    # "function": {...}}]); None: the template gets no tools.
    template_tools: list[dict] | None = None
    # GBNF grammar the output must follow, and its lazy triggers (see SamplingParams).
    grammar: str | None = None
    grammar_triggers: tuple[str, ...] = ()
    # Extra stop strings for this format.
    stop: tuple[str, ...] = field(default_factory=tuple)
    # Whether outputs are read for tool calls (a new extractor per sequence).
    extracts: bool = False

    def new_extractor(self) -> ToolCallExtractor:
        return ToolCallExtractor()


def plan_tools(params: GenerateParams, template_family: str | None) -> ToolPlan:
    """The plan for ``params``' tools; ``template_family`` is the built-in
    template's name ("gemma", "llama3", "chatml", "mistral", "phi3") or None
    for a model's own template (then the family is guessed from its text)."""
    return ToolPlan()
