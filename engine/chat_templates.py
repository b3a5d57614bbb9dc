"""Chat templates: the GGUF's own (untrusted Jinja, rendered in a sandbox),
a per-model override from the config, or a built-in one chosen by architecture."""

import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from jinja2 import Template
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from hearth.engine.errors import TemplateError
from hearth.engine.template_workers import (
    PoolClosed,
    WorkerGone,
    WorkerPool,
    WorkersBusy,
    WorkerTimeout,
    serve_requests,
)

# Limits for untrusted templates. A render that runs longer is stopped (its
# worker process is killed and replaced); compiling gets longer, once per load.
RENDER_TIMEOUT_SECONDS = 3.0
COMPILE_TIMEOUT_SECONDS = 5.0
# What a render may write: this much, plus this many characters per character of the messages.
MAX_OUTPUT_BASE_CHARS = 1 << 20
OUTPUT_PER_INPUT_CHAR = 4
# Operators refuse to build numbers or sequences larger than these.
MAX_INT_BITS = 1 << 16
MAX_SEQUENCE_ITEMS = 1 << 24
# Worker processes at most (concurrent untrusted renders), and templates each keeps compiled.
WORKERS = 4
WORKER_CACHE_SIZE = 16
MAX_ERROR_CHARS = 500

_GEMMA = """{{ bos_token }}
{%- set ns = namespace(prefix='', started=false) -%}
{%- for message in messages -%}
  {%- if message.role == 'system' and not ns.started -%}
    {%- set ns.prefix = ns.prefix + message.content + '\n\n' -%}
  {%- else -%}
    {%- set role = 'model' if message.role == 'assistant' else 'user' -%}
    {{ '<start_of_turn>' + role + '\n' + (ns.prefix if not ns.started else '') + message.content | trim + '<end_of_turn>\n' }}
    {%- set ns.started = true -%}
  {%- endif -%}
{%- endfor -%}
{%- if not ns.started and ns.prefix -%}
  {{ '<start_of_turn>user\n' + ns.prefix | trim + '<end_of_turn>\n' }}
{%- endif -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"""

_LLAMA3 = """{{ bos_token }}
{%- for message in messages -%}
{{ '<|start_header_id|>' + message.role + '<|end_header_id|>\n\n' + message.content | trim + '<|eot_id|>' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}"""

_CHATML = """{%- for message in messages -%}
{{ '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"""

_MISTRAL = """{{ bos_token }}
{%- set ns = namespace(system='') -%}
{%- for message in messages -%}
  {%- if message.role == 'system' -%}
    {%- set ns.system = ns.system + message.content + '\n\n' -%}
  {%- elif message.role == 'user' -%}
    {{ '[INST] ' + ns.system + message.content + ' [/INST]' }}
    {%- set ns.system = '' -%}
  {%- else -%}
    {{ ' ' + message.content + eos_token }}
  {%- endif -%}
{%- endfor -%}"""

_PHI3 = """{%- for message in messages -%}
{{ '<|' + message.role + '|>\n' + message.content + '<|end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"""


@dataclass(frozen=True)
class BuiltinTemplate:
    source: str
    # Strings that end the assistant's turn in this format.
    stop: tuple[str, ...]


BUILTIN_TEMPLATES: dict[str, BuiltinTemplate] = {
    "gemma": BuiltinTemplate(_GEMMA, ("<end_of_turn>",)),
    "llama3": BuiltinTemplate(_LLAMA3, ("<|eot_id|>", "<|eom_id|>")),
    "chatml": BuiltinTemplate(_CHATML, ("<|im_end|>",)),
    "mistral": BuiltinTemplate(_MISTRAL, ("</s>",)),
    "phi3": BuiltinTemplate(_PHI3, ("<|end|>",)),
}

