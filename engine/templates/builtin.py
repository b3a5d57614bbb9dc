"""Hearth's own chat templates, one per model family, chosen by architecture
for models whose file carries none. Trusted: they render in the engine."""

from dataclasses import dataclass

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


def template_source_label(*, gguf_template: str | None, override: str | None, architecture: str) -> str:
    """What choose_template would pick, without compiling anything."""
    if override:
        return "config"
    if gguf_template:
        return "gguf"
    return f"builtin:{builtin_template_name(architecture)}"
