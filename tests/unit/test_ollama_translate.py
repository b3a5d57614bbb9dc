"""The pure parts of the Ollama API: names, keep_alive, options, format, messages and tool calls."""

import json

import pytest

from hearth.adapter.common.errors import ApiError
from hearth.adapter.ollama.answers import ndjson_line
from hearth.adapter.ollama.names import (
    candidate_ids,
    listed_name,
    new_model_id,
    parameter_size,
    pull_reference,
    pulled_model_id,
)
from hearth.adapter.ollama.options import (
    FOREVER,
    apply_format,
    apply_options,
    keep_alive_seconds,
)
from hearth.adapter.ollama.protocol import ChatRequest, GenerateRequest, Message
from hearth.adapter.ollama.routes_pull import progress_lines
from hearth.adapter.ollama.translate import (
    chat_to_generate,
    generate_to_generate,
    history_messages,
    tool_calls_to_ollama,
)
from hearth.engine.v1 import engine_pb2 as pb


def _refused(call, *args) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value


# --- names ---------------------------------------------------------------------


def test_models_are_listed_with_a_tag():
    assert listed_name("gemma-3-270m-q4_k_m") == "gemma-3-270m-q4_k_m:latest"
    assert listed_name("notes:v2") == "notes:v2"


def test_a_name_means_the_exact_id_first_then_the_id_without_latest():
    assert candidate_ids("tiny") == ["tiny"]
    assert candidate_ids("tiny:latest") == ["tiny:latest", "tiny"]
    assert candidate_ids("tiny:v2") == ["tiny:v2"]
    assert candidate_ids(":latest") == [":latest"]


def test_a_copy_destination_drops_latest():
    assert new_model_id("notes:latest") == "notes"
    assert new_model_id("notes") == "notes"
    assert new_model_id("notes:v2") == "notes:v2"


@pytest.mark.parametrize(
    "name, reference",
    [
        ("hf.co/unsloth/gemma-3-270m-it-GGUF:Q4_K_M", "unsloth/gemma-3-270m-it-GGUF:Q4_K_M"),
        ("hf.co/unsloth/gemma-3-270m-it-GGUF", "unsloth/gemma-3-270m-it-GGUF"),
        ("huggingface.co/owner/repo:latest", "owner/repo"),
        ("https://hf.co/owner/repo.v1:q8_0", "owner/repo.v1:q8_0"),
        ("llama3.2", None),
        ("library/llama3.2:3b", None),
        ("hf.co/only-owner", None),
    ],
)
def test_only_hugging_face_names_can_be_pulled(name, reference):
    assert pull_reference(name) == reference


@pytest.mark.parametrize(
    "name, alias",
    [
        ("hf.co/unsloth/gemma-3-270m-it-GGUF:Q4_K_M", "hf.co/unsloth/gemma-3-270m-it-GGUF:Q4_K_M"),
        ("huggingface.co/owner/repo:latest", "hf.co/owner/repo"),
        ("https://hf.co/owner/repo", "hf.co/owner/repo"),
        ("llama3.2", None),
    ],
)
def test_a_pulled_model_answers_to_the_name_it_was_pulled_by(name, alias):
    assert pulled_model_id(name) == alias
    if alias is not None:
        # Listed with Ollama's tag, and found again by that listed name.
        assert alias in candidate_ids(listed_name(alias))


@pytest.mark.parametrize(
    "count, text",
    [(268_098_176, "268.10M"), (8_000_000_000, "8B"), (7_241_732_096, "7.2B"), (1_000_000, "1M"), (12_345, "12K"), (999, "999")],
)
def test_parameter_sizes_are_written_as_ollama_writes_them(count, text):
    assert parameter_size(count) == text


# --- keep_alive ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [
        (None, None),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("10s", 10.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        (600, 600.0),
        (2.5, 2.5),
        ("0", 0.0),
        (0, 0.0),
        ("120", 120.0),
        (-1, FOREVER),
        ("-1m", FOREVER),
        ("-1", FOREVER),
    ],
)
def test_keep_alive_in_the_engines_seconds(value, seconds):
    if seconds is None:
        assert keep_alive_seconds(value) is None
    else:
        assert keep_alive_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["5 minutes", "m", "5x", "", "1h-30m", True])
def test_malformed_keep_alive_is_refused(value):
    error = _refused(keep_alive_seconds, value)
    assert "keep_alive" in error.message


