"""A sequence's output: sampled tokens in, text and a finish reason out; and
the tool calls read back out of that text."""

import codecs
from collections.abc import Callable
from dataclasses import replace

from hearth.engine.domain import (
    ChoiceEnded,
    Finished,
    FinishReason,
    GenerationEvent,
    TextPiece,
)
from hearth.engine.generation.stop_strings import StopMatcher
from hearth.engine.llama.model import LlamaModel
from hearth.engine.tools.planning import ToolCallExtractor


class SequenceOutput:
    """Decodes UTF-8 across token boundaries, holds back text that may start a
    stop string, and decides when the sequence ends."""

    def __init__(
        self,
        model: LlamaModel,
        stop_token_ids: frozenset[int],
        stop: tuple[str, ...],
        max_new_tokens: int,
        *,
        special: bool = False,
    ):
        self._model = model
        self._special = special
        self._stop_token_ids = stop_token_ids
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._matcher = StopMatcher(stop)
        self._max_new_tokens = max_new_tokens
        self.generated = 0

    def push(self, token: int) -> tuple[str, FinishReason | None]:
        """Text to emit for ``token``, and the finish reason if the sequence ends with it."""
        if token in self._stop_token_ids or self._model.is_end_of_generation(token):
            return self._tail(), FinishReason.STOP
        self.generated += 1
        text = self._matcher.push(self._decoder.decode(self._model.token_piece(token, special=self._special)))
        if self._matcher.stopped:
            return text, FinishReason.STOP
        if self.generated >= self._max_new_tokens:
            return text + self._tail(), FinishReason.LENGTH
        return text, None

    @property
    def stop_string(self) -> str:
        """The stop string that ended the sequence; empty when none did."""
        return self._matcher.matched

    def _tail(self) -> str:
        return self._matcher.push(self._decoder.decode(b"", final=True)) + self._matcher.flush()


class ToolCallReader:
    """Reads every sequence's text for tool calls, one extractor per sequence
    index: text pieces come out with the visible text and the completed calls;
    before a sequence's end event the extractor's remainder is flushed, and a
    sequence that made a call ends with TOOL_CALLS."""

    def __init__(self, new_extractor: Callable[[], ToolCallExtractor]):
        self._new_extractor = new_extractor
        self._extractors: dict[int, ToolCallExtractor] = {}
        self._called: set[int] = set()

    def _extractor(self, index: int) -> ToolCallExtractor:
        if index not in self._extractors:
            self._extractors[index] = self._new_extractor()
        return self._extractors[index]

    def read(self, event: GenerationEvent) -> list[GenerationEvent]:
        """The events to pass on in place of ``event``."""
        if isinstance(event, TextPiece):
            text, calls = self._extractor(event.index).push(event.text)
            if calls:
                self._called.add(event.index)
            if not (text or calls or event.logprobs or event.reasoning):
                return []
            return [replace(event, text=text, tool_calls=event.tool_calls + tuple(calls))]
        if isinstance(event, ChoiceEnded | Finished):
            text, calls = self._extractor(event.index).finish()
            out: list[GenerationEvent] = []
            if calls:
                self._called.add(event.index)
            if text or calls:
                out.append(TextPiece(text, event.index, tool_calls=tuple(calls)))
            if event.index in self._called:
                event = replace(event, finish_reason=FinishReason.TOOL_CALLS)
            out.append(event)
            return out
        return [event]