_ARCHITECTURE_TEMPLATES = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
    "llama": "llama3",
    "llama4": "llama3",
    "qwen2": "chatml",
    "qwen2moe": "chatml",
    "qwen3": "chatml",
    "qwen3moe": "chatml",
    "mistral3": "mistral",
    "phi3": "phi3",
}


def builtin_template_name(architecture: str) -> str:
    """The built-in template for an architecture; ChatML where none is known."""
    return _ARCHITECTURE_TEMPLATES.get(architecture, "chatml")


class _TemplateRaised(Exception):
    """raise_exception() called by a template: its message is the error."""


def _raise_exception(message: str) -> None:
    raise _TemplateRaised(str(message)[:MAX_ERROR_CHARS])


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(str(fmt)[:100])


def _tojson(value, indent=None, ensure_ascii=False, sort_keys=False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


class _GuardedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, plus checks on the operators that make huge values from
    small ones. Intercepted operators are also never evaluated while compiling
    (Jinja folds constant expressions at compile time otherwise, so that
    ``{{ 9 ** 999999999 }}`` would hang the compiler)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context, operator: str, left, right):
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and abs(left).bit_length() * right > MAX_INT_BITS:
                raise SecurityError(f"{operator} would make a number over {MAX_INT_BITS} bits")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                    if len(sequence) * times > MAX_SEQUENCE_ITEMS:
                        raise SecurityError(f"* would make a sequence over {MAX_SEQUENCE_ITEMS} items")
            if isinstance(left, int) and isinstance(right, int):
                if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                    raise SecurityError(f"* would make a number over {MAX_INT_BITS} bits")
        return super().call_binop(context, operator, left, right)


