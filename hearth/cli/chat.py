"""`hearth run MODEL [PROMPT]`: a chat with a model in the terminal, through
the running engine. With a prompt (or text piped in) it prints one answer and
exits; otherwise an interactive session: the answer streams as it is written,
Ctrl-C stops the answer (not the session), arrow keys recall earlier input,
text between triple quotes spans lines, and slash commands set the system
prompt and sampling parameters, clear the conversation, or end it (/bye)."""

import select
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from hearth.client import OLLAMA_SAMPLING, EngineCallError, EngineClient
from hearth.engine.v1 import engine_pb2 as pb
from hearth.settings.engine import EngineSettings

EXIT_FAILED = 1
PROMPT, CONTINUATION = ">>> ", "... "
QUOTES = '"""'
PIPE_WAIT_SECONDS = 0.5
# /set parameter NAME VALUE: Ollama's names (and OpenAI's for the length) onto GenerateRequest fields.
PARAMETERS: dict[str, tuple[str, type]] = {
    **OLLAMA_SAMPLING,
    "seed": ("seed", int),
    "num_predict": ("max_tokens", int),
    "max_tokens": ("max_tokens", int),
}
# A negative value of these asks for the engine's own behaviour.
_NEGATIVE_MEANS = {"seed": "a random seed", "max_tokens": "no limit"}
HELP = """Available commands:
  /set system TEXT            set the system prompt
  /set parameter NAME VALUE   set a sampling parameter (temperature, top_p, top_k, min_p, seed,
                              num_predict, repeat_penalty, presence_penalty, frequency_penalty)
  /set think | /set nothink   turn a reasoning model's thinking on or off
  /show                       show the system prompt and parameters
  /clear                      forget the conversation
  /bye                        exit
Use \"\"\" to begin and end a message of several lines; Ctrl-C stops an answer, Ctrl-D exits."""


@dataclass
class Conversation:
    model: str
    system: str = ""
    parameters: dict[str, float | int] = field(default_factory=dict)
    think: bool | None = None
    # Fields left unset on purpose (seed -1, num_predict -1): the model's defaults do not fill them.
    unset: set[str] = field(default_factory=set)
    turns: list[tuple[str, str]] = field(default_factory=list)

    def request(self, prompt: str) -> pb.GenerateRequest:
        request = pb.GenerateRequest(model=self.model)
        if self.system:
            request.messages.add(role="system", content=self.system)
        for user, assistant in self.turns:
            request.messages.add(role="user", content=user)
            request.messages.add(role="assistant", content=assistant)
        request.messages.add(role="user", content=prompt)
        for name, value in self.parameters.items():
            setattr(request, name, value)
        request.without_model_defaults.extend(sorted(self.unset))
        if self.think is not None:
            request.reasoning.mode = pb.REASONING_MODE_ON if self.think else pb.REASONING_MODE_OFF
        return request


class Answer:
    """Writes one answer as it streams: thinking (dimmed on a terminal, or on
    stderr when the answer goes to a pipe) apart from the text."""

    def __init__(self, out, interactive: bool):
        self._out = out
        self._thinking_out = out if interactive else sys.stderr
        self._dim = interactive and out.isatty()
        self._thinking = False
        self.text: list[str] = []

    def write(self, message: pb.GenerateResponse) -> None:
        if message.reasoning:
            if not self._thinking:
                self._thinking = True
                self._thinking_out.write(("\x1b[2m" if self._dim else "") + "Thinking...\n")
            self._thinking_out.write(message.reasoning)
            self._thinking_out.flush()
        if message.text:
            self._end_thinking()
            self.text.append(message.text)
            self._out.write(message.text)
            self._out.flush()

    def _end_thinking(self) -> None:
        if self._thinking:
            self._thinking = False
            self._thinking_out.write("\n...done thinking.\n\n" + ("\x1b[0m" if self._dim else ""))

    def finish(self) -> None:
        self._end_thinking()
        self._out.write("\n")
        self._out.flush()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _answer(client: EngineClient, conversation: Conversation, prompt: str, out, interactive: bool) -> str | None:
    """Streams the answer to ``prompt``; its text, or None when Ctrl-C stopped it."""
    call = client.generate(conversation.request(prompt))
    answer = Answer(out, interactive)
    try:
        for message in call:
            answer.write(message)
    except KeyboardInterrupt:
        call.cancel()
        return None
    finally:
        answer.finish()
    return "".join(answer.text)


