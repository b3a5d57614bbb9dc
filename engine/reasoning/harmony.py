"""gpt-oss's harmony format read out of one sequence's text as it streams
(special tokens written out): messages ``<|start|>assistant<|channel|>CH
[to=functions.NAME] [<|constrain|>json]<|message|>BODY`` ended by
``<|end|>``, ``<|call|>`` or ``<|return|>``. The ``analysis`` channel is the
reasoning; ``final`` and ``commentary`` without a recipient are the answer; a
message addressed ``to=functions.NAME`` is a call of that tool (its body the
JSON arguments). Text outside any message is answer text; no marker leaks
(a header's marker written where no header is, is dropped)."""

import json
import re

START, CHANNEL, MESSAGE = "<|start|>", "<|channel|>", "<|message|>"
END, CALL, RETURN = "<|end|>", "<|call|>", "<|return|>"
CONSTRAIN = "<|constrain|>"
# The reasoning as the tracker follows it, and what ends it and opens the answer.
OPEN_ANALYSIS = CHANNEL + "analysis" + MESSAGE
TO_FINAL = END + START + "assistant" + CHANNEL + "final" + MESSAGE
_ENDS = (END, CALL, RETURN, START)
_OPENS = (START, CHANNEL)
# Header markers met where no header is (in a body, between messages): not the model's words, dropped.
_STRAY = (CHANNEL, MESSAGE, CONSTRAIN)
_MARKERS = (*_ENDS, *_STRAY)
_LONGEST = max(map(len, _MARKERS))
# A header longer than this is not one: it is shown as the text it was.
MAX_HEADER_CHARS = 512
_CHANNEL_NAME = re.compile(r"<\|channel\|>\s*([\w.-]*)")
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")

_BETWEEN, _HEADER, _BODY = "between", "header", "body"


def _held(text: str) -> int:
    """How many characters at the end of ``text`` may begin a marker."""
    at = text.rfind("<", max(0, len(text) - _LONGEST + 1))
    if at < 0:
        return 0
    tail = text[at:]
    return len(tail) if any(m.startswith(tail) for m in _MARKERS) and len(tail) < _LONGEST else 0


def open_message(prompt: str) -> str:
    """The prompt's last message if the prompt leaves it open (text after
    its last ``<|start|>`` with no end after it); "" otherwise."""
    at = prompt.rfind(START)
    if at < 0:
        return ""
    tail = prompt[at + len(START) :]
    return "" if any(end in tail for end in (END, CALL, RETURN)) else tail


class HarmonyParser:
    """``opened``: the open message the prompt ends with (see open_message)."""

    def __init__(self, opened: str = ""):
        self._state = _BETWEEN
        self._buffer = ""
        self._channel = ""
        self._recipient = ""
        self._call = ""
        # Whitespace outside messages, shown only if answer text follows it.
        self._pending = ""
        # The part of an open header that the prompt wrote (never shown as the output's text).
        self._prompted = opened
        if opened:
            self._state = _HEADER
            self._buffer = opened

    @property
    def reasoning(self) -> bool:
        return self._state == _BODY and self._channel == "analysis"

    def push(self, text: str) -> tuple[str, str, list[tuple[str, str]]]:
        """(reasoning, answer, calls as (name, raw arguments)) that can be given now."""
        self._buffer += text
        return self._advance(final=False)

    def finish(self) -> tuple[str, str, list[tuple[str, str]]]:
        """The end of the output: what was held back, on its side; an unended call is still read."""
        return self._advance(final=True)

    def _advance(self, *, final: bool) -> tuple[str, str, list[tuple[str, str]]]:
        reasoning: list[str] = []
        answer: list[str] = []
        calls: list[tuple[str, str]] = []
        while True:
            if self._state == _HEADER:
                at = self._buffer.find(MESSAGE)
                if at < 0:
                    if not final and len(self._buffer) <= MAX_HEADER_CHARS:
                        break
                    # Not a header after all: text the model wrote, shown as the answer. One
                    # cut short at the end (it names a channel) is a marker, dropped.
                    text = self._buffer.removeprefix(self._prompted)
                    if len(self._buffer) > MAX_HEADER_CHARS or CHANNEL not in text:
                        self._give_text(text, answer)
                    self._buffer, self._state, self._prompted = "", _BETWEEN, ""
                    continue
                self._prompted = ""
                self._open(self._buffer[:at])
                self._buffer = self._buffer[at + len(MESSAGE) :]
                self._state = _BODY
                continue
            found = [(i, m) for m in (_ENDS if self._state == _BODY else _OPENS) if (i := self._buffer.find(m)) >= 0]
            if not found:
                keep = 0 if final else _held(self._buffer)
                self._give(self._buffer[: len(self._buffer) - keep], reasoning, answer)
                self._buffer = self._buffer[len(self._buffer) - keep :]
                if final and self._state == _BODY and self._recipient:
                    calls.append((self._recipient, self._call))
                    self._recipient = self._call = ""
                break
            at, marker = min(found)
            self._give(self._buffer[:at], reasoning, answer)
            if self._state == _BODY and self._recipient:
                calls.append((self._recipient, self._call))
            self._recipient = self._call = self._channel = self._pending = ""
            # <|channel|> with no <|start|> before it opens a header too.
            self._buffer = self._buffer[at + (len(marker) if marker != CHANNEL else 0) :]
            self._state = _HEADER if marker in _OPENS else _BETWEEN
        return "".join(reasoning), "".join(answer), calls

    def _open(self, header: str) -> None:
        channel = _CHANNEL_NAME.search(header)
        recipient = _RECIPIENT.search(header)
        self._channel = channel.group(1) if channel else ""
        self._recipient = recipient.group(1) if recipient else ""

    def _give(self, text: str, reasoning: list[str], answer: list[str]) -> None:
        for marker in _STRAY:
            text = text.replace(marker, "")
        if not text:
            return
        if self._state == _BODY and self._recipient:
            self._call += text
        elif self._state == _BODY and self._channel == "analysis":
            reasoning.append(text)
        elif self._state == _BODY:
            answer.append(text)
        else:
            self._give_text(text, answer)

    def _give_text(self, text: str, answer: list[str]) -> None:
        """Text outside any message: the answer's, once it is more than whitespace."""
        self._pending += text
        if self._pending.strip():
            answer.append(self._pending)
            self._pending = ""


def call_arguments(raw: str) -> dict | None:
    """A call's JSON body as an arguments object; None when it is not one."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
