"""Chat templates: the GGUF's own (untrusted Jinja, rendered in a sandbox),
a per-model override from the config, or a built-in one chosen by architecture."""

import functools
import json
import re
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

# Macros the built-in templates share: message content as text (None and
# lists of parts included), a call as JSON, tools as JSON lines.
_MACROS = """
{%- macro text(content) -%}
{%- if content is none -%}
{%- elif content is string -%}{{ content }}
{%- else -%}{%- for part in content -%}{%- if part is mapping and part.text is string -%}{{ part.text }}{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- macro call_json(call, arguments_key) -%}
{%- set f = call.function if call.function is mapping else call -%}
{%- set arguments = f.arguments -%}
{{ '{"name": ' + (f.name | tojson) + ', "' + arguments_key + '": ' }}
{%- if arguments is mapping -%}{{ arguments | tojson }}
{%- elif arguments is string and arguments | trim -%}{{ arguments }}
{%- else -%}{{ '{}' }}
{%- endif -%}{{ '}' }}
{%- endmacro -%}
{%- macro tool_lines(tools) -%}
{%- for tool in tools -%}{{ (tool | tojson) + '\n' }}{%- endfor -%}
{%- endmacro -%}
"""

# Gemma has no tool format of its own: the first user turn describes the
# functions and asks for Hermes-style <tool_call> blocks; results come back as a user turn.
_GEMMA = _MACROS + """{{ bos_token }}
{%- set ns = namespace(prefix='', started=false, tools='') -%}
{%- if tools -%}
  {%- set ns.tools = 'You can call these functions (JSON Schema signatures):\n' + tool_lines(tools) + '\nTo call functions, reply with one block per call and nothing else:\n<tool_call>\n{"name": <function-name>, "arguments": <arguments-json-object>}\n</tool_call>\n\n' -%}
{%- endif -%}
{%- for message in messages -%}
  {%- if message.role == 'system' and not ns.started -%}
    {%- set ns.prefix = ns.prefix + text(message.content) + '\n\n' -%}
  {%- else -%}
    {%- set head = '' if ns.started else ns.prefix + ns.tools -%}
    {%- if message.role == 'tool' -%}
      {%- if loop.first or loop.previtem.role != 'tool' -%}{{ '<start_of_turn>user\n' + head }}{%- else -%}{{ '\n' }}{%- endif -%}
      {{ '<tool_response>\n' + text(message.content) + '\n</tool_response>' }}
      {%- if loop.last or loop.nextitem.role != 'tool' -%}{{ '<end_of_turn>\n' }}{%- endif -%}
    {%- elif message.role == 'assistant' and message.tool_calls -%}
      {{ '<start_of_turn>model\n' + head }}
      {%- if text(message.content) | trim -%}{{ text(message.content) | trim + '\n' }}{%- endif -%}
      {%- for call in message.tool_calls -%}{{ '<tool_call>\n' + call_json(call, 'arguments') + '\n</tool_call>' + ('\n' if not loop.last else '') }}{%- endfor -%}
      {{ '<end_of_turn>\n' }}
    {%- else -%}
      {%- set role = 'model' if message.role == 'assistant' else 'user' -%}
      {{ '<start_of_turn>' + role + '\n' + head + text(message.content) | trim + '<end_of_turn>\n' }}
    {%- endif -%}
    {%- set ns.started = true -%}
  {%- endif -%}
{%- endfor -%}
{%- if not ns.started and (ns.prefix or ns.tools) -%}
  {{ '<start_of_turn>user\n' + (ns.prefix + ns.tools) | trim + '<end_of_turn>\n' }}
{%- endif -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"""

# Llama 3.1's own tool format: functions in the first user message, calls as
# {"name", "parameters"} JSON, results in the ipython role.
_LLAMA3 = _MACROS + """{{ bos_token }}
{%- set ns = namespace(first_user=-1, tools='') -%}
{%- for message in messages -%}
  {%- if message.role == 'user' and ns.first_user < 0 -%}{%- set ns.first_user = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{%- if tools -%}
  {%- set ns.tools = 'Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the format {"name": function name, "parameters": dictionary of argument name and its value}. Do not use variables.\n\n' -%}
  {%- for tool in tools -%}{%- set ns.tools = ns.tools + (tool | tojson(indent=4)) + '\n\n' -%}{%- endfor -%}
  {%- if not (messages and messages[0].role == 'system') -%}
    {{ '<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython' + ('\n\n' + ns.tools | trim if ns.first_user < 0 else '') + '<|eot_id|>' }}
  {%- endif -%}
{%- endif -%}
{%- for message in messages -%}
  {%- if tools and message.role == 'system' and loop.first -%}
    {{ '<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n\n' + text(message.content) | trim + ('\n\n' + ns.tools | trim if ns.first_user < 0 else '') + '<|eot_id|>' }}
  {%- elif message.role == 'tool' or message.role == 'ipython' -%}
    {{ '<|start_header_id|>ipython<|end_header_id|>\n\n' + text(message.content) | trim + '<|eot_id|>' }}
  {%- elif message.role == 'assistant' and message.tool_calls -%}
    {{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
    {%- if text(message.content) | trim -%}{{ text(message.content) | trim + '\n' }}{%- endif -%}
    {%- for call in message.tool_calls -%}{{ call_json(call, 'parameters') + ('\n' if not loop.last else '') }}{%- endfor -%}
    {{ '<|eot_id|>' }}
  {%- else -%}
    {%- set head = ns.tools if loop.index0 == ns.first_user else '' -%}
    {{ '<|start_header_id|>' + message.role + '<|end_header_id|>\n\n' + head + text(message.content) | trim + '<|eot_id|>' }}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}"""

