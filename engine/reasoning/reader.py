"""Every sequence's text pieces split into reasoning and answer (one
splitter per sequence index); before a sequence's end event what was held
back is flushed to its side."""

from dataclasses import replace

from hearth.engine.domain import ChoiceEnded, Finished, GenerationEvent, ReasoningPlan, TextPiece
from hearth.engine.reasoning.splitter import ReasoningSplitter


class ReasoningReader:
    def __init__(self, plan: ReasoningPlan):
        self._plan = plan
        self._splitters: dict[int, ReasoningSplitter] = {}

    def _splitter(self, index: int) -> ReasoningSplitter:
        if index not in self._splitters:
            plan = self._plan
            self._splitters[index] = ReasoningSplitter(plan.open_tag, plan.close_tag, plan.started)
        return self._splitters[index]

    def read(self, event: GenerationEvent) -> list[GenerationEvent]:
        """The events to pass on in place of ``event``."""
        if isinstance(event, TextPiece):
            reasoning, text = self._splitter(event.index).push(event.text)
            if not (reasoning or text or event.logprobs or event.tool_calls):
                return []
            return [replace(event, text=text, reasoning=event.reasoning + reasoning)]
        if isinstance(event, ChoiceEnded | Finished):
            reasoning, text = self._splitter(event.index).finish()
            if reasoning or text:
                return [TextPiece(text, event.index, reasoning=reasoning), event]
        return [event]