# --- options and format ---------------------------------------------------------------


def test_options_set_the_engines_sampling_fields():
    generate = pb.GenerateRequest()
    apply_options(
        {
            "temperature": 0,
            "top_p": 0.9,
            "top_k": 20,
            "min_p": 0.1,
            "seed": 42,
            "stop": ["\n\n", ""],
            "repeat_penalty": 1.2,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
            "num_predict": 8,
        },
        generate,
    )
    assert generate.temperature == 0 and generate.HasField("temperature")
    assert generate.top_p == pytest.approx(0.9)
    assert generate.top_k == 20
    assert generate.min_p == pytest.approx(0.1)
    assert generate.seed == 42
    assert list(generate.stop) == ["\n\n"]
    assert generate.repeat_penalty == pytest.approx(1.2)
    assert generate.presence_penalty == pytest.approx(0.5)
    assert generate.frequency_penalty == pytest.approx(0.25)
    assert generate.max_tokens == 8


@pytest.mark.parametrize("num_predict", [-1, -2, 0])
def test_num_predict_without_a_positive_count_means_no_limit(num_predict):
    generate = pb.GenerateRequest()
    apply_options({"num_predict": num_predict}, generate)
    assert not generate.HasField("max_tokens")


def test_a_negative_seed_means_a_random_one():
    generate = pb.GenerateRequest()
    apply_options({"seed": -1}, generate)
    assert not generate.HasField("seed")


def test_runner_options_and_unknown_keys_are_ignored():
    generate = pb.GenerateRequest()
    apply_options(
        {"num_ctx": 4096, "num_thread": 8, "num_gpu": 99, "use_mmap": True, "main_gpu": 0, "made_up": "x", "mirostat": 0},
        generate,
    )
    assert generate == pb.GenerateRequest()


@pytest.mark.parametrize(
    "options, named",
    [
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": 2.5}, "top_k"),
        ({"num_predict": -3}, "num_predict"),
        ({"stop": [1, 2]}, "stop"),
        ({"mirostat": 2}, "mirostat"),
        ({"typical_p": 0.5}, "typical_p"),
        ({"temperature": True}, "temperature"),
    ],
)
def test_bad_or_unsupported_options_are_refused_by_name(options, named):
    error = _refused(apply_options, options, pb.GenerateRequest())
    assert named in error.message


def test_format_json_and_schema():
    generate = pb.GenerateRequest()
    apply_format("json", generate)
    assert generate.response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    schema = {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}
    generate = pb.GenerateRequest()
    apply_format(schema, generate)
    assert generate.response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert json.loads(generate.response_format.json_schema) == schema
    generate = pb.GenerateRequest()
    apply_format("", generate)
    assert not generate.HasField("response_format")
    _refused(apply_format, "yaml", pb.GenerateRequest())


# --- chat and generate --------------------------------------------------------------


def _chat(**fields) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", **fields})


def test_history_with_tool_calls_and_results():
    messages = [
        Message(role="user", content="Weather in Paris and Oslo?"),
        Message.model_validate(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"function": {"name": "get_time", "arguments": '{"city": "Oslo"}'}},
                ],
            }
        ),
        Message(role="tool", content="09:00", tool_name="get_time"),
        Message(role="tool", content="sunny"),
    ]
    converted = history_messages(messages)
    assert [m.role for m in converted] == ["user", "assistant", "tool", "tool"]
    calls = converted[1].tool_calls
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Paris"}, {"city": "Oslo"}]
    assert len({c.id for c in calls}) == 2
    # The named result answers its tool; the unnamed one the call still open.
    assert (converted[2].tool_call_id, converted[2].name) == (calls[1].id, "get_time")
    assert (converted[3].tool_call_id, converted[3].name) == (calls[0].id, "get_weather")


def test_bad_history_is_refused():
    _refused(history_messages, [Message.model_validate({"role": "user", "content": "hi", "images": ["aGk="]})])
    bad_arguments = Message.model_validate(
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1, 2]"}}]}
    )
    assert "arguments" in _refused(history_messages, [bad_arguments]).message


