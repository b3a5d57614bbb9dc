"""One sequence's reasoning as the scheduler follows it, token by token:
how many tokens it has thought, and, once a budget is spent while it still
reasons, the tokens that close the reasoning (fed instead of sampled) so
that the answer follows: at the first token after the budget that does not
leave a character unfinished."""

import codecs

from hearth.engine.domain import ReasoningPlan
from hearth.engine.reasoning.splitter import ReasoningSplitter


class ReasoningTracker:
    def __init__(self, plan: ReasoningPlan):
        self._splitter = ReasoningSplitter(plan.open_tag, plan.close_tag, plan.started)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._budget = plan.budget_tokens
        self._close = plan.close_tokens
        self._forced: list[int] = []
        self._closing = False
        # Tokens generated inside the reasoning (its tags included).
        self.tokens = 0

    def forced_token(self) -> int | None:
        """The token to feed next instead of sampling one; None: sample."""
        if not self._forced and not self._closing and self._budget is not None:
            # Never inside a character: a byte token may have begun one (the
            # close tag would cut it, and a grammar would refuse the tag).
            inside_character = bool(self._decoder.getstate()[0])
            if self._splitter.reasoning and self.tokens >= self._budget and not inside_character:
                self._closing = True
                self._forced = list(self._close)
        return self._forced.pop(0) if self._forced else None

    @property
    def following(self) -> bool:
        """Whether tokens still need observing (the reasoning has not ended)."""
        return not self._splitter.ended

    def observe(self, piece: bytes) -> None:
        """The token just generated, as text with its special tokens written out (while ``following``)."""
        inside = self._splitter.reasoning
        self._splitter.push(self._decoder.decode(piece))
        # Thinking tokens: those inside the reasoning, not the tags that open and close it.
        if inside and self._splitter.reasoning:
            self.tokens += 1
