"""Sampling controls through a real engine over gRPC: response_format (JSON
object and JSON Schema grammars), logit_bias and logprobs, on real llama.cpp
inference with the default model."""

import json
import math
import re
import time

import grpc
import pytest

from hearth.engine.grammar.integers import integer_bounds, integer_range_gbnf
from hearth.engine.grammar.json_schema import json_schema_grammar
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import read_rpc_error
from tests.helpers.models import DEFAULT_MODEL_ID, TINY_MODEL_ID
from tests.helpers.tools import OPENCODE_2020

DAYS = "Monday, Tuesday, Wednesday,"
# One example turn keeps a base model's objects short enough to close.
JSON_PROMPT = [
    pb.ChatMessage(role="user", content="Answer in JSON. What is a cat called and how old is it?"),
    pb.ChatMessage(role="assistant", content='{"name": "Tom", "age": 3}'),
    pb.ChatMessage(role="user", content="And a dog?"),
]

PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "colour": {"enum": ["red", "green", "blue"]},
        "age": {"type": "integer", "minimum": 1, "maximum": 120},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
    },
    "required": ["name", "colour", "age", "tags"],
    "additionalProperties": False,
}

OPENCODE_SCHEMA = OPENCODE_2020


@pytest.fixture
def stub(engine):
    with grpc.insecure_channel(engine.address) as channel:
        yield engine_pb2_grpc.EngineStub(channel)


def run(stub, **fields) -> list[pb.GenerateResponse]:
    return list(stub.Generate(pb.GenerateRequest(**fields), timeout=180))


def texts(messages: list[pb.GenerateResponse], index: int = 0) -> str:
    return "".join(m.text for m in messages if m.index == index)


def json_format() -> pb.ResponseFormat:
    return pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT)


def schema_format(schema: dict) -> pb.ResponseFormat:
    return pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=json.dumps(schema))


def invalid_param(stub, **fields) -> str:
    with pytest.raises(grpc.RpcError) as raised:
        run(stub, **fields)
    info = read_rpc_error(raised.value)
    assert info.code == grpc.StatusCode.INVALID_ARGUMENT, info.message
    assert info.reason == "INVALID_ARGUMENT"
    return info.metadata.get("param", "")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_json_object_output_is_a_json_object(stub, seed):
    messages = run(
        stub,
        model=DEFAULT_MODEL_ID,
        messages=JSON_PROMPT,
        response_format=json_format(),
        temperature=0.7,
        seed=seed,
        max_tokens=400,
    )
    assert messages[-1].finish_reason == pb.FINISH_REASON_STOP
    assert isinstance(json.loads(texts(messages)), dict)


def test_json_schema_output_is_valid_against_the_schema(stub):
    for seed in (4, 5):
        messages = run(
            stub,
            model=DEFAULT_MODEL_ID,
            messages=[pb.ChatMessage(role="user", content="Invent a person.")],
            response_format=schema_format(PERSON_SCHEMA),
            temperature=0.7,
            seed=seed,
            max_tokens=300,
        )
        assert messages[-1].finish_reason == pb.FINISH_REASON_STOP
        person = json.loads(texts(messages))
        assert set(person) == {"name", "colour", "age", "tags"}
        assert isinstance(person["name"], str) and len(person["name"]) <= 24
        assert person["colour"] in ("red", "green", "blue")
        assert isinstance(person["age"], int) and 1 <= person["age"] <= 120
        assert isinstance(person["tags"], list) and len(person["tags"]) <= 3
        assert all(isinstance(tag, str) and len(tag) <= 12 for tag in person["tags"])


def test_opencode_shaped_schema_converts_quickly_and_constrains(stub):
    started = time.monotonic()
    grammar = json_schema_grammar(OPENCODE_SCHEMA)
    assert time.monotonic() - started < 1.0
    assert len(grammar) < 20_000
    messages = run(
        stub,
        model=DEFAULT_MODEL_ID,
        messages=[pb.ChatMessage(role="user", content="Read the file from line 10.")],
        response_format=schema_format(OPENCODE_SCHEMA),
        temperature=0.7,
        seed=7,
        max_tokens=200,
    )
    assert messages[-1].finish_reason == pb.FINISH_REASON_STOP
    arguments = json.loads(texts(messages))
    assert set(arguments) <= {"offset", "limit"}
    assert isinstance(arguments["offset"], int) and not isinstance(arguments["offset"], bool)
    assert arguments["offset"] > 0
    if "limit" in arguments:
        assert isinstance(arguments["limit"], int | float)


def test_n2_with_a_grammar_constrains_every_sequence(stub):
    messages = run(
        stub,
        model=DEFAULT_MODEL_ID,
        messages=JSON_PROMPT,
        response_format=json_format(),
        temperature=0.9,
        seed=11,
        n=2,
        max_tokens=400,
    )
    ends = {m.index: m.finish_reason for m in messages if m.finish_reason}
    assert ends == {0: pb.FINISH_REASON_STOP, 1: pb.FINISH_REASON_STOP}
    for index in (0, 1):
        assert isinstance(json.loads(texts(messages, index)), dict)


