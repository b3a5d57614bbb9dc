"""One sequence's output: sampled tokens in, text and a finish reason out."""

import codecs

from hearth.engine.llama_backend import LlamaModel
from hearth.engine.requests import FinishReason
from hearth.engine.stop_strings import StopMatcher


class SequenceOutput:
    """Decodes UTF-8 across token boundaries, holds back text that may start a
    stop string, and decides when the sequence ends."""

    def __init__(self, model: LlamaModel, stop_token_ids: frozenset[int], stop: tuple[str, ...], max_new_tokens: int):
        self._model = model
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
        text = self._matcher.push(self._decoder.decode(self._model.token_piece(token)))
        if self._matcher.stopped:
            return text, FinishReason.STOP
        if self.generated >= self._max_new_tokens:
            return text + self._tail(), FinishReason.LENGTH
        return text, None

    def _tail(self) -> str:
        return self._matcher.push(self._decoder.decode(b"", final=True)) + self._matcher.flush()