def test_chat_translation():
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    body = _chat(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        tools=[tool],
        options={"temperature": 0, "num_predict": 8},
        keep_alive="1m",
    )
    generate = chat_to_generate(body, "gemma", "req-1")
    assert generate.model == "gemma" and generate.request_id == "req-1"
    assert [(m.role, m.content) for m in generate.messages] == [("system", "Be brief."), ("user", "Hi")]
    assert generate.tool_choice == pb.TOOL_CHOICE_AUTO
    assert generate.tools[0].name == "get_weather"
    assert json.loads(generate.tools[0].parameters_json) == tool["function"]["parameters"]
    assert generate.max_tokens == 8 and generate.temperature == 0
    assert generate.keep_alive_seconds == 60


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"think": "hard"}, "think"),
        ({"format": "json", "tools": [{"type": "function", "function": {"name": "f"}}]}, "format"),
        ({"tools": [{"type": "retrieval", "function": {"name": "f"}}]}, "tools[0].type"),
    ],
)
def test_chat_refusals(fields, named):
    body = _chat(messages=[{"role": "user", "content": "Hi"}], **fields)
    assert named in _refused(chat_to_generate, body, "m", "r").message


@pytest.mark.parametrize(
    "think, mode, effort",
    [
        (None, pb.REASONING_MODE_UNSPECIFIED, ""),
        (True, pb.REASONING_MODE_ON, ""),
        (False, pb.REASONING_MODE_OFF, ""),
        ("high", pb.REASONING_MODE_ON, "high"),
    ],
)
def test_think_maps_to_the_engines_reasoning_controls(think, mode, effort):
    generate = chat_to_generate(_chat(messages=[{"role": "user", "content": "Hi"}], think=think), "m", "r")
    assert (generate.reasoning.mode, generate.reasoning.effort) == (mode, effort)


def test_generate_translation():
    templated = generate_to_generate(GenerateRequest(model="m", prompt="Hi", system="Be brief."), "m", "r")
    assert [(m.role, m.content) for m in templated.messages] == [("system", "Be brief."), ("user", "Hi")]
    assert templated.prompt == ""
    raw = generate_to_generate(GenerateRequest(model="m", prompt="Monday,", raw=True, system="ignored"), "m", "r")
    assert raw.prompt == "Monday," and not raw.messages


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"suffix": "end"}, "suffix"),
        ({"images": ["aGk="]}, "images"),
        ({"template": "{{ .Prompt }}"}, "template"),
        ({"context": [1, 2, 3]}, "context"),
    ],
)
def test_generate_refusals(fields, named):
    body = GenerateRequest.model_validate({"model": "m", "prompt": "Hi", **fields})
    assert named in _refused(generate_to_generate, body, "m", "r").message


def test_engine_tool_calls_become_ollamas():
    calls = [pb.ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')]
    assert tool_calls_to_ollama(calls, first_index=2) == [
        {"id": "call_1", "function": {"index": 2, "name": "get_weather", "arguments": {"city": "Paris"}}}
    ]


# --- framing -------------------------------------------------------------------------


def test_ndjson_lines_never_split_inside_an_object():
    line = ndjson_line({"response": "a\u2028b\x85c\nd"})
    assert line.endswith("\n") and len(line.splitlines()) == 1
    assert json.loads(line)["response"] == "a\u2028b\x85c\nd"


def test_pull_progress_as_ollama_reports_it():
    resolving = pb.PullModelResponse(phase=pb.PULL_PHASE_RESOLVING)
    downloading = pb.PullModelResponse(
        phase=pb.PULL_PHASE_DOWNLOADING, file="m.gguf", sha256="ab" * 32, total_bytes=100, completed_bytes=40
    )
    assert progress_lines(resolving, pb.PULL_PHASE_UNSPECIFIED) == [{"status": "pulling manifest"}]
    assert progress_lines(resolving, pb.PULL_PHASE_RESOLVING) == []
    assert progress_lines(downloading, pb.PULL_PHASE_RESOLVING) == [
        {"status": "pulling abababababab", "digest": "sha256:" + "ab" * 32, "total": 100, "completed": 40}
    ]
    verifying = pb.PullModelResponse(phase=pb.PULL_PHASE_VERIFYING)
    assert progress_lines(verifying, pb.PULL_PHASE_DOWNLOADING) == [{"status": "verifying sha256 digest"}]
    finished = pb.PullModelResponse(phase=pb.PULL_PHASE_DONE, model=pb.Model(id="gemma-3-270m-it-Q4_K_M"))
    assert progress_lines(finished, pb.PULL_PHASE_VERIFYING) == [{"status": "writing manifest"}, {"status": "success"}]
