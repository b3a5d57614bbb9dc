"""The engine's one validation gate, reached as every adapter reaches it: a
GenerateRequest converted to domain parameters, then validated against the
model's record. Each rule is checked here once, whatever API family sent it."""

from pathlib import Path

import pytest

from hearth.engine.errors import InvalidArgument, ModelInvalid
from hearth.engine.generation.limits import MAX_STOP_STRINGS, MAX_TOP_LOGPROBS
from hearth.engine.generation.validation import ValidGenerateParams, validate_generate
from hearth.engine.models.registry import ModelRecord
from hearth.engine.rpc.convert import generate_params_from_proto
from hearth.engine.v1 import engine_pb2 as pb

RECORD = ModelRecord(
    id="m",
    path=Path("m.gguf"),
    file_size=1,
    modified=0,
    info=None,
    invalid_reason=None,
    context_window=4096,
    max_output_tokens=2048,
    chat_template_override=None,
)
HELLO = [pb.ChatMessage(role="user", content="hi")]
TOOL = pb.Tool(name="f", parameters_json='{"type": "object"}')


def checked(**fields) -> ValidGenerateParams:
    request = pb.GenerateRequest(model="m", **({"messages": HELLO} | fields))
    return validate_generate(generate_params_from_proto(request), RECORD, max_sequences=4)


def refused_param(**fields) -> str:
    with pytest.raises(InvalidArgument) as raised:
        checked(**fields)
    return raised.value.param


def test_a_plain_request_passes_and_comes_out_validated():
    valid = checked(max_tokens=16, temperature=0.5, stop=["\n"], n=2)
    assert isinstance(valid, ValidGenerateParams)
    assert (valid.max_tokens, valid.sampling.temperature, valid.stop, valid.n) == (16, 0.5, ("\n",), 2)


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"repeat_penalty": 11}, "repeat_penalty"),
        ({"presence_penalty": -3}, "presence_penalty"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"logit_bias": {1: 101}}, "logit_bias"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2049}, "max_tokens"),
        ({"n": 0}, "n"),
        ({"n": 5}, "n"),
        ({"stop": ["x"] * (MAX_STOP_STRINGS + 1)}, "stop"),
        ({"stop": ["x" * 1001]}, "stop"),
        ({"logprobs": True, "top_logprobs": MAX_TOP_LOGPROBS + 1}, "top_logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"tool_choice": pb.TOOL_CHOICE_REQUIRED}, "tool_choice"),
        ({"tools": [TOOL], "tool_choice": pb.TOOL_CHOICE_FUNCTION, "tool_choice_function": "g"}, "tool_choice"),
        ({"tools": [pb.Tool(name="")]}, "tools[0].function.name"),
        (
            {"tools": [TOOL], "response_format": pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT)},
            "response_format",
        ),
        ({"keep_alive_seconds": float("nan")}, "keep_alive"),
        ({"without_model_defaults": ["seed", "tempreture"]}, "without_model_defaults"),
    ],
)
def test_each_rule_names_the_field_it_refuses(fields: dict, param: str):
    assert refused_param(**fields) == param


def test_tools_need_messages_and_a_prompt_must_not_be_empty():
    request = pb.GenerateRequest(model="m", prompt="hi", tools=[TOOL])
    with pytest.raises(InvalidArgument) as raised:
        validate_generate(generate_params_from_proto(request), RECORD, max_sequences=4)
    assert raised.value.param == "tools"


def test_a_model_that_cannot_be_used_is_refused_before_anything_runs():
    broken = RECORD.__class__(**{**RECORD.__dict__, "invalid_reason": "not a GGUF file"})
    with pytest.raises(ModelInvalid):
        validate_generate(generate_params_from_proto(pb.GenerateRequest(model="m", messages=HELLO)), broken, max_sequences=4)


def test_fields_kept_unset_on_purpose_are_not_offered_to_the_models_defaults():
    kept = generate_params_from_proto(pb.GenerateRequest(model="m", messages=HELLO, without_model_defaults=["seed"]))
    assert "seed" not in kept.unset and "max_tokens" in kept.unset
    given = generate_params_from_proto(pb.GenerateRequest(model="m", messages=HELLO, temperature=0.3))
    assert "temperature" not in given.unset and "seed" in given.unset
