"""Chat templates: built-ins by architecture, GGUF templates in a sandbox."""

import pytest

from hearth.engine.errors import TemplateError
from hearth.engine.templates.chat_template import (
    BUILTIN_TEMPLATES,
    ChatTemplate,
    builtin_template_name,
    choose_template,
    normalize_messages,
)


def gemma() -> ChatTemplate:
    return choose_template(gguf_template=None, override=None, architecture="gemma3", bos_token="<bos>", eos_token="<eos>")


def test_gemma_builtin_matches_gemma_chat_format():
    text = gemma().render(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Capital of France?"},
        ]
    )
    assert text == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nCapital of France?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_gemma_builtin_with_only_a_system_message():
    assert gemma().render([{"role": "system", "content": "Rules."}]) == (
        "<bos><start_of_turn>user\nRules.<end_of_turn>\n<start_of_turn>model\n"
    )


@pytest.mark.parametrize(
    "architecture, name",
    [("gemma3", "gemma"), ("gemma2", "gemma"), ("llama", "llama3"), ("qwen2", "chatml"), ("phi3", "phi3"), ("mistral3", "mistral"), ("brand-new", "chatml")],
)
def test_builtin_by_architecture(architecture: str, name: str):
    assert builtin_template_name(architecture) == name
    template = choose_template(gguf_template=None, override=None, architecture=architecture, bos_token="<s>", eos_token="</s>")
    assert template.origin == f"builtin:{name}"
    assert template.stop == BUILTIN_TEMPLATES[name].stop
    assert "hello there" in template.render([{"role": "user", "content": "hello there"}])


GENERATION_PROMPTS = {
    "gemma": "<start_of_turn>model\n",
    "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "chatml": "<|im_start|>assistant\n",
    "mistral": "U2 [/INST]",
    "phi3": "<|assistant|>\n",
}


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_every_builtin_ends_with_the_assistant_turn_open(name: str):
    messages = [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}]
    text = ChatTemplate(BUILTIN_TEMPLATES[name].source, bos_token="<s>", eos_token="</s>", origin=name).render(messages)
    assert text.index("U1") < text.index("A1") < text.index("U2")
    assert text.endswith(GENERATION_PROMPTS[name])


def test_gguf_template_is_used_and_override_wins():
    gguf_source = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
    template = choose_template(gguf_template=gguf_source, override=None, architecture="gemma3", bos_token="", eos_token="")
    assert template.origin == "gguf"
    assert template.render([{"role": "user", "content": "x"}]) == "[user]x"
    override = choose_template(gguf_template=gguf_source, override="OVR {{ messages[0].content }}", architecture="gemma3", bos_token="", eos_token="")
    assert override.origin == "config"
    assert override.render([{"role": "user", "content": "x"}]) == "OVR x"


def test_developer_role_becomes_system():
    assert normalize_messages([{"role": "developer", "content": "d"}]) == [{"role": "system", "content": "d"}]


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('touch /tmp/hearth-pwned').read() }}",
        "{{ messages.append(1) }}",
        "{% for x in range(10**9) %}{% endfor %}",
    ],
)
def test_hostile_templates_fail_the_request_only(payload: str):
    template = ChatTemplate(payload, bos_token="", eos_token="", origin="gguf")
    with pytest.raises(TemplateError):
        template.render([{"role": "user", "content": "x"}])


def test_raise_exception_is_a_template_error():
    template = ChatTemplate("{{ raise_exception('roles must alternate') }}", bos_token="", eos_token="", origin="gguf")
    with pytest.raises(TemplateError, match="roles must alternate"):
        template.render([])


def test_template_that_does_not_compile():
    with pytest.raises(TemplateError, match="does not compile"):
        ChatTemplate("{% for %}", bos_token="", eos_token="", origin="gguf")