def test_a_seeded_grammar_request_is_reproducible(stub):
    fields = {
        "model": DEFAULT_MODEL_ID,
        "messages": JSON_PROMPT,
        "response_format": json_format(),
        "temperature": 1.0,
        "seed": 42,
        "max_tokens": 60,
    }
    assert texts(run(stub, **fields)) == texts(run(stub, **fields))


def first_token(stub, **fields) -> pb.TokenLogprob:
    messages = run(stub, model=DEFAULT_MODEL_ID, prompt=DAYS, temperature=0, max_tokens=1, logprobs=True, **fields)
    return next(lp for m in messages for lp in m.logprobs)


def test_logit_bias_bans_and_forces_tokens(stub):
    greedy = first_token(stub, top_logprobs=5)
    assert greedy.token.strip() == "Thursday"
    banned = first_token(stub, logit_bias={greedy.token_id: -100})
    assert banned.token_id != greedy.token_id
    # An unlikely token (not among the top 5) becomes certain with +100.
    unlikely = first_token(stub, top_logprobs=20).top_logprobs[-1]
    assert unlikely.token_id not in {t.token_id for t in greedy.top_logprobs}
    forced = first_token(stub, logit_bias={unlikely.token_id: 100})
    assert forced.token_id == unlikely.token_id


def test_logprobs_cover_every_generated_token(stub):
    messages = run(
        stub,
        model=DEFAULT_MODEL_ID,
        prompt=DAYS,
        temperature=0,
        repeat_penalty=1.0,  # greedy on the raw logits that logprobs report
        max_tokens=12,
        logprobs=True,
        top_logprobs=3,
    )
    entries = [lp for m in messages for lp in m.logprobs]
    assert len(entries) == messages[-1].usage.completion_tokens == 12
    assert "".join(e.token for e in entries) == texts(messages)
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        top = [t.logprob for t in entry.top_logprobs]
        assert top == sorted(top, reverse=True) and all(lp <= 0 for lp in top)
        # Greedy: the chosen token is the most likely one.
        assert entry.top_logprobs[0].token_id == entry.token_id
        assert math.isclose(entry.top_logprobs[0].logprob, entry.logprob, abs_tol=1e-5)
        assert entry.bytes == entry.token.encode("utf-8")


def test_logprobs_are_kept_when_a_stop_string_ends_the_sequence(stub):
    messages = run(
        stub, model=DEFAULT_MODEL_ID, prompt=DAYS, temperature=0, max_tokens=40, logprobs=True, stop=["Friday"]
    )
    entries = [lp for m in messages for lp in m.logprobs]
    assert messages[-1].finish_reason == pb.FINISH_REASON_STOP
    assert len(entries) == messages[-1].usage.completion_tokens
    assert "Friday" in "".join(e.token for e in entries)
    assert all(not e.top_logprobs for e in entries)


def test_logprobs_with_a_sampled_request(stub):
    messages = run(
        stub, model=DEFAULT_MODEL_ID, prompt=DAYS, temperature=0.8, seed=3, max_tokens=8, logprobs=True, top_logprobs=2
    )
    entries = [lp for m in messages for lp in m.logprobs]
    assert len(entries) == messages[-1].usage.completion_tokens
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 2 for e in entries)


def test_without_logprobs_none_are_sent(stub):
    messages = run(stub, model=DEFAULT_MODEL_ID, prompt=DAYS, temperature=0, max_tokens=4)
    assert all(not m.logprobs for m in messages)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema="[1, 2]")},
         "response_format.json_schema"),
        ({"response_format": pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema="{not json")},
         "response_format.json_schema"),
        ({"response_format": schema_format({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}})},
         "response_format.json_schema.properties.a.$ref"),
        ({"logit_bias": {5: 101.0}}, "logit_bias"),
        ({"logit_bias": {5: -100.5}}, "logit_bias"),
        ({"logit_bias": {10**9: 1.0}}, "logit_bias"),
        ({"logit_bias": {-1: 1.0}}, "logit_bias"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
    ],
)
def test_bad_sampling_controls_are_refused_naming_the_field(stub, fields, param):
    assert invalid_param(stub, model=TINY_MODEL_ID, messages=JSON_PROMPT, max_tokens=4, **fields) == param