def _set_parameter(conversation: Conversation, name: str, value: str) -> str:
    field_name, kind = PARAMETERS[name]
    try:
        number = kind(value)
    except ValueError:
        return f"'{value}' is not a valid value for {name}."
    if number < 0 and field_name in _NEGATIVE_MEANS:
        # Ollama's -1: a random seed, no length limit — even where the model's defaults set one.
        conversation.parameters.pop(field_name, None)
        conversation.unset.add(field_name)
        return f"Set parameter '{name}' to '{value}' ({_NEGATIVE_MEANS[field_name]})."
    try:
        setattr(pb.GenerateRequest(), field_name, number)
    except (ValueError, TypeError):
        return f"'{value}' is out of range for {name}."
    conversation.parameters[field_name] = number
    conversation.unset.discard(field_name)
    return f"Set parameter '{name}' to '{value}'."


def _set(conversation: Conversation, words: list[str]) -> str:
    """/set ...: what to tell the user."""
    if words[:1] == ["system"] and len(words) > 1:
        conversation.system = " ".join(words[1:])
        return "Set system message."
    if words in (["think"], ["nothink"]):
        conversation.think = words == ["think"]
        return "Set 'think' mode." if conversation.think else "Set 'nothink' mode."
    if words[:1] == ["parameter"] and len(words) == 3:
        name, value = words[1], words[2]
        if name not in PARAMETERS:
            return f"Unknown parameter '{name}'; /? lists them."
        return _set_parameter(conversation, name, value)
    return "Usage: /set system TEXT | /set parameter NAME VALUE | /set think | /set nothink"


def _command(conversation: Conversation, line: str) -> str | None:
    """A slash command's reply; None for /bye."""
    words = line.split()
    command = words[0].lower()
    if command in ("/bye", "/exit"):
        return None
    if command == "/clear":
        conversation.turns.clear()
        return "Cleared session context."
    if command == "/set":
        return _set(conversation, words[1:])
    if command == "/show":
        shown = [f"model: {conversation.model}", f"system: {conversation.system or '(none)'}"]
        shown += [f"{name}: {value}" for name, value in conversation.parameters.items()]
        shown += [f"{name}: {_NEGATIVE_MEANS[name]}" for name in sorted(conversation.unset)]
        return "\n".join(shown)
    if command in ("/?", "/help"):
        return HELP
    return f"Unknown command '{command}'. Type /? for help."


def _read_message(read: Callable[[str], str]) -> str:
    """One message: a line, or the lines between triple quotes."""
    line = read(PROMPT)
    if not line.lstrip().startswith(QUOTES):
        return line
    text = line.lstrip()[len(QUOTES) :]
    lines = []
    while not text.rstrip().endswith(QUOTES):
        lines.append(text)
        text = read(CONTINUATION)
    lines.append(text.rstrip()[: -len(QUOTES)])
    return "\n".join(lines).strip("\n")


def _interactive(client: EngineClient, conversation: Conversation, read: Callable[[str], str]) -> int:
    try:
        import readline  # noqa: F401  (arrow keys and history for input())
    except ImportError:
        pass
    print("Type /? for help, /bye to exit.")
    while True:
        try:
            message = _read_message(read)
        except KeyboardInterrupt:
            print("\nUse Ctrl + d or /bye to exit.")
            continue
        except EOFError:
            print()
            return 0
        if not message.strip():
            continue
        if message.startswith("/"):
            reply = _command(conversation, message)
            if reply is None:
                return 0
            print(reply)
            continue
        try:
            answer = _answer(client, conversation, message, sys.stdout, interactive=True)
        except EngineCallError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            continue
        if answer is not None:
            conversation.turns.append((message, answer))


def _piped_text(prompt: str | None) -> str | None:
    """Text piped in, None when stdin is a terminal. Beside a prompt, stdin is
    read only if it has something to give soon (an open, silent pipe is not waited for)."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    if prompt is not None and not select.select([sys.stdin], [], [], PIPE_WAIT_SECONDS)[0]:
        return None
    return sys.stdin.read()


def run_chat(settings: EngineSettings, model: str, prompt: str | None, *, read: Callable[[str], str] = input) -> int:
    piped = _piped_text(prompt)
    with EngineClient(settings.engine_address, api_key=settings.api_key, tls=settings.client_tls()) as client:
        try:
            client.get_model(model, timeout=10)
            client.load_model(model, timeout=600)
        except EngineCallError as exc:
            if exc.not_listening:
                return _fail(f"no engine answers at {settings.engine_address}; start one with `hearth serve`")
            return _fail(exc.message)
        conversation = Conversation(model)
        if prompt is None and piped is None:
            return _interactive(client, conversation, read)
        text = "\n\n".join(part for part in (piped, prompt) if part and part.strip())
        if not text:
            return 0  # nothing to ask (empty input piped in): like Ollama, the model is just loaded
        try:
            answer = _answer(client, conversation, text, sys.stdout, interactive=False)
        except EngineCallError as exc:
            return _fail(exc.message)
        return 0 if answer is not None else 130
