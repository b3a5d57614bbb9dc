"""A model that thinks, closes its thinking itself and then answers or calls a
tool, through the APIs that have no budget or logit_bias to make it: the
Responses API gives a reasoning item and then the message or the
function_call, Anthropic a thinking block and then the tool_use, Ollama
message.thinking beside the content or the tool calls, and /api/generate
thinking beside the response; streamed and not.

The models are scripted tiny llamas (tests.helpers.reasoning_models) decoded
for real: their prompt opens the reasoning (DeepSeek-R1's way), and they
write "Easy.", </think>, then "Four!" (the writer) or a Hermes <tool_call>
whose JSON the engine's lazy grammar writes (the caller)."""

import json

import anthropic
import ollama
import openai
import pytest

from tests.helpers.reasoning_models import END_THINK, TOOL_CALL, script_tokens, write_scripted_llama
from tests.helpers.servers import HearthServer

WRITER = "think-writer"
CALLER = "think-caller"
THOUGHT, ANSWER = "Easy.", "Four!"
MESSAGES = [{"role": "user", "content": "What is two and two?"}]
MAX_TOKENS = 128
PARAMETERS = {"type": "object", "properties": {"side": {"enum": ["left", "right"]}}, "required": ["side"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reasoning-apis")
    models = folder / "models"
    models.mkdir()
    write_scripted_llama(models / f"{WRITER}.gguf", script_tokens(THOUGHT, END_THINK, ANSWER))
    write_scripted_llama(models / f"{CALLER}.gguf", script_tokens(THOUGHT, END_THINK, TOOL_CALL))
    running = HearthServer(models, folder / "config.json", folder / "server.log")
    try:
        yield running
    finally:
        running.stop()


def responses_client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)


def anthropic_client(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)


def ollama_client(server) -> ollama.Client:
    return ollama.Client(host=server.base_url, timeout=60)


def added_items(events) -> list[tuple[int, str]]:
    return [(e.output_index, e.item.type) for e in events if e.type == "response.output_item.added"]


def test_responses_gives_the_reasoning_item_then_the_message(server):
    fields = {"model": WRITER, "input": MESSAGES, "max_output_tokens": MAX_TOKENS, "temperature": 0, "store": False}
    whole = responses_client(server).responses.create(**fields)
    assert [item.type for item in whole.output] == ["reasoning", "message"] and whole.status == "completed"
    assert whole.output[0].content[0].text == THOUGHT and whole.output_text == ANSWER
    assert whole.usage.output_tokens_details.reasoning_tokens == len(THOUGHT)
    events = list(responses_client(server).responses.create(**fields, stream=True))
    types = [event.type for event in events]
    assert added_items(events) == [(0, "reasoning"), (1, "message")]
    # The reasoning is done before the message's first text.
    assert types.index("response.reasoning_text.done") < types.index("response.output_text.delta")
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    thought = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert (thought, streamed) == (THOUGHT, ANSWER)
    final = events[-1]
    assert final.type == "response.completed" and [item.type for item in final.response.output] == [
        "reasoning",
        "message",
    ]
    assert final.response.output[0].content[0].text == THOUGHT and final.response.output_text == ANSWER


def test_responses_gives_the_reasoning_item_then_the_function_call(server):
    tool = {"type": "function", "name": "pick", "parameters": PARAMETERS}
    fields = {"model": CALLER, "input": MESSAGES, "max_output_tokens": MAX_TOKENS, "temperature": 0, "store": False}
    fields |= {"tools": [tool], "parallel_tool_calls": False}
    whole = responses_client(server).responses.create(**fields)
    assert [item.type for item in whole.output] == ["reasoning", "function_call"] and whole.status == "completed"
    reasoning, call = whole.output
    assert reasoning.content[0].text == THOUGHT and call.name == "pick"
    assert json.loads(call.arguments)["side"] in ("left", "right")
    events = list(responses_client(server).responses.create(**fields, stream=True))
    types = [event.type for event in events]
    assert added_items(events) == [(0, "reasoning"), (1, "function_call")]
    assert types.index("response.reasoning_text.done") < types.index("response.function_call_arguments.done")
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "function_call"]
    assert final.output[0].content[0].text == THOUGHT and final.output[1].arguments == call.arguments


