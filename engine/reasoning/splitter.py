"""One sequence's output text split into reasoning and answer as it streams:
a tag split over several pieces never reaches either side, and text that may
still become a tag is held back until it cannot."""

_BEFORE, _INSIDE, _AFTER = "before", "inside", "after"


def _held(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` may begin ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


class ReasoningSplitter:
    """``started``: the prompt already opened the reasoning (the template wrote
    the open tag). Otherwise the output reasons only when it begins, after
    optional whitespace, with ``open_tag``."""

    def __init__(self, open_tag: str, close_tag: str, started: bool):
        self._open = open_tag
        self._close = close_tag
        self._state = _INSIDE if started else _BEFORE
        self._buffer = ""
        # Whitespace right after the close tag is the answer's margin, not its text.
        self._trim = False
        self._lead = False

    @property
    def reasoning(self) -> bool:
        """Whether the text so far ends inside the reasoning."""
        return self._state == _INSIDE

    @property
    def ended(self) -> bool:
        """Whether the reasoning is over (or never began)."""
        return self._state == _AFTER

    def push(self, text: str) -> tuple[str, str]:
        """(reasoning, answer) text that can be shown now."""
        self._buffer += text
        reasoning = answer = ""
        while self._buffer:
            if self._state == _BEFORE:
                stripped = self._buffer.lstrip()
                if not stripped:
                    return reasoning, answer
                if stripped.startswith(self._open):
                    self._buffer = stripped[len(self._open) :]
                    self._state = _INSIDE
                    self._lead = True
                    continue
                if self._open.startswith(stripped):
                    return reasoning, answer
                self._state = _AFTER
                continue
            if self._state == _INSIDE:
                if self._lead:
                    # The line break after the open tag is the tag's, not the thinking's.
                    self._buffer = self._buffer.lstrip("\n")
                    if not self._buffer:
                        return reasoning, answer
                    self._lead = False
                at = self._buffer.find(self._close)
                if at < 0:
                    keep = _held(self._buffer, self._close)
                    reasoning += self._buffer[: len(self._buffer) - keep]
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    return reasoning, answer
                reasoning += self._buffer[:at]
                self._buffer = self._buffer[at + len(self._close) :]
                self._state = _AFTER
                self._trim = True
                continue
            if self._trim:
                self._buffer = self._buffer.lstrip()
                if not self._buffer:
                    return reasoning, answer
                self._trim = False
            answer += self._buffer
            self._buffer = ""
        return reasoning, answer

    def finish(self) -> tuple[str, str]:
        """The end of the output: what was held back, on its side."""
        held, self._buffer = self._buffer, ""
        if self._state == _INSIDE:
            return held, ""
        if self._trim:
            return "", held.lstrip()
        return "", held
