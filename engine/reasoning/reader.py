"""Every sequence's text pieces split into reasoning and answer (one
splitter per sequence index); before a sequence's end event what was held
back is flushed to its side. A harmony model's output is read whole:
reasoning, answer and the tool calls addressed in it."""

from dataclasses import replace

from hearth.engine.domain import ChoiceEnded, Finished, FinishReason, GenerationEvent, ReasoningPlan, TextPiece
from hearth.engine.reasoning.harmony import HarmonyParser, call_arguments
from hearth.engine.reasoning.splitter import ReasoningSplitter
from hearth.engine.tools.extractors import CallCollector

_FUNCTIONS = "functions."


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


class HarmonyReader:
    """gpt-oss's channels apart, per sequence: analysis is the reasoning,
    final and commentary the answer, a message ``to=functions.NAME`` a call
    of that tool (``tool_names``; with ``parallel`` false only the first is
    kept). A message addressed elsewhere, or whose body is not an arguments
    object, is shown as the text it was; a sequence that called ends with
    TOOL_CALLS."""

    def __init__(self, plan: ReasoningPlan, tool_names: frozenset[str], parallel: bool):
        self._opened = plan.opened
        self._tool_names = tool_names
        self._parallel = parallel
        self._parsers: dict[int, tuple[HarmonyParser, CallCollector]] = {}

    def _parser(self, index: int) -> tuple[HarmonyParser, CallCollector]:
        if index not in self._parsers:
            self._parsers[index] = HarmonyParser(self._opened), CallCollector(self._tool_names, self._parallel)
        return self._parsers[index]

    def _piece(self, event: TextPiece | None, index: int, read: tuple) -> TextPiece | None:
        reasoning, parts = read
        collector = self._parser(index)[1]
        texts, calls = [], []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
                continue
            recipient, body = part
            name = recipient.removeprefix(_FUNCTIONS) if recipient.startswith(_FUNCTIONS) else None
            arguments = call_arguments(body)
            accepted = collector.accept([(name, arguments)]) if name and arguments is not None else None
            if accepted is None:
                texts.append(body)
            else:
                calls.extend(accepted)
        text = "".join(texts)
        if event is None:
            return (
                TextPiece(text, index, reasoning=reasoning, tool_calls=tuple(calls))
                if text or reasoning or calls
                else None
            )
        if not (reasoning or text or calls or event.logprobs):
            return None
        return replace(event, text=text, reasoning=reasoning, tool_calls=tuple(calls))

    def read(self, event: GenerationEvent) -> list[GenerationEvent]:
        """The events to pass on in place of ``event``."""
        if isinstance(event, TextPiece):
            piece = self._piece(event, event.index, self._parser(event.index)[0].push(event.text))
            return [piece] if piece is not None else []
        if isinstance(event, ChoiceEnded | Finished):
            parser, collector = self._parser(event.index)
            piece = self._piece(None, event.index, parser.finish())
            if collector.made:
                event = replace(event, finish_reason=FinishReason.TOOL_CALLS)
            return [piece, event] if piece is not None else [event]
        return [event]
