"""gpt-oss's harmony format read out of one sequence's text as it streams
(special tokens written out): messages ``<|start|>assistant<|channel|>CH
[to=functions.NAME] [<|constrain|>json]<|message|>BODY`` ended by
``<|end|>``, ``<|call|>`` or ``<|return|>``. The ``analysis`` channel is the
reasoning; ``final`` and ``commentary`` without a recipient are the answer; a
message addressed ``to=functions.NAME`` is a call of that tool (its body the
JSON arguments). Text outside any message is answer text; no marker leaks
(a marker written where it means nothing is dropped)."""

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
# What ends a header that is not one: a message's end or a new message before its <|message|>.
_HEADER_ENDS = (MESSAGE, *_ENDS)
_LONGEST = max(map(len, _MARKERS))
# A header longer than this is not one: it is shown as the text it was.
MAX_HEADER_CHARS = 512
_CHANNEL_NAME = re.compile(r"<\|channel\|>\s*([\w.-]*)")
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")

_BETWEEN, _HEADER, _BODY = "between", "header", "body"


def _unmarked(text: str) -> str:
    for marker in _MARKERS:
        text = text.replace(marker, "")
    return text


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
    """``opened``: the open message the prompt ends with (see open_message).
    Each push gives the reasoning and the answer's parts in the order they were
    written: text, and calls as (recipient, raw arguments)."""

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
        # Whether the open header began with a <|start|> the model wrote.
        self._role_first = False
        if opened:
            self._state = _HEADER
            self._buffer = opened

    @property
    def reasoning(self) -> bool:
        return self._state == _BODY and self._channel == "analysis"

    def push(self, text: str) -> tuple[str, list[str | tuple[str, str]]]:
        """(reasoning, the answer's parts) that can be given now."""
        self._buffer += text
        return self._advance(final=False)

    def finish(self) -> tuple[str, list[str | tuple[str, str]]]:
        """The end of the output: what was held back, on its side; an unended call is still read."""
        return self._advance(final=True)

    def _advance(self, *, final: bool) -> tuple[str, list[str | tuple[str, str]]]:
        reasoning: list[str] = []
        answer: list[str | tuple[str, str]] = []
        while True:
            if self._state == _HEADER:
                found = [(i, m) for m in _HEADER_ENDS if (i := self._buffer.find(m)) >= 0]
                if found and min(found)[1] == MESSAGE:
                    at = min(found)[0]
                    self._prompted, self._role_first = "", False
                    self._open(self._buffer[:at])
                    self._buffer = self._buffer[at + len(MESSAGE) :]
                    self._state = _BODY
                    continue
                if not found and not final and len(self._buffer) <= MAX_HEADER_CHARS:
                    break
                # Not a header after all (too long, ended before its <|message|>, or cut at the end
                # of the output). Too long, it is text the model wrote; where the prompt opened the
                # header, what the model wrote in it is the answer's too — unless it names a channel.
                # Other broken headers (after the model's own <|start|>) are markers, dropped.
                at = min(found)[0] if found else len(self._buffer)
                text = self._buffer[:at].removeprefix(self._prompted)
                too_long = not found and len(self._buffer) > MAX_HEADER_CHARS
                if too_long or not self._role_first and CHANNEL not in text:
                    self._give_text(_unmarked(text), answer)
                self._buffer, self._state = self._buffer[at:], _BETWEEN
                self._prompted, self._role_first = "", False
                continue
            found = [(i, m) for m in (_ENDS if self._state == _BODY else _OPENS) if (i := self._buffer.find(m)) >= 0]
            if not found:
                keep = 0 if final else _held(self._buffer)
                self._give(self._buffer[: len(self._buffer) - keep], reasoning, answer)
                self._buffer = self._buffer[len(self._buffer) - keep :]
                if final and self._state == _BODY and self._recipient:
                    answer.append((self._recipient, self._call))
                    self._recipient = self._call = ""
                break
            at, marker = min(found)
            self._give(self._buffer[:at], reasoning, answer)
            if self._state == _BODY and self._recipient:
                answer.append((self._recipient, self._call))
            self._recipient = self._call = self._channel = self._pending = ""
            # <|channel|> with no <|start|> before it opens a header too.
            self._buffer = self._buffer[at + (len(marker) if marker != CHANNEL else 0) :]
            self._state = _HEADER if marker in _OPENS else _BETWEEN
            self._role_first = marker == START
        return "".join(reasoning), answer

    def _open(self, header: str) -> None:
        channel = _CHANNEL_NAME.search(header)
        recipient = _RECIPIENT.search(header)
        self._channel = channel.group(1) if channel else ""
        self._recipient = recipient.group(1) if recipient else ""

    def _give(self, text: str, reasoning: list[str], answer: list) -> None:
        text = _unmarked(text)
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

    def _give_text(self, text: str, answer: list) -> None:
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
