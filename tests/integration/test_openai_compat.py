"""OpenAI compatibility in depth, driven by the openai SDK against a started
`hearth serve`: tools, structured output, logprobs, usage in streams,
sampling controls, embeddings and tokenization.

The default model is a 270M base model: it does not follow instructions, so
where a test needs a tool call or JSON it forces one (tool_choice, response_format),
which Hearth enforces with a grammar."""

import json

import httpx
import jsonschema_rs
import openai
import pytest

from tests.helpers.models import DEFAULT_MODEL_ID, INSTRUCT_MODEL_ID

WEEK = [{"role": "user", "content": "Monday, Tuesday, Wednesday,"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 40},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a timezone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string", "maxLength": 40}}, "required": ["tz"]},
    },
}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def _check_call(call, tools=(WEATHER_TOOL,)):
    by_name = {t["function"]["name"]: t for t in tools}
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name in by_name
    arguments = json.loads(call.function.arguments)
    jsonschema_rs.validate(by_name[call.function.name]["function"]["parameters"], arguments)
    return arguments


# Tools


def test_required_tool_choice_returns_a_valid_call(openai_client):
    # One call whose schema bounds every string: the grammar makes it end, on any CPU and for any model.
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=ASK_WEATHER,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=200,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls
    for call in choice.message.tool_calls:
        _check_call(call)
    assert len({call.id for call in choice.message.tool_calls}) == len(choice.message.tool_calls)
    assert reply.usage.completion_tokens > 0


def test_named_tool_choice_calls_that_tool_once(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=ASK_WEATHER,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False,
        max_tokens=80,
        temperature=0.8,
        seed=3,
    )
    calls = reply.choices[0].message.tool_calls
    assert len(calls) == 1
    assert calls[0].function.name == "get_time"
    _check_call(calls[0], (WEATHER_TOOL, TIME_TOOL))


def test_streamed_tool_calls_arrive_as_openai_sends_them(openai_client):
    stream = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=ASK_WEATHER,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=200,
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict] = {}
    finish = None
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for fragment in choice.delta.tool_calls or ():
                if fragment.index not in calls:
                    # The first fragment of a call names it.
                    assert fragment.id and fragment.type == "function" and fragment.function.name
                    calls[fragment.index] = {"id": fragment.id, "name": fragment.function.name, "arguments": ""}
                else:
                    assert fragment.id is None and fragment.type is None and fragment.function.name is None
                calls[fragment.index]["arguments"] += fragment.function.arguments or ""
    assert finish == "tool_calls"
    assert sorted(calls) == list(range(len(calls))) and calls
    for call in calls.values():
        assert call["name"] == "get_weather"
        jsonschema_rs.validate(WEATHER_TOOL["function"]["parameters"], json.loads(call["arguments"]))
    assert usage is not None and usage.completion_tokens > 0


def test_auto_tool_choice_answers_with_text_or_valid_calls(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID, messages=ASK_WEATHER, tools=[WEATHER_TOOL, TIME_TOOL], max_tokens=40, temperature=0
    )
    choice = reply.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        for call in choice.message.tool_calls:
            _check_call(call, (WEATHER_TOOL, TIME_TOOL))
    else:
        assert choice.finish_reason in ("stop", "length")
        assert choice.message.content


def test_tool_history_is_rendered_and_answered(openai_client):
    messages = [
        *ASK_WEATHER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "18 degrees and sunny"},
    ]
    counted = httpx.post(
        f"{openai_client.base_url}".removesuffix("/v1/") + "/tokenize",
        json={"model": DEFAULT_MODEL_ID, "messages": messages, "with_pieces": True},
        timeout=60,
    ).json()
    rendered = "".join(counted["pieces"])
    # The call and its result both reach the prompt.
    assert "Paris" in rendered and "18 degrees and sunny" in rendered
    # /tokenize renders messages exactly as a chat request without tools does.
    plain = openai_client.chat.completions.create(model=DEFAULT_MODEL_ID, messages=messages, max_tokens=4, temperature=0)
    assert plain.usage.prompt_tokens == counted["count"]
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID, messages=messages, tools=[WEATHER_TOOL], max_tokens=12, temperature=0
    )
    assert reply.choices[0].finish_reason in ("stop", "length", "tool_calls")
    # The tools are described to the model too.
    assert reply.usage.prompt_tokens > plain.usage.prompt_tokens


def test_tool_choice_none_answers_in_text(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID, messages=WEEK, tools=[WEATHER_TOOL], tool_choice="none", max_tokens=6, temperature=0
    )
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content


# Structured output


