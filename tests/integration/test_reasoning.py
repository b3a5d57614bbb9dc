"""A reasoning model's thinking comes out apart from its answer in all four
APIs, streamed and not, with the controls people use: a budget the engine
enforces (it closes the reasoning itself and the answer follows), the
template's switch, and "off" where the template has none.

No small reasoning GGUF is among the packages: the models here are tiny
random-weight llamas whose vocabulary has <think> and </think> as added
tokens and whose templates open the reasoning in the generation prompt, as
DeepSeek-R1's and Qwen3-Thinking's do (one with Qwen3's enable_thinking
switch). Every answer is decoded for real; greedy decoding makes the four
APIs' answers to one prompt the same text."""

import json

import anthropic
import grpc
import httpx
import ollama
import openai
import pytest

from hearth.engine.llama.tiny_model import SPECIAL_TOKENS, write_tiny_llama
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from tests.helpers.reasoning_models import OPENING_TEMPLATE, SWITCH_TEMPLATE
from tests.helpers.servers import HearthServer

OPENS = "think-open"
SWITCH = "think-switch"
# Also has Hermes' tool-call markers, and room for the tools' description.
TOOLS = "think-tools"
# The added tokens follow the special and 256 byte tokens.
THINK, END_THINK = len(SPECIAL_TOKENS) + 256, len(SPECIAL_TOKENS) + 257
TOOL_CALL = len(SPECIAL_TOKENS) + 258
EOS = 2
MESSAGES = [{"role": "user", "content": "What is two and two?"}]
MAX_TOKENS = 24
BUDGET = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reasoning")
    models = folder / "models"
    models.mkdir()
    tags = ("<think>", "</think>")
    write_tiny_llama(models / f"{OPENS}.gguf", seed=3, chat_template=OPENING_TEMPLATE, added_tokens=tags)
    write_tiny_llama(models / f"{SWITCH}.gguf", seed=3, chat_template=SWITCH_TEMPLATE, added_tokens=tags)
    marked = (*tags, "<tool_call>", "</tool_call>")
    write_tiny_llama(
        models / f"{TOOLS}.gguf", seed=3, chat_template=OPENING_TEMPLATE, added_tokens=marked, context_length=2048
    )
    running = HearthServer(models, folder / "config.json", folder / "server.log")
    try:
        yield running
    finally:
        running.stop()


def chat(server, model: str = OPENS, **fields) -> dict:
    body = {"model": model, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "temperature": 0, **fields}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def reference(server) -> tuple[str, str]:
    """The greedy answer with the budget, as OpenAI chat returns it whole."""
    message = chat(server, reasoning_budget=BUDGET)["choices"][0]["message"]
    return message["reasoning_content"], message["content"]


def no_tags(*texts: str) -> bool:
    return not any(tag in text for text in texts for tag in ("<think>", "</think>", "<think", "think>"))


def test_models_say_they_reason_and_how(server):
    cards = {m["id"]: m for m in httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]}
    assert "reasoning" in cards[OPENS]["capabilities"] and cards[OPENS]["reasoning_format"] == "think"
    shown = httpx.post(f"{server.base_url}/api/show", json={"model": OPENS}, timeout=30).json()
    assert "thinking" in shown["capabilities"]


def test_the_budget_closes_the_reasoning_and_the_answer_follows(server):
    body = chat(server, reasoning_budget=BUDGET)
    message, usage = body["choices"][0]["message"], body["usage"]
    assert message["reasoning_content"] and message["content"]
    assert no_tags(message["reasoning_content"], message["content"])
    # Exactly the budget thought; the rest of max_tokens (less the close tag) is the answer.
    assert usage["completion_tokens_details"]["reasoning_tokens"] == BUDGET
    assert usage["completion_tokens"] == MAX_TOKENS and body["choices"][0]["finish_reason"] == "length"


def test_a_model_that_never_closes_its_reasoning_returns_what_it_thought(server):
    # The model may not write either tag: it thinks until max_tokens.
    body = chat(server, temperature=1.0, seed=5, logit_bias={str(THINK): -100, str(END_THINK): -100, str(EOS): -100})
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] and message["content"] == ""
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == MAX_TOKENS


def test_off_closes_at_once_where_the_template_has_no_switch(server):
    body = chat(server, reasoning_effort="none")
    message = body["choices"][0]["message"]
    assert message.get("reasoning_content") is None and message["content"]
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


