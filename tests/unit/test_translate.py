"""OpenAI request -> engine GenerateRequest translation."""

import json

import pytest

from hearth.adapter.common.errors import ApiError
from hearth.adapter.openai.protocol.chat import ChatCompletionRequest
from hearth.adapter.openai.protocol.completions import CompletionRequest
from hearth.adapter.openai.translate import chat_to_generate, completion_to_generate
from hearth.engine.v1 import engine_pb2 as pb


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
        ({"logit_bias": {"x": 5}}, "logit_bias"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy"}}, "audio"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "function", "content": "r", "name": "f"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "[1]"}}]}]},
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
def test_unsupported_fields_are_refused_by_name(fields: dict, param: str):
    with pytest.raises(ApiError) as raised:
        chat_to_generate(chat(**fields), "r")
    assert raised.value.status == 400
    assert raised.value.param == param


def test_tools_and_tool_choice_are_carried_over():
    weather = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    generate = chat_to_generate(
        chat(
            tools=[
                {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": weather}},
                {"type": "function", "function": {"name": "now"}},
            ],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
        ),
        "r",
    )
    assert [t.name for t in generate.tools] == ["get_weather", "now"]
    assert json.loads(generate.tools[0].parameters_json) == weather
    assert generate.tools[1].parameters_json == ""
    assert generate.tool_choice == pb.TOOL_CHOICE_FUNCTION and generate.tool_choice_function == "get_weather"
    assert generate.HasField("parallel_tool_calls") and not generate.parallel_tool_calls
    assert chat_to_generate(chat(tools=[{"type": "function", "function": {"name": "f"}}]), "r").tool_choice == (
        pb.TOOL_CHOICE_UNSPECIFIED
    )
    generate = chat_to_generate(chat(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="required"), "r")
    assert generate.tool_choice == pb.TOOL_CHOICE_REQUIRED


def test_tool_history_is_carried_over():
    generate = chat_to_generate(
        chat(
            messages=[
                {"role": "user", "content": "weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "w", "arguments": '{"city": "Paris"}'}}],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            ]
        ),
        "r",
    )
    assistant, tool = generate.messages[1], generate.messages[2]
    assert (assistant.content, assistant.tool_calls[0].id, assistant.tool_calls[0].name) == ("", "call_1", "w")
    assert json.loads(assistant.tool_calls[0].arguments) == {"city": "Paris"}
    assert (tool.role, tool.tool_call_id, tool.content) == ("tool", "call_1", "18C")


def test_structured_output_logprobs_and_logit_bias_are_carried_over():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    generate = chat_to_generate(
        chat(
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}},
            logprobs=True,
            top_logprobs=5,
            logit_bias={"42": -100, "7": 2.5},
        ),
        "r",
    )
    assert generate.response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert json.loads(generate.response_format.json_schema) == schema
    assert (generate.logprobs, generate.top_logprobs) == (True, 5)
    assert dict(generate.logit_bias) == {42: -100.0, 7: 2.5}
    assert chat_to_generate(chat(response_format={"type": "json_object"}), "r").response_format.type == (
        pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    )
    assert chat_to_generate(chat(response_format={"type": "text"}), "r").response_format.type == (
        pb.RESPONSE_FORMAT_TYPE_UNSPECIFIED
    )


def test_tools_with_tool_choice_none_are_passed_as_none():
    generate = chat_to_generate(chat(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="none"), "r")
    assert generate.tool_choice == pb.TOOL_CHOICE_NONE


def test_completion_logprobs_are_carried_over():
    generate = completion_to_generate(CompletionRequest(model="m", prompt="abc", logprobs=3), "r")
    assert (generate.logprobs, generate.top_logprobs) == (True, 3)
    assert not completion_to_generate(CompletionRequest(model="m", prompt="abc"), "r").logprobs


def test_completion_prompt_forms():
    assert completion_to_generate(CompletionRequest(model="m", prompt="abc"), "r").prompt == "abc"
    assert completion_to_generate(CompletionRequest(model="m", prompt=["abc"]), "r").prompt == "abc"
    # OpenAI's default for completions.
    assert completion_to_generate(CompletionRequest(model="m", prompt="abc"), "r").max_tokens == 16
    for prompt in (["a", "b"], [1, 2, 3], ""):
        with pytest.raises(ApiError) as raised:
            completion_to_generate(CompletionRequest(model="m", prompt=prompt), "r")
        assert raised.value.param == "prompt"
