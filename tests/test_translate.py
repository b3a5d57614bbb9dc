"""OpenAI request -> engine GenerateRequest translation."""

import pytest

from hearth.adapter.errors import OpenAIError
from hearth.adapter.protocol.chat import ChatCompletionRequest
from hearth.adapter.protocol.completions import CompletionRequest
from hearth.adapter.translate import chat_to_generate, completion_to_generate


def chat(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields})


def test_chat_fields_are_carried_over():
    request = chat(
        messages=[
            {"role": "developer", "content": "be nice"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        ],
        temperature=0.2,
        top_p=0.5,
        top_k=7,
        min_p=0.1,
        seed=-1,
        stop="END",
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        repeat_penalty=1.2,
        max_tokens=50,
        user="someone",
        some_vendor_field={"x": 1},
    )
    generate = chat_to_generate(request, "req-1")
    assert [(m.role, m.content) for m in generate.messages] == [("developer", "be nice"), ("user", "a\nb")]
    assert generate.model == "m" and generate.request_id == "req-1"
    assert generate.temperature == pytest.approx(0.2)
    assert generate.top_p == pytest.approx(0.5)
    assert (generate.top_k, generate.max_tokens) == (7, 50)
    assert generate.seed == 2**64 - 1
    assert list(generate.stop) == ["END"]
    assert generate.repeat_penalty == pytest.approx(1.2)


def test_unset_sampling_fields_stay_unset():
    generate = chat_to_generate(chat(), "r")
    for name in ("temperature", "top_p", "top_k", "min_p", "seed", "max_tokens"):
        assert not generate.HasField(name), name


def test_n_is_carried_to_the_engine():
    assert chat_to_generate(chat(n=3), "r").n == 3
    assert not chat_to_generate(chat(), "r").HasField("n")


def test_max_completion_tokens_wins_over_max_tokens():
    assert chat_to_generate(chat(max_tokens=10, max_completion_tokens=3), "r").max_tokens == 3


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"response_format": {"type": "json_object"}}, "response_format.type"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "tool", "content": "r", "tool_call_id": "1"}]}, "messages[0].role"),
        ({"stop": [str(i) for i in range(17)]}, "stop"),
    ],
)
def test_unsupported_fields_are_refused_by_name(fields: dict, param: str):
    with pytest.raises(OpenAIError) as raised:
        chat_to_generate(chat(**fields), "r")
    assert raised.value.status == 400
    assert raised.value.param == param


def test_tools_with_tool_choice_none_are_ignored():
    generate = chat_to_generate(chat(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="none"), "r")
    assert len(generate.messages) == 1


def test_completion_prompt_forms():
    assert completion_to_generate(CompletionRequest(model="m", prompt="abc"), "r").prompt == "abc"
    assert completion_to_generate(CompletionRequest(model="m", prompt=["abc"]), "r").prompt == "abc"
    # OpenAI's default for completions.
    assert completion_to_generate(CompletionRequest(model="m", prompt="abc"), "r").max_tokens == 16
    for prompt in (["a", "b"], [1, 2, 3], ""):
        with pytest.raises(OpenAIError) as raised:
            completion_to_generate(CompletionRequest(model="m", prompt=prompt), "r")
        assert raised.value.param == "prompt"
