"""Chat templates: the GGUF's own (untrusted Jinja, rendered in a sandbox),
a per-model override from the config, or a built-in one chosen by architecture."""

import json
from dataclasses import dataclass
from datetime import datetime

from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hearth.engine.errors import TemplateError

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


def _raise_exception(message: str) -> None:
    raise TemplateError(f"chat template error: {message}", param="messages")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(value, indent=None, ensure_ascii=False, sort_keys=False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _environment() -> ImmutableSandboxedEnvironment:
    # Templates in GGUF files are untrusted code (CVE-2024-34359): the sandbox
    # blocks attribute access to Python internals and mutation of inputs.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.filters["tojson"] = _tojson
    return env


class ChatTemplate:
    """A compiled template with the special-token strings it is rendered with."""

    def __init__(self, source: str, *, bos_token: str, eos_token: str, origin: str, stop: tuple[str, ...] = ()):
        self.origin = origin
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.stop = stop
        try:
            self._template = _environment().from_string(source)
        except JinjaTemplateError as exc:
            raise TemplateError(f"the model's chat template does not compile: {exc}", param="messages") from exc

    def render(self, messages: list[dict[str, str]]) -> str:
        try:
            return self._template.render(
                messages=messages,
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateError:
            raise
        except Exception as exc:  # sandbox violations and template bugs alike fail this request only
            raise TemplateError(f"the model's chat template failed: {type(exc).__name__}: {exc}"[:500], param="messages") from exc


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


def normalize_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """OpenAI's 'developer' role is a system message to every template we know."""
    return [
        {"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]} for m in messages
    ]
