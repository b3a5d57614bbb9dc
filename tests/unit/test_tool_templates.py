"""Chat templates with tools: built-in templates render tools, calls and
results in their family's own format (the format the extractor reads back),
and models' own templates (rendered in worker processes) receive tools."""

import json

import pytest

from hearth.engine.templates.chat_template import (
    BUILTIN_TEMPLATES,
    ChatTemplate,
    choose_template,
)
from hearth.engine.tools.planning import AutoExtractor

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "22C sunny"},
    {"role": "user", "content": "Thanks!"},
]

# Per family: how the call and the result must appear in the prompt.
EXPECTED = {
    "chatml": (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
        "<|im_start|>user\n<tool_response>\n22C sunny\n</tool_response><|im_end|>",
    ),
    "llama3": (
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>',
        "<|start_header_id|>ipython<|end_header_id|>\n\n22C sunny<|eot_id|>",
    ),
    "mistral": (
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}]</s>',
        '[TOOL_RESULTS] {"content": "22C sunny", "call_id": "call_1"}[/TOOL_RESULTS]',
    ),
    "gemma": (
        '<start_of_turn>model\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><end_of_turn>',
        "<start_of_turn>user\n<tool_response>\n22C sunny\n</tool_response><end_of_turn>",
    ),
    "phi3": (
        '<|assistant|>\n<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]<|/tool_call|><|end|>',
        "<|tool|>\n22C sunny<|end|>",
    ),
}
# Per family: where the tools are described.
TOOLS_AT = {
    "chatml": "<tools>\n" + json.dumps(TOOL) + "\n</tools>",
    "llama3": json.dumps(TOOL, indent=4),
    "mistral": "[AVAILABLE_TOOLS] " + json.dumps([TOOL]) + "[/AVAILABLE_TOOLS][INST] Thanks! [/INST]",
    "gemma": json.dumps(TOOL),
    "phi3": "<|tool|>" + json.dumps([TOOL]) + "<|/tool|>",
}
# Per family: the call as the model is taught to write it.
CALL_TEXT = {
    "chatml": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    "llama3": '{"name": "get_weather", "parameters": {"city": "Paris"}}',
    "mistral": '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}]',
    "gemma": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    "phi3": '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]<|/tool_call|>',
}


def builtin(name: str) -> ChatTemplate:
    return ChatTemplate(BUILTIN_TEMPLATES[name].source, bos_token="<s>", eos_token="</s>", origin=f"builtin:{name}")


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_builtin_renders_tools_calls_and_results_in_its_format(name: str):
    text = builtin(name).render(HISTORY, tools=[TOOL])
    call, result = EXPECTED[name]
    assert TOOLS_AT[name] in text
    assert call in text
    assert result in text
    # In order, with the conversation around them.
    assert text.index("Weather in Paris?") < text.index(call) < text.index(result) < text.index("Thanks!")
    assert "Be brief." in text


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_the_call_a_template_teaches_is_one_the_extractor_reads(name: str):
    assert CALL_TEXT[name] in builtin(name).render(HISTORY, tools=[TOOL])
    shown, calls = _extract(CALL_TEXT[name])
    assert shown == ""
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]


def _extract(text: str):
    extractor = AutoExtractor(frozenset({"get_weather"}), True)
    shown, calls = extractor.push(text)
    rest, more = extractor.finish()
    return shown + rest, calls + more


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
@pytest.mark.parametrize("content", [None, "", [{"type": "text", "text": "Checking."}]])
def test_builtin_copes_with_empty_or_structured_content(name: str, content):
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": content, "tool_calls": [CALL, {**CALL, "id": "call_2", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25C"},
    ]
    text = builtin(name).render(messages, tools=[TOOL])
    for expected in ('"city": "Paris"', '"city": "Rome"', "22C", "25C"):
        assert expected in text
    assert ("Checking." in text) == isinstance(content, list)
    assert "None" not in text


def test_hermes_groups_consecutive_results_in_one_user_turn():
    messages = [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "", "tool_calls": [CALL, {**CALL, "id": "call_2"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "A"},
        {"role": "tool", "tool_call_id": "call_2", "content": "B"},
    ]
    text = builtin("chatml").render(messages, tools=[TOOL])
    assert "<|im_start|>user\n<tool_response>\nA\n</tool_response>\n<tool_response>\nB\n</tool_response><|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_without_tools_the_prompt_mentions_none(name: str):
    text = builtin(name).render([{"role": "user", "content": "Hi"}])
    assert "get_weather" not in text and "tool" not in text.lower()


def test_family_names_builtin_templates_only():
    assert choose_template(gguf_template=None, override=None, architecture="qwen2", bos_token="", eos_token="").family == "chatml"
    assert choose_template(gguf_template=None, override=None, architecture="llama", bos_token="", eos_token="").family == "llama3"
    own = choose_template(gguf_template="{{ messages[0].content }}", override=None, architecture="qwen2", bos_token="", eos_token="")
    assert own.family is None


# Models' own templates, rendered in worker processes.

# Qwen 2.5's template (abridged to its tool parts), as GGUF files carry it.
QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}{%- else %}{{- 'You are Qwen.' }}{%- endif %}
    {{- "\\n\\n# Tools\\n\\n<tools>" }}
    {%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}{{- '\\n' + message.content }}{%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}{{- tool_call.name }}{{- '", "arguments": ' }}{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\\n<tool_response>\\n' }}{{- message.content }}{{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}{{- '<|im_end|>\\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"""


def gguf(source: str) -> ChatTemplate:
    return choose_template(gguf_template=source, override=None, architecture="qwen2", bos_token="", eos_token="")


def test_gguf_template_receives_tools_and_tool_history_in_its_worker():
    template = gguf(QWEN25)
    assert template.origin == "gguf"
    text = template.render(HISTORY, tools=[TOOL])
    assert "<tools>\n" + json.dumps(TOOL) + "\n</tools>" in text
    # Arguments reach the template as an object: `| tojson` writes them once, not as a quoted string.
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\n22C sunny\n</tool_response><|im_end|>" in text


def test_gguf_template_that_ignores_tools_still_shows_them_to_the_model():
    plain = "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}<assistant>"
    text = gguf(plain).render(HISTORY, tools=[TOOL])
    # Tools in the system message, Hermes style; calls and results as text the template can show.
    assert text.startswith("<system>Be brief.\n\n# Tools")
    assert json.dumps(TOOL) in text
    assert '<assistant><tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call></assistant>' in text
    assert "<user><tool_response>\n22C sunny\n</tool_response></user>" in text


def test_gguf_template_render_limit_counts_the_tools():
    # A tool description past the base output limit: the template writes it out, and that is allowed.
    big = {**TOOL, "function": {**TOOL["function"], "description": "x" * 1_200_000}}
    text = gguf("{% for t in tools %}{{ t | tojson }}{% endfor %}{{ messages | length }}").render(
        [{"role": "assistant", "content": None, "tool_calls": [CALL]}], tools=[big]
    )
    assert len(text) > 1_200_000 and text.endswith("1")