def test_json_object_output_parses(instruct_server):
    # JSON mode bounds the shape, not the length: a model that follows the
    # request closes its object, and the grammar then lets it only end its turn.
    client = openai.OpenAI(base_url=f"{instruct_server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model=INSTRUCT_MODEL_ID,
        messages=[{"role": "user", "content": "Give a JSON object with one key, name, for a cat."}],
        response_format={"type": "json_object"},
        max_tokens=300,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 30},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "role": {"type": "string", "enum": ["admin", "user", "guest"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
    },
    "required": ["name", "age", "role", "tags"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_output_validates(openai_client, stream):
    request = dict(
        model=DEFAULT_MODEL_ID,
        messages=[{"role": "user", "content": "Make up a person."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}},
        max_tokens=150,
        temperature=0.8,
        seed=11,
    )
    if stream:
        text = "".join(
            c.choices[0].delta.content or ""
            for c in openai_client.chat.completions.create(stream=True, **request)
            if c.choices
        )
    else:
        text = openai_client.chat.completions.create(**request).choices[0].message.content
    jsonschema_rs.validate(PERSON, json.loads(text))


def test_parse_helper_of_the_sdk(openai_client):
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    reply = openai_client.chat.completions.parse(
        model=DEFAULT_MODEL_ID,
        messages=[{"role": "user", "content": "A city."}],
        response_format=City,
        max_tokens=60,
        temperature=0,
    )
    assert isinstance(reply.choices[0].message.parsed, City)


# Usage in streams, logprobs, sampling controls


def test_stream_usage_is_a_last_chunk_without_choices(openai_client):
    chunks = list(
        openai_client.chat.completions.create(
            model=DEFAULT_MODEL_ID, messages=WEEK, max_tokens=5, temperature=0, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_logprobs(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=WEEK,
        max_tokens=6,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
        # Log-probabilities are the model's own; without a penalty, greedy picks the top one.
        extra_body={"repeat_penalty": 1.0},
    )
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens == 6
    assert "".join(entry.token for entry in content) == reply.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        # Greedy: the chosen token is the most likely one.
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-4)
        assert [t.logprob for t in entry.top_logprobs] == sorted((t.logprob for t in entry.top_logprobs), reverse=True)
        assert bytes(entry.bytes).decode("utf-8", "replace") == entry.token


def test_streamed_chat_logprobs_cover_every_token(openai_client):
    chunks = list(
        openai_client.chat.completions.create(
            model=DEFAULT_MODEL_ID, messages=WEEK, max_tokens=6, temperature=0, logprobs=True, stream=True
        )
    )
    entries = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(entries) == 6
    assert "".join(e.token for e in entries) == text


def test_legacy_completion_logprobs(openai_client):
    reply = openai_client.completions.create(
        model=DEFAULT_MODEL_ID, prompt="Monday, Tuesday, Wednesday,", max_tokens=4, temperature=0, logprobs=2
    )
    logprobs = reply.choices[0].logprobs
    assert "".join(logprobs.tokens) == reply.choices[0].text
    assert len(logprobs.token_logprobs) == 4 and all(lp <= 0 for lp in logprobs.token_logprobs)
    assert all(len(top) <= 2 and token in top for top, token in zip(logprobs.top_logprobs, logprobs.tokens))
    assert logprobs.text_offset[0] == 0
    assert logprobs.text_offset == [sum(len(t) for t in logprobs.tokens[:i]) for i in range(4)]


def _token_id(openai_client, text: str) -> int:
    base = f"{openai_client.base_url}".removesuffix("/v1/")
    reply = httpx.post(
        f"{base}/tokenize", json={"model": DEFAULT_MODEL_ID, "prompt": text, "add_special_tokens": False}, timeout=60
    ).json()
    assert reply["count"] == 1, reply
    return reply["tokens"][0]


def test_logit_bias_bans_and_forces_tokens(openai_client):
    def first_token(**extra) -> str:
        reply = openai_client.completions.create(
            model=DEFAULT_MODEL_ID, prompt="Monday, Tuesday, Wednesday,", max_tokens=1, temperature=0, logprobs=0, **extra
        )
        return reply.choices[0].logprobs.tokens[0]

    greedy = first_token()
    assert greedy == " Thursday"
    banned = _token_id(openai_client, greedy)
    assert first_token(logit_bias={str(banned): -100}) != greedy
    forced = _token_id(openai_client, " banana")
    assert first_token(logit_bias={str(forced): 100}) == " banana"


def test_seed_reproduces_sampled_text(openai_client):
    def sample(seed: int) -> str:
        return openai_client.chat.completions.create(
            model=DEFAULT_MODEL_ID, messages=WEEK, max_tokens=12, temperature=1.0, seed=seed
        ).choices[0].message.content

    assert sample(1234) == sample(1234)
    assert len({sample(s) for s in (1, 2, 3, 4)}) > 1


def test_max_completion_tokens_and_sampling_extensions(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=WEEK,
        max_completion_tokens=3,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        extra_body={"top_k": 20, "min_p": 0.1, "repeat_penalty": 1.2},
        seed=5,
    )
    assert reply.usage.completion_tokens == 3
    assert reply.choices[0].finish_reason == "length"


def test_n_choices(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID, messages=WEEK, max_tokens=4, n=2, temperature=0
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[0].message.content == reply.choices[1].message.content


def test_fields_without_meaning_here_are_accepted(openai_client):
    reply = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=WEEK,
        max_tokens=2,
        user="someone",
        metadata={"k": "v"},
        store=False,
        service_tier="auto",
        reasoning_effort="low",
    )
    assert reply.choices[0].message.content is not None


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]}, "modalities"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format.json_schema"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logit_bias": {"999999999": 5}}, "logit_bias"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
    ],
)
def test_unsupported_fields_are_refused_by_name(openai_client, extra, param):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client.chat.completions.create(model=DEFAULT_MODEL_ID, messages=WEEK, max_tokens=2, **extra)
    assert raised.value.body["param"] == param


def test_unsupported_json_schema_is_refused(openai_client):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client.chat.completions.create(
            model=DEFAULT_MODEL_ID,
            messages=WEEK,
            max_tokens=2,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "$ref": "#/nowhere"}}},
        )
    assert raised.value.body["param"].startswith("response_format")