def _environment() -> ImmutableSandboxedEnvironment:
    # Templates in GGUF files are untrusted code (CVE-2024-34359): the sandbox
    # blocks attribute access to Python internals and mutation of inputs.
    env = _GuardedSandbox(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.filters["tojson"] = _tojson
    return env


def _render_limit(messages: list[dict[str, str]]) -> int:
    """Most characters a render may produce: the messages, several times over, plus room."""
    size = sum(len(m.get("role", "")) + len(m.get("content", "")) for m in messages)
    return MAX_OUTPUT_BASE_CHARS + OUTPUT_PER_INPUT_CHAR * size


def _render_bounded(template: Template, context: dict, max_chars: int) -> str:
    pieces: list[str] = []
    size = 0
    for piece in template.generate(**context):
        size += len(piece)
        if size > max_chars:
            raise _OutputTooLarge(f"the model's chat template produced more than {max_chars} characters")
        pieces.append(piece)
    return "".join(pieces)


class _OutputTooLarge(Exception):
    pass


def _compile_error(exc: BaseException) -> str:
    return f"the model's chat template does not compile: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def _render_error(exc: BaseException) -> str:
    if isinstance(exc, _TemplateRaised):
        return f"chat template error: {exc}"[:MAX_ERROR_CHARS]
    if isinstance(exc, _OutputTooLarge):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "the model's chat template used too much memory"
    return f"the model's chat template failed: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


_POOL = WorkerPool(WORKERS, __name__)


def shutdown_renderers() -> None:
    """Stop the template worker processes (they also exit when the engine does)."""
    _POOL.close()


def _in_worker(request: dict, timeout: float) -> dict:
    try:
        return _POOL.call(request, timeout)
    except WorkerTimeout as exc:
        message = f"the model's chat template did not finish within {timeout:g} seconds"
        raise TemplateError(message, param="messages") from exc
    except WorkersBusy as exc:
        raise TemplateError("every chat template renderer is busy; try again", param="messages") from exc
    except PoolClosed as exc:
        raise TemplateError("the engine is shutting down", param="messages") from exc
    except WorkerGone as exc:
        message = "the model's chat template used too much memory or crashed its renderer"
        raise TemplateError(message, param="messages") from exc
    except OSError as exc:
        raise TemplateError(f"cannot start a chat template renderer: {exc.strerror or exc}", param="messages") from exc


class ChatTemplate:
    """A template with the special-token strings it is rendered with.

    Built-in templates are trusted and render in this process. Any other
    template (from a GGUF file or the config file) is compiled and rendered in
    a sandboxed worker process, with a time limit, a memory limit and a limit
    on the size of what it writes."""

    def __init__(self, source: str, *, bos_token: str, eos_token: str, origin: str, stop: tuple[str, ...] = ()):
        self.origin = origin
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.stop = stop
        self._source = source
        self._template: Template | None = None
        if origin.startswith("builtin:"):
            try:
                self._template = _environment().from_string(source)
            except JinjaTemplateError as exc:
                raise TemplateError(_compile_error(exc), param="messages") from exc
            return
        reply = _in_worker({"op": "compile", "source": source}, COMPILE_TIMEOUT_SECONDS)
        if not reply.get("ok"):
            raise TemplateError(str(reply.get("error", "the model's chat template does not compile")), param="messages")

    def render(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        context = {
            "messages": messages,
            "add_generation_prompt": True,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        if tools is not None:
            context["tools"] = tools
        max_chars = _render_limit(messages)
        if self._template is not None:
            try:
                return _render_bounded(self._template, context, max_chars)
            except Exception as exc:  # template bugs and limits alike fail this request only
                raise TemplateError(_render_error(exc), param="messages") from exc
        reply = _in_worker(
            {"op": "render", "source": self._source, "context": context, "max_chars": max_chars},
            RENDER_TIMEOUT_SECONDS,
        )
        if not reply.get("ok"):
            raise TemplateError(str(reply.get("error", "the model's chat template failed")), param="messages")
        return str(reply["text"])


def choose_template(
    *, gguf_template: str | None, override: str | None, architecture: str, bos_token: str, eos_token: str
) -> ChatTemplate:
    if override:
        return ChatTemplate(override, bos_token=bos_token, eos_token=eos_token, origin="config")
    if gguf_template:
        return ChatTemplate(gguf_template, bos_token=bos_token, eos_token=eos_token, origin="gguf")
    name = builtin_template_name(architecture)
    builtin = BUILTIN_TEMPLATES[name]
    return ChatTemplate(
        builtin.source, bos_token=bos_token, eos_token=eos_token, origin=f"builtin:{name}", stop=builtin.stop
    )


def template_source_label(*, gguf_template: str | None, override: str | None, architecture: str) -> str:
    """What choose_template would pick, without compiling anything."""
    if override:
        return "config"
    if gguf_template:
        return "gguf"
    return f"builtin:{builtin_template_name(architecture)}"


def normalize_messages(messages: list[dict]) -> list[dict]:
    """OpenAI's 'developer' role is a system message to every template we know."""
    return [{**m, "role": "system" if m["role"] == "developer" else m["role"]} for m in messages]


# The worker process side (see template_workers).


def _handle(env: ImmutableSandboxedEnvironment, cache: "OrderedDict[str, Template]", request: dict) -> dict:
    source = request.get("source")
    if not isinstance(source, str):
        return {"ok": False, "error": "bad request to the template renderer"}
    template = cache.get(source)
    if template is None:
        try:
            template = env.from_string(source)
        except Exception as exc:  # syntax errors, recursion, limits: the template is refused
            return {"ok": False, "error": _compile_error(exc)}
        cache[source] = template
        while len(cache) > WORKER_CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(source)
    if request.get("op") == "compile":
        return {"ok": True}
    try:
        return {"ok": True, "text": _render_bounded(template, request["context"], int(request["max_chars"]))}
    except Exception as exc:  # sandbox violations and template bugs alike fail this request only
        return {"ok": False, "error": _render_error(exc)}


def run_worker(parent_pid: int) -> int:
    """Entry point of a template worker process."""
    env = _environment()
    cache: OrderedDict[str, Template] = OrderedDict()
    return serve_requests(lambda request: _handle(env, cache, request), parent_pid)