def test_anthropic_gives_the_tool_use_after_the_thinking_block(server):
    fields = {
        "model": CALLER,
        "max_tokens": MAX_TOKENS,
        "messages": MESSAGES,
        "tools": [{"name": "pick", "input_schema": PARAMETERS}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "extra_body": {"temperature": 0},
    }
    message = anthropic_client(server).messages.create(**fields)
    assert [block.type for block in message.content] == ["thinking", "tool_use"] and message.stop_reason == "tool_use"
    thinking, call = message.content
    assert thinking.thinking == THOUGHT and thinking.signature
    assert call.name == "pick" and call.input["side"] in ("left", "right")
    with anthropic_client(server).messages.stream(**fields) as stream:
        started = [(e.index, e.content_block.type) for e in stream if e.type == "content_block_start"]
        final = stream.get_final_message()
    assert started == [(0, "thinking"), (1, "tool_use")]
    assert [block.type for block in final.content] == ["thinking", "tool_use"] and final.stop_reason == "tool_use"
    assert final.content[0].thinking == THOUGHT and final.content[1].input == call.input


def test_ollama_chat_gives_tool_calls_beside_the_thinking(server):
    tool = {"type": "function", "function": {"name": "pick", "parameters": PARAMETERS}}
    options = {"temperature": 0, "num_predict": MAX_TOKENS}
    answer = ollama_client(server).chat(model=CALLER, messages=MESSAGES, tools=[tool], options=options, think=True)
    assert answer.message.thinking == THOUGHT and answer.message.content == ""
    [call] = answer.message.tool_calls
    assert call.function.name == "pick" and call.function.arguments["side"] in ("left", "right")
    chunks = list(
        ollama_client(server).chat(
            model=CALLER, messages=MESSAGES, tools=[tool], options=options, think=True, stream=True
        )
    )
    assert "".join(c.message.thinking or "" for c in chunks) == THOUGHT
    assert "".join(c.message.content for c in chunks) == ""
    streamed = [call for c in chunks for call in c.message.tool_calls or ()]
    assert [(c.function.name, c.function.arguments) for c in streamed] == [("pick", call.function.arguments)]
    # The thinking comes before the call.
    first_call = next(i for i, c in enumerate(chunks) if c.message.tool_calls)
    assert "".join(c.message.thinking or "" for c in chunks[:first_call]) == THOUGHT


@pytest.mark.parametrize("think", [True, None], ids=["think", "unasked"])
def test_ollama_chat_answers_after_thinking(server, think):
    options = {"temperature": 0, "num_predict": MAX_TOKENS}
    answer = ollama_client(server).chat(model=WRITER, messages=MESSAGES, options=options, think=think)
    assert (answer.message.thinking, answer.message.content) == (THOUGHT, ANSWER)
    assert answer.done_reason == "stop"
    chunks = list(
        ollama_client(server).chat(model=WRITER, messages=MESSAGES, options=options, think=think, stream=True)
    )
    assert "".join(c.message.thinking or "" for c in chunks) == THOUGHT
    assert "".join(c.message.content for c in chunks) == ANSWER


def test_ollama_generate_gives_thinking_apart_from_the_response(server):
    options = {"temperature": 0, "num_predict": MAX_TOKENS}
    prompt = MESSAGES[0]["content"]
    generated = ollama_client(server).generate(model=WRITER, prompt=prompt, options=options, think=True)
    assert (generated.thinking, generated.response) == (THOUGHT, ANSWER)
    chunks = list(ollama_client(server).generate(model=WRITER, prompt=prompt, options=options, think=True, stream=True))
    assert "".join(c.thinking or "" for c in chunks) == THOUGHT
    assert "".join(c.response for c in chunks) == ANSWER
    # Thinking off: no switch in this template, so the engine closes the reasoning at once and the answer follows.
    off = ollama_client(server).generate(model=WRITER, prompt=prompt, options=options, think=False)
    assert not off.thinking and off.response == ANSWER