# Hermes / Qwen: functions in a <tools> block of the system message, calls in
# <tool_call> blocks, results in <tool_response> blocks of a user turn.
_CHATML = _MACROS + """
{%- if tools -%}
  {{ '<|im_start|>system\n' }}
  {%- if messages and messages[0].role == 'system' -%}{{ text(messages[0].content) + '\n\n' }}{%- endif -%}
  {{ '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' + tool_lines(tools) + '</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' }}
{%- endif -%}
{%- for message in messages -%}
  {%- if tools and message.role == 'system' and loop.first -%}
  {%- elif message.role == 'tool' -%}
    {%- if loop.first or loop.previtem.role != 'tool' -%}{{ '<|im_start|>user' }}{%- endif -%}
    {{ '\n<tool_response>\n' + text(message.content) + '\n</tool_response>' }}
    {%- if loop.last or loop.nextitem.role != 'tool' -%}{{ '<|im_end|>\n' }}{%- endif -%}
  {%- elif message.role == 'assistant' and message.tool_calls -%}
    {{ '<|im_start|>assistant' }}
    {%- if text(message.content) -%}{{ '\n' + text(message.content) }}{%- endif -%}
    {%- for call in message.tool_calls -%}{{ '\n<tool_call>\n' + call_json(call, 'arguments') + '\n</tool_call>' }}{%- endfor -%}
    {{ '<|im_end|>\n' }}
  {%- else -%}
{{ '<|im_start|>' + message.role + '\n' + text(message.content) + '<|im_end|>\n' }}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"""

# Mistral v3: [AVAILABLE_TOOLS] before the last user message, [TOOL_CALLS]
# with a JSON array, [TOOL_RESULTS] with the content and the call's id.
_MISTRAL = _MACROS + """{{ bos_token }}
{%- set ns = namespace(system='', last_user=-1) -%}
{%- for message in messages -%}
  {%- if message.role == 'user' -%}{%- set ns.last_user = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{%- for message in messages -%}
  {%- if message.role == 'system' -%}
    {%- set ns.system = ns.system + text(message.content) + '\n\n' -%}
  {%- elif message.role == 'user' -%}
    {%- if tools and loop.index0 == ns.last_user -%}{{ '[AVAILABLE_TOOLS] ' + (tools | tojson) + '[/AVAILABLE_TOOLS]' }}{%- endif -%}
    {{ '[INST] ' + ns.system + text(message.content) + ' [/INST]' }}
    {%- set ns.system = '' -%}
  {%- elif message.role == 'tool' -%}
    {{ '[TOOL_RESULTS] {"content": ' + (text(message.content) | tojson) + ', "call_id": ' + ((message.tool_call_id or '') | tojson) + '}[/TOOL_RESULTS]' }}
  {%- elif message.role == 'assistant' and message.tool_calls -%}
    {%- if text(message.content) | trim -%}{{ ' ' + text(message.content) | trim }}{%- endif -%}
    {{ '[TOOL_CALLS] [' }}
    {%- for call in message.tool_calls -%}
      {{ call_json(call, 'arguments')[:-1] + ', "id": ' + ((call.id or '') | tojson) + '}' + (', ' if not loop.last else '') }}
    {%- endfor -%}
    {{ ']' + eos_token }}
  {%- else -%}
    {{ ' ' + text(message.content) + eos_token }}
  {%- endif -%}
{%- endfor -%}"""

