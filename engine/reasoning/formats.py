"""How a model marks its reasoning, read from its chat template (the way
llama.cpp's common chat code tells formats apart), or set in its config entry."""

from dataclasses import dataclass

from hearth.engine.reasoning.harmony import CHANNEL, END, OPEN_ANALYSIS, TO_FINAL

THINK = "think"
HARMONY = "harmony"
NONE = "none"
FORMATS = (THINK, HARMONY, NONE)


@dataclass(frozen=True)
class ReasoningFormat:
    name: str
    open_tag: str = ""
    close_tag: str = ""
    # The template variable that turns thinking on and off (Qwen3's enable_thinking); "" for none.
    switch: str = ""
    # The template variable for an effort level (reasoning_effort); "" for none.
    effort: str = ""
    # What the engine writes to end the reasoning and begin the answer; "": the close tag.
    answer_opening: str = ""

    @property
    def closing(self) -> str:
        return self.answer_opening or self.close_tag

    @property
    def reasons(self) -> bool:
        return self.name != NONE


NO_REASONING = ReasoningFormat(NONE)


def think_tags(template: str | None) -> ReasoningFormat:
    return ReasoningFormat(
        THINK,
        "<think>",
        "</think>",
        switch="enable_thinking" if template and "enable_thinking" in template else "",
        effort="reasoning_effort" if template and "reasoning_effort" in template else "",
    )


def harmony(template: str | None) -> ReasoningFormat:
    """gpt-oss: the analysis channel is the reasoning; the engine ends it by opening the final channel."""
    effort = "reasoning_effort" if template and "reasoning_effort" in template else ""
    return ReasoningFormat(HARMONY, OPEN_ANALYSIS, END, effort=effort, answer_opening=TO_FINAL)


def detect(template: str | None, override: str | None = None) -> ReasoningFormat:
    """The format of a model whose chat template is ``template``; ``override``
    (a name from FORMATS) wins. Think-tag families (DeepSeek-R1 and its
    distills, Qwen3, QwQ) write the tags in their templates, to open the
    reasoning in the generation prompt or to drop earlier turns' thinking."""
    if override == NONE:
        return NO_REASONING
    if override == HARMONY or (override is None and template and CHANNEL in template):
        return harmony(template)
    if override == THINK or (template and ("</think>" in template or "<think>" in template)):
        return think_tags(template)
    return NO_REASONING
