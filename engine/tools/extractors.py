"""Streaming extraction: one sequence's output text in, text to show and
completed tool calls out (the formats are in tool_formats)."""

import json
import secrets
import string

from hearth.engine.domain import ToolCall
from hearth.engine.tools.formats import (
    _AT_START,
    _MARKED,
    ParsedCall,
    _Format,
    _json_calls,
    complete_calls_in_array,
)

_ID_ALPHABET = string.ascii_letters + string.digits


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


class ToolCallExtractor:
    """One sequence's output text in; text to show and completed tool calls out."""

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        return text, []

    def finish(self) -> tuple[str, list[ToolCall]]:
        """End of the sequence: what was held back, and the calls it made."""
        return "", []


class CallCollector:
    """Turns parsed calls into ToolCalls: names checked, at most one call unless parallel."""

    def __init__(self, names: frozenset[str], parallel: bool):
        self.names = names
        self.parallel = parallel
        self.made = 0

    def accept(self, parsed: list[ParsedCall] | None) -> list[ToolCall] | None:
        """The calls, or None when the text is not calls to these tools (then it stays text)."""
        if not parsed or any(name not in self.names for name, _ in parsed):
            return None
        calls = []
        for name, arguments in parsed:
            if self.made and not self.parallel:
                break  # one call asked for: later ones are dropped
            self.made += 1
            calls.append(ToolCall(id=new_call_id(), name=name, arguments=json.dumps(arguments, ensure_ascii=False)))
        return calls


class AutoExtractor(ToolCallExtractor):
    """Text passes through as it comes, except what may be a call: a possible
    start marker at the end of a piece is held back, a started call is held
    until its end marker (or the end of the output) and then either becomes
    calls or is shown as the text it was. Whitespace between or around calls
    is dropped."""

    def __init__(self, names: frozenset[str], parallel: bool):
        self._calls = CallCollector(names, parallel)
        self._buffer = ""
        self._active: _Format | None = None
        self._at_start = True
        self._pending_space = ""
        self._after_call = False
        # For the active format: where to look for its end marker next, and
        # whether what follows its start is known to be a call's beginning.
        self._end_scan = 0
        self._confirmed = False
        self._decided_after = max(map(len, names), default=0) + 32

    def _start(self, fmt: _Format) -> None:
        self._active = fmt
        self._end_scan = 0
        self._confirmed = False

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        self._buffer += text
        return self._advance(final=False)

    def finish(self) -> tuple[str, list[ToolCall]]:
        text, calls = self._advance(final=True)
        if not self._calls.made:
            text += self._pending_space
        self._pending_space = ""
        return text, calls

    def _advance(self, *, final: bool) -> tuple[str, list[ToolCall]]:
        shown: list[str] = []
        calls: list[ToolCall] = []

        def show(text: str) -> None:
            if self._after_call:
                text = text.lstrip()
                self._after_call = not text
            # Trailing whitespace waits: it is dropped if a call follows.
            content = text.rstrip()
            if content:
                shown.append(self._pending_space + content)
                self._pending_space = ""
            self._pending_space += text[len(content) :]

        def called(parsed: list[ParsedCall] | None, raw: str) -> None:
            made = self._calls.accept(parsed)
            if made is None:
                show(raw)
            else:
                calls.extend(made)
                self._pending_space = ""
                self._after_call = True

        names = self._calls.names
        while self._buffer:
            if self._active is None:
                if self._at_start:
                    if not self._buffer.strip() and not final:
                        break  # only whitespace yet: the output may still open with a call
                    self._at_start = False
                    opening = next((f for f in _AT_START if f.could_be(self._buffer, names)), None)
                    if opening is not None and not any(self._buffer.lstrip().startswith(f.start) for f in _MARKED):
                        self._start(opening)
                        continue
                found = [(i, f) for f in _MARKED if (i := self._buffer.find(f.start)) >= 0]
                if found:
                    i, fmt = min(found, key=lambda pair: pair[0])
                    show(self._buffer[:i])
                    self._buffer = self._buffer[i:]
                    self._start(fmt)
                    continue
                held = 0 if final else _partial_marker_length(self._buffer)
                show(self._buffer[: len(self._buffer) - held])
                self._buffer = self._buffer[len(self._buffer) - held :]
                break
            fmt = self._active
            start = len(fmt.start)
            if fmt.end:
                # Searched from where the last search left off: long calls stay linear.
                end = self._buffer.find(fmt.end, max(start, self._end_scan))
                if end >= 0:
                    raw_length = end + len(fmt.end)
                    called(fmt.parse(self._buffer[start:end]), self._buffer[:raw_length])
                    self._buffer = self._buffer[raw_length:]
                    self._active = None
                    continue
                self._end_scan = max(start, len(self._buffer) - len(fmt.end) + 1)
            if not self._confirmed:
                body = self._buffer[start:]
                if not fmt.could_be(body, names):
                    # Not a call after all: show the marker, read on after it.
                    show(fmt.start)
                    self._buffer = body
                    self._active = None
                    continue
                # Past a name's length the answer cannot change: stop asking.
                self._confirmed = len(body.lstrip()) > self._decided_after
            if not final:
                break
            called(fmt.parse(self._buffer[start:]), self._buffer)
            self._buffer = ""
            self._active = None
        return "".join(shown), calls


def _partial_marker_length(text: str) -> int:
    """Length of the longest end of ``text`` that begins a start marker."""
    for length in range(min(len(text), max(len(f.start) for f in _MARKED) - 1), 0, -1):
        tail = text[-length:]
        if any(f.start.startswith(tail) for f in _MARKED):
            return length
    return 0


class ForcedExtractor(ToolCallExtractor):
    """The whole output is the call(s) as JSON (a grammar forced it): nothing
    is shown while it comes. An array of calls gives each call as soon as it
    is complete; at the end the rest is read as calls. Output cut short (by
    max_tokens) keeps the calls completed before the cut; with none it is
    shown as the text it was."""

    def __init__(self, names: frozenset[str], parallel: bool):
        self._calls = CallCollector(names, parallel)
        self._buffer = ""
        self._given = 0

    def _new_complete(self) -> list[ToolCall]:
        parsed = complete_calls_in_array(self._buffer)[self._given :]
        calls = self._calls.accept(parsed) if parsed else None
        if not calls:
            return []
        self._given += len(parsed)
        return calls

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        self._buffer += text
        if not self._calls.parallel or not ("," in text or "]" in text):
            return "", []
        return "", self._new_complete()

    def finish(self) -> tuple[str, list[ToolCall]]:
        if self._given == 0:
            calls = self._calls.accept(_json_calls(self._buffer))
            if calls is not None:
                self._buffer = ""
                return "", calls
        calls = self._new_complete()
        text, self._buffer = self._buffer, ""
        if self._given == 0:
            return text, []
        return "", calls

