"""The Playground's conversation: turns, the reply streaming in, and how it ended."""

from dataclasses import dataclass, field

from hearth.desktop import messages as msg


@dataclass
class ChatTurn:
    role: str  # "user" or "assistant"
    content: str
    # A reasoning model's thinking before the answer, and how many tokens it took.
    reasoning: str = ""
    reasoning_tokens: int = 0
    # Tool calls the model made: (name, arguments as JSON text).
    tool_calls: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ChatSession:
    """The playground conversation; the last assistant turn grows as the stream arrives."""

    turns: list[ChatTurn] = field(default_factory=list)
    active_id: int | None = None
    last_result: str = ""
    version: int = 0
    _next_id: int = 0

    @property
    def streaming(self) -> bool:
        return self.active_id is not None

    def begin(self, user_text: str) -> int:
        """Adds the user's turn and an empty assistant turn; returns the id of the stream."""
        self._next_id += 1
        self.active_id = self._next_id
        self.turns.append(ChatTurn("user", user_text))
        self.turns.append(ChatTurn("assistant", ""))
        self.last_result = "generating..."
        self.version += 1
        return self.active_id

    def history(self) -> list[ChatTurn]:
        """The turns to send: everything but the empty assistant turn being generated."""
        if self.streaming and self.turns and self.turns[-1].role == "assistant":
            return self.turns[:-1]
        return list(self.turns)

    def add_delta(self, delta: msg.ChatDelta) -> None:
        if delta.chat_id != self.active_id or not self.turns:
            return  # a stream the user already stopped or cleared
        self.turns[-1].content += delta.text
        self.turns[-1].reasoning += delta.reasoning
        self.turns[-1].tool_calls.extend(delta.tool_calls)
        self.version += 1

    def end(self, ended: msg.ChatEnded, elapsed_seconds: float | None = None) -> None:
        if ended.chat_id != self.active_id:
            return
        self.active_id = None
        if self.turns:
            self.turns[-1].reasoning_tokens = ended.reasoning_tokens
        if ended.error:
            self.last_result = f"error: {ended.error}"
            if self.turns and not (self.turns[-1].content or self.turns[-1].reasoning or self.turns[-1].tool_calls):
                self.turns.pop()  # nothing was generated; do not send an empty turn back later
        elif ended.cancelled:
            self.last_result = f"stopped after {ended.completion_tokens or 'some'} tokens"
        else:
            speed = ""
            if elapsed_seconds and ended.completion_tokens:
                speed = f", {ended.completion_tokens / elapsed_seconds:.1f} tokens/s overall"
            thought = f" ({ended.reasoning_tokens} thinking)" if ended.reasoning_tokens else ""
            self.last_result = (
                f"{ended.prompt_tokens} prompt + {ended.completion_tokens} completion tokens{thought}, "
                f"finish: {ended.finish_reason or '?'}{speed}"
            )
        self.version += 1

    def clear(self) -> None:
        self.turns.clear()
        self.active_id = None
        self.last_result = ""
        self.version += 1
