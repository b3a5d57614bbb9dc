"""The Jinja sandbox chat templates render in: operator limits, bounded
output, error texts, and the worker-process side of untrusted renders (see
workers; chat_template sends the requests)."""

import json
from collections import OrderedDict
from datetime import datetime

from jinja2 import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from hearth.engine.templates.workers import serve_requests

# What a render may write: this much, plus this many characters per character of the messages.
MAX_OUTPUT_BASE_CHARS = 1 << 20
OUTPUT_PER_INPUT_CHAR = 4
# Operators refuse to build numbers or sequences larger than these.
MAX_INT_BITS = 1 << 16
MAX_SEQUENCE_ITEMS = 1 << 24
# Templates each worker keeps compiled.
WORKER_CACHE_SIZE = 16
MAX_ERROR_CHARS = 500


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


def environment() -> ImmutableSandboxedEnvironment:
    # Templates in GGUF files are untrusted code (CVE-2024-34359): the sandbox
    # blocks attribute access to Python internals and mutation of inputs.
    env = _GuardedSandbox(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.filters["tojson"] = _tojson
    return env


def render_limit(messages: list[dict], tools: list[dict] | None = None) -> int:
    """Most characters a render may produce: the messages and tools (as JSON,
    whatever their content's type), several times over, plus room."""
    try:
        size = len(json.dumps([messages, tools], ensure_ascii=False, default=str))
    except (ValueError, RecursionError):  # circular or absurdly deep: no allowance for it
        size = 0
    return MAX_OUTPUT_BASE_CHARS + OUTPUT_PER_INPUT_CHAR * size


def render_bounded(template: Template, context: dict, max_chars: int) -> str:
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


def compile_error(exc: BaseException) -> str:
    return f"the model's chat template does not compile: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def render_error(exc: BaseException) -> str:
    if isinstance(exc, _TemplateRaised):
        return f"chat template error: {exc}"[:MAX_ERROR_CHARS]
    if isinstance(exc, _OutputTooLarge):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "the model's chat template used too much memory"
    return f"the model's chat template failed: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def _handle(env: ImmutableSandboxedEnvironment, cache: "OrderedDict[str, Template]", request: dict) -> dict:
    source = request.get("source")
    if not isinstance(source, str):
        return {"ok": False, "error": "bad request to the template renderer"}
    template = cache.get(source)
    if template is None:
        try:
            template = env.from_string(source)
        except Exception as exc:  # syntax errors, recursion, limits: the template is refused
            return {"ok": False, "error": compile_error(exc)}
        cache[source] = template
        while len(cache) > WORKER_CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(source)
    if request.get("op") == "compile":
        return {"ok": True}
    try:
        return {"ok": True, "text": render_bounded(template, request["context"], int(request["max_chars"]))}
    except Exception as exc:  # sandbox violations and template bugs alike fail this request only
        return {"ok": False, "error": render_error(exc)}


def run_worker(parent_pid: int) -> int:
    """Entry point of a template worker process."""
    env = environment()
    cache: OrderedDict[str, Template] = OrderedDict()
    return serve_requests(lambda request: _handle(env, cache, request), parent_pid)