def test_the_templates_switch_turns_thinking_off_and_on(server):
    banned = {str(THINK): -100, str(END_THINK): -100}
    off = chat(server, SWITCH, chat_template_kwargs={"enable_thinking": False}, logit_bias=banned)
    assert off["choices"][0]["message"].get("reasoning_content") is None
    assert off["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    on = chat(server, SWITCH, chat_template_kwargs={"enable_thinking": True}, logit_bias=banned)
    assert on["usage"]["completion_tokens_details"]["reasoning_tokens"] == MAX_TOKENS


def test_openai_chat_streams_reasoning_deltas_before_content(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model=OPENS,
        messages=MESSAGES,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        extra_body={"reasoning_budget": BUDGET},
    )
    kinds, reasoning, content = [], "", ""
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        thought = getattr(delta, "reasoning_content", None) if delta else None
        if thought:
            kinds.append("reasoning")
            reasoning += thought
        if delta and delta.content:
            kinds.append("content")
            content += delta.content
    assert kinds and kinds == sorted(kinds, key=lambda kind: kind != "reasoning")
    assert (reasoning, content) == reference(server)


def test_responses_api_gives_a_reasoning_item_before_the_message(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    fields = {"model": OPENS, "input": MESSAGES, "max_output_tokens": MAX_TOKENS, "temperature": 0, "store": False}
    # Responses has no budget field of its own: reasoning.effort "none" and the default are what it controls.
    whole = client.responses.create(**fields)
    assert [item.type for item in whole.output] == ["reasoning"]
    assert whole.usage.output_tokens_details.reasoning_tokens == MAX_TOKENS
    events = list(client.responses.create(**fields, stream=True))
    types = [event.type for event in events]
    assert types.index("response.reasoning_text.delta") < types.index("response.reasoning_text.done")
    streamed = "".join(event.delta for event in events if event.type == "response.reasoning_text.delta")
    assert streamed == whole.output[0].content[0].text and no_tags(streamed)
    assert events[-1].response.output[0].content[0].text == streamed
    off = client.responses.create(**fields, reasoning={"effort": "none"})
    assert [item.type for item in off.output] == ["message"] and off.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_api_gives_the_summary_asked_for(server):
    # Codex asks for reasoning.summary "auto" and shows the summary; no model here writes one apart.
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    fields = {"model": OPENS, "input": MESSAGES, "max_output_tokens": MAX_TOKENS, "temperature": 0, "store": False}
    whole = client.responses.create(**fields, reasoning={"summary": "auto"})
    [item] = whole.output
    assert [part.text for part in item.summary] == [item.content[0].text] and whole.reasoning.summary == "auto"
    events = list(client.responses.create(**fields, reasoning={"summary": "auto"}, stream=True))
    types = [event.type for event in events]
    assert types.index("response.reasoning_summary_part.added") < types.index("response.reasoning_summary_text.delta")
    assert types.index("response.reasoning_summary_text.done") < types.index("response.reasoning_summary_part.done")
    summary = "".join(event.delta for event in events if event.type == "response.reasoning_summary_text.delta")
    assert summary == item.content[0].text == events[-1].response.output[0].summary[0].text
    # Not asked for, there is none.
    assert client.responses.create(**fields).output[0].summary == []


def test_anthropic_thinking_blocks_come_before_the_text(server):
    client = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    fields = {
        "model": OPENS,
        "max_tokens": MAX_TOKENS,
        "messages": MESSAGES,
        "thinking": {"type": "enabled", "budget_tokens": BUDGET},
        "extra_body": {"temperature": 0},
    }
    whole = client.messages.create(**fields)
    assert [block.type for block in whole.content] == ["thinking", "text"]
    assert (whole.content[0].thinking, whole.content[1].text) == reference(server)
    assert whole.content[0].signature
    with client.messages.stream(**fields) as stream:
        kinds = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    assert kinds.index("signature_delta") < kinds.index("text_delta")
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in final.content] == [
        (b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in whole.content
    ]
    # The thinking block sent back in the next turn is accepted.
    follow_up = [*MESSAGES, {"role": "assistant", "content": [b.model_dump() for b in whole.content]}]
    follow_up.append({"role": "user", "content": "And three and three?"})
    assert client.messages.create(**{**fields, "messages": follow_up}).content


def test_ollama_thinking_and_think_false(server):
    client = ollama.Client(host=server.base_url, timeout=60)
    options = {"temperature": 0, "num_predict": MAX_TOKENS}
    answer = client.chat(model=OPENS, messages=MESSAGES, options=options, think=True)
    assert answer.message.thinking and no_tags(answer.message.thinking, answer.message.content)
    chunks = list(client.chat(model=OPENS, messages=MESSAGES, options=options, think=True, stream=True))
    assert "".join(c.message.thinking or "" for c in chunks) == answer.message.thinking
    assert "".join(c.message.content for c in chunks) == answer.message.content
    off = client.chat(model=OPENS, messages=MESSAGES, options=options, think=False)
    assert not off.message.thinking and off.message.content
    generated = client.generate(model=OPENS, prompt="Hi", options=options, raw=True)
    assert generated.response and not generated.thinking  # a raw prompt is not read for reasoning


def test_a_grpc_client_sees_reasoning_apart_with_its_token_count(server):
    request = pb.GenerateRequest(model=OPENS, max_tokens=MAX_TOKENS, temperature=0)
    request.messages.add(role="user", content=MESSAGES[0]["content"])
    request.reasoning.budget_tokens = BUDGET
    with grpc.insecure_channel(server.engine_address) as channel:
        messages = list(engine_pb2_grpc.EngineStub(channel).Generate(request, timeout=60))
    assert ("".join(m.reasoning for m in messages), "".join(m.text for m in messages)) == reference(server)
    assert messages[-1].usage.reasoning_tokens == BUDGET


# A tool whose only argument is a choice: a random model's call ends soon.
SIDE_TOOL = {
    "type": "function",
    "function": {
        "name": "pick",
        "parameters": {
            "type": "object",
            "properties": {"side": {"enum": ["left", "right"]}},
            "required": ["side"],
        },
    },
}


def test_a_forced_tool_call_comes_after_the_reasoning(server):
    fields = {"tool_choice": "required", "parallel_tool_calls": False, "reasoning_budget": BUDGET, "max_tokens": 128}
    body = chat(server, TOOLS, tools=[SIDE_TOOL], **fields)
    choice = body["choices"][0]
    # Thought first (the grammar waited for the end of the reasoning), then the call the grammar forced.
    assert choice["message"]["reasoning_content"] and no_tags(choice["message"]["reasoning_content"])
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == BUDGET
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "pick"
    assert json.loads(call["function"]["arguments"])["side"] in ("left", "right")
    assert choice["finish_reason"] == "tool_calls"


def test_json_mode_answers_after_the_reasoning(server):
    body = chat(server, response_format={"type": "json_object"}, reasoning_budget=BUDGET, max_tokens=64)
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] and body["usage"]["completion_tokens_details"]["reasoning_tokens"] == BUDGET
    assert isinstance(json.loads(message["content"]), dict)


def test_a_tool_call_written_after_the_reasoning_is_extracted_and_one_inside_it_is_not(server):
    # The model is pushed to open calls everywhere: those in its thinking stay thinking.
    fields = {
        "tools": [SIDE_TOOL],
        "parallel_tool_calls": False,
        "reasoning_budget": BUDGET,
        "max_tokens": 64,
        "logit_bias": {str(TOOL_CALL): 100},
    }
    body = chat(server, TOOLS, **fields)
    choice = body["choices"][0]
    assert "<tool_call>" in choice["message"]["reasoning_content"]
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "pick"
    assert json.loads(call["function"]["arguments"])["side"] in ("left", "right")
    assert choice["finish_reason"] == "tool_calls" and not choice["message"]["content"]
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model=TOOLS,
        messages=MESSAGES,
        temperature=0,
        stream=True,
        tools=fields["tools"],
        parallel_tool_calls=False,
        max_tokens=64,
        logit_bias=fields["logit_bias"],
        extra_body={"reasoning_budget": BUDGET},
    )
    kinds, arguments = [], ""
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta and getattr(delta, "reasoning_content", None):
            kinds.append("reasoning")
        if delta and delta.tool_calls:
            kinds.append("call")
            arguments += delta.tool_calls[0].function.arguments or ""
    assert kinds and kinds == sorted(kinds, key=lambda kind: kind != "reasoning") and "call" in kinds
    assert arguments == call["function"]["arguments"]