def test_tools_and_response_format_together_are_refused(stub):
    tool = pb.Tool(name="read", parameters_json=json.dumps(OPENCODE_SCHEMA))
    param = invalid_param(
        stub, model=TINY_MODEL_ID, messages=JSON_PROMPT, tools=[tool], response_format=json_format(), max_tokens=4
    )
    assert param == "response_format"


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        (pb.Tool(name="", parameters_json="{}"), "tools[0].function.name"),
        (pb.Tool(name="read", parameters_json="{bad"), "tools[0].function.parameters"),
        (pb.Tool(name="read", parameters_json="[]"), "tools[0].function.parameters"),
    ],
)
def test_bad_tools_are_refused_naming_the_field(stub, tool, param):
    assert invalid_param(stub, model=TINY_MODEL_ID, messages=JSON_PROMPT, tools=[tool], max_tokens=4) == param


def test_tool_choice_must_name_a_given_tool(stub):
    param = invalid_param(
        stub,
        model=TINY_MODEL_ID,
        messages=JSON_PROMPT,
        tools=[pb.Tool(name="read")],
        tool_choice=pb.TOOL_CHOICE_FUNCTION,
        tool_choice_function="write",
        max_tokens=4,
    )
    assert param == "tool_choice"


def test_the_engine_serves_on_after_refusals(stub):
    messages = run(stub, model=TINY_MODEL_ID, prompt="hello", temperature=0, max_tokens=3)
    assert messages[-1].usage.completion_tokens == 3


@pytest.mark.parametrize(
    ("low", "high"),
    [(1, 120), (0, 9), (7, 1234), (-50, 50), (-120, -3), (999, 1001), (1, None), (-20, None), (None, 5), (None, -7)],
)
def test_integer_ranges_match_exactly_their_integers(low, high):
    # The GBNF expression uses only literals, classes, groups and counted
    # repetition: without quotes and spaces it reads as a regular expression.
    pattern = re.compile(integer_range_gbnf(low, high).replace('"', "").replace(" ", ""))
    lowest = low if low is not None else -5000
    highest = high if high is not None else 5000
    for number in [*range(lowest - 1500, highest + 1500), 10**15 + 7, -(10**15) - 7]:
        allowed = (low is None or number >= low) and (high is None or number <= high)
        assert bool(pattern.fullmatch(str(number))) == allowed, number
    assert not pattern.fullmatch("007") and not pattern.fullmatch("-0")


def test_integer_bounds_read_every_draft():
    assert integer_bounds({"exclusiveMinimum": 0}) == (1, None)
    assert integer_bounds({"minimum": 0, "exclusiveMinimum": True, "maximum": 10, "exclusiveMaximum": True}) == (1, 9)
    assert integer_bounds({"minimum": 1.5, "maximum": 4.5}) == (2, 4)
    with pytest.raises(ValueError):
        integer_bounds({"minimum": 5, "maximum": 4})


def test_a_required_tool_call_comes_back_as_a_call(stub):
    tool = pb.Tool(name="read", description="Read a file", parameters_json=json.dumps(OPENCODE_SCHEMA))
    messages = run(
        stub,
        model=DEFAULT_MODEL_ID,
        messages=[pb.ChatMessage(role="user", content="Read the file from line 10.")],
        tools=[tool],
        tool_choice=pb.TOOL_CHOICE_REQUIRED,
        temperature=0.7,
        seed=5,
        max_tokens=200,
        logprobs=True,
    )
    calls = [c for m in messages for c in m.tool_calls]
    assert messages[-1].finish_reason == pb.FINISH_REASON_TOOL_CALLS
    assert calls and all(c.name == "read" and c.id for c in calls)
    assert all(isinstance(json.loads(c.arguments)["offset"], int) for c in calls)
    # The tokens that spelled the call keep their logprobs.
    assert len([lp for m in messages for lp in m.logprobs]) == messages[-1].usage.completion_tokens


def test_a_conversation_with_a_tool_call_and_its_result_goes_on(stub):
    tool = pb.Tool(name="read", description="Read a file", parameters_json=json.dumps(OPENCODE_SCHEMA))
    call = pb.ToolCall(id="call_1", name="read", arguments='{"offset": 10}')
    conversation = [
        pb.ChatMessage(role="user", content="Read the file from line 10."),
        pb.ChatMessage(role="assistant", tool_calls=[call]),
        pb.ChatMessage(role="tool", tool_call_id="call_1", name="read", content="10: Monday, Tuesday"),
    ]
    messages = run(stub, model=DEFAULT_MODEL_ID, messages=conversation, tools=[tool], temperature=0, max_tokens=8)
    assert messages[-1].usage.completion_tokens >= 1
    # The template saw the call and its result.
    rendered = "".join(stub.Tokenize(pb.TokenizeRequest(model=DEFAULT_MODEL_ID, messages=conversation)).pieces)
    assert "10: Monday, Tuesday" in rendered and '"offset": 10' in rendered


def test_tool_calls_on_a_user_message_are_refused(stub):
    call = pb.ToolCall(id="call_1", name="read", arguments="{}")
    param = invalid_param(
        stub, model=TINY_MODEL_ID, messages=[pb.ChatMessage(role="user", content="hi", tool_calls=[call])]
    )
    assert param == "messages[0].tool_calls"