# Phi-4-mini's format: functions in <|tool|> of the system message, calls as
# a JSON array in <|tool_call|>, results in the tool role.
_PHI3 = _MACROS + """
{%- if tools and not (messages and messages[0].role == 'system') -%}
  {{ '<|system|>\n<|tool|>' + (tools | tojson) + '<|/tool|>\nTo call functions, reply with <|tool_call|>[{"name": <function-name>, "arguments": <arguments-json-object>}]<|/tool_call|><|end|>\n' }}
{%- endif -%}
{%- for message in messages -%}
  {%- if tools and message.role == 'system' and loop.first -%}
    {{ '<|system|>\n' + text(message.content) + '<|tool|>' + (tools | tojson) + '<|/tool|>\nTo call functions, reply with <|tool_call|>[{"name": <function-name>, "arguments": <arguments-json-object>}]<|/tool_call|><|end|>\n' }}
  {%- elif message.role == 'assistant' and message.tool_calls -%}
    {{ '<|assistant|>\n' + text(message.content) + '<|tool_call|>[' }}
    {%- for call in message.tool_calls -%}{{ call_json(call, 'arguments') + (', ' if not loop.last else '') }}{%- endfor -%}
    {{ ']<|/tool_call|><|end|>\n' }}
  {%- else -%}
{{ '<|' + message.role + '|>\n' + text(message.content) + '<|end|>\n' }}
  {%- endif -%}
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


def _render_limit(messages: list[dict], tools: list[dict] | None = None) -> int:
    """Most characters a render may produce: the messages and tools (as JSON,
    whatever their content's type), several times over, plus room."""
    try:
        size = len(json.dumps([messages, tools], ensure_ascii=False, default=str))
    except (ValueError, RecursionError):  # circular or absurdly deep: no allowance for it
        size = 0
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
    except (ValueError, RecursionError) as exc:  # the request does not serialize (circular, too deep)
        raise TemplateError("the messages or tools cannot be passed to the chat template", param="messages") from exc


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

    @property
    def family(self) -> str | None:
        """The built-in template's name ("gemma", "llama3", ...); None for a model's or the config's own."""
        if self.origin.startswith("builtin:"):
            return self.origin.removeprefix("builtin:")
        return None

    @property
    def source(self) -> str:
        return self._source

    def render(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        if self._template is None:
            messages, tools = adapt_for_template(self._source, messages, tools)
        context = {
            "messages": messages,
            "add_generation_prompt": True,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        if tools is not None:
            context["tools"] = tools
        max_chars = _render_limit(messages, tools)
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


# A template that uses a name reads it from the context (or sets it itself).
_USES_TOOLS = re.compile(r"\btools\b")
_USES_TOOL_CALLS = re.compile(r"\btool_calls\b")
_USES_TOOL_ROLE = re.compile(r"""["']tool["']""")


@functools.lru_cache(maxsize=WORKER_CACHE_SIZE)
def _tool_support(source: str) -> tuple[bool, bool, bool]:
    """Whether a template reads the tools, calls in messages, and the tool role."""
    return (
        bool(_USES_TOOLS.search(source)),
        bool(_USES_TOOL_CALLS.search(source)),
        bool(_USES_TOOL_ROLE.search(source)),
    )


def template_reads_tools(source: str) -> bool:
    """Whether a template renders the tools itself (else they are described in the system message)."""
    return _tool_support(source)[0]


def hermes_tools_prompt(tools: list[dict]) -> str:
    """Tools described the Hermes way, for templates that do not render them."""
    lines = "".join(json.dumps(tool, ensure_ascii=False) + "\n" for tool in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{lines}</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def _parsed_arguments(call):
    """A call with its JSON-text arguments as an object: model templates
    (Llama 3.1's, Mistral's, ...) write them with ``| tojson``."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    arguments = call["function"].get("arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return call
        if isinstance(parsed, dict):
            return {**call, "function": {**call["function"], "arguments": parsed}}
    return call


def _hermes_call_text(call) -> str:
    function = call.get("function", call) if isinstance(call, dict) else {}
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    name = function.get("name", "") if isinstance(function, dict) else ""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


def adapt_for_template(source: str, messages: list[dict], tools: list[dict] | None) -> tuple[list[dict], list[dict] | None]:
    """Messages and tools fitted to a model's own template: call arguments as
    objects; where the template never reads the tools, they are described in
    the system message; where it knows no tool calls or tool role, calls and
    results become Hermes-style text in assistant and user turns."""
    adapted = []
    reads_tools, knows_calls, knows_tool_role = _tool_support(source)
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            if knows_calls:
                message = {**message, "tool_calls": [_parsed_arguments(call) for call in calls]}
            else:
                content = message.get("content")
                text = content if isinstance(content, str) else ""
                blocks = "\n".join(_hermes_call_text(call) for call in calls)
                message = {k: v for k, v in message.items() if k != "tool_calls"}
                message["content"] = f"{text}\n{blocks}" if text.strip() else blocks
        elif message.get("role") == "tool" and not knows_tool_role:
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
            message = {"role": "user", "content": f"<tool_response>\n{text}\n</tool_response>"}
        adapted.append(message)
    if tools and not reads_tools:
        prompt = hermes_tools_prompt(tools)
        if adapted and adapted[0].get("role") == "system" and isinstance(adapted[0].get("content"), str):
            adapted[0] = {**adapted[0], "content": adapted[0]["content"] + "\n\n" + prompt}
        else:
            adapted.insert(0, {"role": "system", "content": prompt})
    return adapted, tools


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
