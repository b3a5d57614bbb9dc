"""gpt-oss's harmony format end to end: the analysis channel comes out as
reasoning and the final channel as the answer in all four APIs, streamed
and not; the engine's budget ends the analysis and opens the final channel
itself; a forced tool call is a commentary message addressed to the tool,
after the analysis, and comes back as a tool call.

No small harmony GGUF is among the packages: the models are tiny
random-weight llamas with harmony's markers in their vocabulary (llama.cpp
treats them as it treats gpt-oss's: <|return|> and <|call|> end the
generation, <|end|> does not) and templates that write harmony's messages.
One opens the analysis in its generation prompt; the other ends it with
``<|start|>assistant``, as gpt-oss's own template does. Every answer is
decoded for real."""

import json

import anthropic
import httpx
import ollama
import openai
import pytest

from hearth.engine.llama.tiny_model import SPECIAL_TOKENS, write_tiny_llama
from tests.helpers.servers import HearthServer

ANALYSING = "harmony-analysing"
ASSISTANT = "harmony-assistant"
MARKERS = ("<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>", "<|call|>", "<|constrain|>")
# Added tokens follow the special and 256 byte tokens. A random model kept off every marker writes plain text.
NO_MARKERS = {str(len(SPECIAL_TOKENS) + 256 + i): -100 for i in range(len(MARKERS))}
NO_END = {**NO_MARKERS, "2": -100}
MESSAGES = [{"role": "user", "content": "What is two and two?"}]
# The engine's close opens the final channel: 18 tokens in a vocabulary of bytes (6 in gpt-oss's).
MAX_TOKENS = 48
BUDGET = 8
_TURNS = (
    "{% if reasoning_effort %}<|start|>system<|message|>Reasoning: {{ reasoning_effort }}<|end|>{% endif %}"
    "{% if tools %}<|start|>developer<|message|># Tools\n{{ tools | tojson }}<|end|>{% endif %}"
    "{% for m in messages %}{% if m.role == 'assistant' %}"
    "{% if m.thinking %}<|start|>assistant<|channel|>analysis<|message|>{{ m.thinking }}<|end|>{% endif %}"
    "<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>"
    "{% else %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endif %}{% endfor %}"
)
ANALYSING_TEMPLATE = (
    _TURNS + "{% if add_generation_prompt %}<|start|>assistant<|channel|>analysis<|message|>{% endif %}"
)
ASSISTANT_TEMPLATE = _TURNS + "{% if add_generation_prompt %}<|start|>assistant{% endif %}"
SIDE_TOOL = {
    "type": "function",
    "function": {
        "name": "pick",
        "parameters": {"type": "object", "properties": {"side": {"enum": ["left", "right"]}}, "required": ["side"]},
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("harmony")
    models = folder / "models"
    models.mkdir()
    for name, template in ((ANALYSING, ANALYSING_TEMPLATE), (ASSISTANT, ASSISTANT_TEMPLATE)):
        write_tiny_llama(
            models / f"{name}.gguf", seed=3, chat_template=template, added_tokens=MARKERS, context_length=2048
        )
    running = HearthServer(models, folder / "config.json", folder / "server.log")
    try:
        yield running
    finally:
        running.stop()


def chat(server, model: str = ANALYSING, **fields) -> dict:
    body = {"model": model, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "temperature": 0, **fields}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def reference(server, **bias) -> tuple[str, str]:
    """The greedy answer with the budget as OpenAI chat returns it whole (kept off the markers, or as ``bias`` says)."""
    fields = {"logit_bias": NO_MARKERS, **bias}
    message = chat(server, reasoning_budget=BUDGET, **fields)["choices"][0]["message"]
    return message["reasoning_content"], message["content"]


def no_markers(*texts: str) -> bool:
    return not any("<|" in text or "|>" in text for text in texts)


def test_a_harmony_model_says_it_reasons_in_harmony(server):
    cards = {m["id"]: m for m in httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]}
    assert all(cards[name]["reasoning_format"] == "harmony" for name in (ANALYSING, ASSISTANT))
    assert "reasoning" in cards[ANALYSING]["capabilities"]


def test_the_budget_ends_the_analysis_and_the_final_channel_answers(server):
    body = chat(server, reasoning_budget=BUDGET, logit_bias=NO_MARKERS)
    message, usage = body["choices"][0]["message"], body["usage"]
    assert message["reasoning_content"] and message["content"]
    assert no_markers(message["reasoning_content"], message["content"])
    assert usage["completion_tokens_details"]["reasoning_tokens"] == BUDGET
    assert usage["completion_tokens"] == MAX_TOKENS and body["choices"][0]["finish_reason"] == "length"


def test_an_analysis_cut_by_max_tokens_is_returned_as_reasoning(server):
    body = chat(server, logit_bias=NO_END)
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] and message["content"] == "" and no_markers(message["reasoning_content"])
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == MAX_TOKENS


def test_openai_chat_streams_the_analysis_before_the_final_channel(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model=ANALYSING,
        messages=MESSAGES,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        logit_bias=NO_MARKERS,
        extra_body={"reasoning_budget": BUDGET},
    )
    kinds, reasoning, content = [], "", ""
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta and getattr(delta, "reasoning_content", None):
            kinds.append("reasoning")
            reasoning += delta.reasoning_content
        if delta and delta.content:
            kinds.append("content")
            content += delta.content
    assert kinds and kinds == sorted(kinds, key=lambda kind: kind != "reasoning")
    assert (reasoning, content) == reference(server)


def test_responses_api_gives_the_analysis_as_a_reasoning_item(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    fields = {"model": ANALYSING, "input": MESSAGES, "max_output_tokens": MAX_TOKENS, "temperature": 0, "store": False}
    # Responses has no budget or bias: this model thinks past max_output_tokens.
    whole = client.responses.create(**fields)
    assert [item.type for item in whole.output] == ["reasoning"] and whole.status == "incomplete"
    events = list(client.responses.create(**fields, stream=True))
    streamed = "".join(event.delta for event in events if event.type == "response.reasoning_text.delta")
    assert streamed == whole.output[0].content[0].text and no_markers(streamed)
    # Effort "none": a model that cannot stop thinking has its analysis ended at once by the engine.
    off = client.responses.create(**fields, reasoning={"effort": "none"})
    assert [item.type for item in off.output] == ["message"] and off.usage.output_tokens_details.reasoning_tokens == 0
    assert no_markers(off.output_text)


def test_anthropic_thinking_block_then_text(server):
    client = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    fields = {
        "model": ANALYSING,
        "max_tokens": MAX_TOKENS,
        "messages": MESSAGES,
        "thinking": {"type": "enabled", "budget_tokens": BUDGET},
        "extra_body": {"temperature": 0},
    }
    # Free to write markers, this model ends its final message itself.
    whole = client.messages.create(**fields)
    assert [block.type for block in whole.content] == ["thinking", "text"] and whole.stop_reason == "end_turn"
    assert (whole.content[0].thinking, whole.content[1].text) == reference(server, logit_bias={})
    assert no_markers(whole.content[0].thinking, whole.content[1].text)
    with client.messages.stream(**fields) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert (final.content[0].thinking, final.content[1].text) == reference(server, logit_bias={})


def test_ollama_thinking_apart(server):
    client = ollama.Client(host=server.base_url, timeout=60)
    options = {"temperature": 0, "num_predict": MAX_TOKENS}
    answer = client.chat(model=ANALYSING, messages=MESSAGES, options=options, think=True)
    assert answer.message.thinking and no_markers(answer.message.thinking, answer.message.content)
    chunks = list(client.chat(model=ANALYSING, messages=MESSAGES, options=options, think=True, stream=True))
    assert "".join(c.message.thinking or "" for c in chunks) == answer.message.thinking
    assert "".join(c.message.content for c in chunks) == answer.message.content


@pytest.mark.parametrize("model", [ANALYSING, ASSISTANT])
def test_a_forced_call_is_a_commentary_message_after_the_analysis(server, model):
    fields = {"tool_choice": "required", "parallel_tool_calls": False, "reasoning_budget": BUDGET, "max_tokens": 128}
    body = chat(server, model, tools=[SIDE_TOOL], **fields)
    choice = body["choices"][0]
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "pick"
    assert json.loads(call["function"]["arguments"])["side"] in ("left", "right")
    assert choice["finish_reason"] == "tool_calls" and not choice["message"]["content"]
    assert no_markers(choice["message"].get("reasoning_content") or "")
    if model == ANALYSING:
        # The prompt opened the analysis: the grammar waited for its end, which the budget wrote.
        assert choice["message"]["reasoning_content"]
        assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == BUDGET


def test_earlier_thinking_reaches_the_template_from_every_api(server):
    # gpt-oss's template writes an earlier turn's analysis back: the prompt grows by that message.
    thought = "The user adds small numbers."
    turns = [MESSAGES[0], {"role": "assistant", "content": "4"}, {"role": "user", "content": "And three?"}]

    def prompt_tokens(assistant: dict) -> int:
        messages = [turns[0], {**turns[1], **assistant}, turns[2]]
        return chat(server, messages=messages, max_tokens=1)["usage"]["prompt_tokens"]

    without = prompt_tokens({})
    kept = prompt_tokens({"reasoning_content": thought}) - without
    # The analysis message: its header and markers, and the thought (a token or more per byte).
    assert kept > len(thought) + 4
    anthropic_client = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    blocks = [{"type": "thinking", "thinking": thought, "signature": "x"}, {"type": "text", "text": "4"}]
    messages = [turns[0], {"role": "assistant", "content": blocks}, turns[2]]
    answer = anthropic_client.messages.create(model=ANALYSING, max_tokens=1, messages=messages)
    assert answer.usage.input_tokens + answer.usage.cache_read_input_tokens == without + kept
    responses_client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": thought}],
    }
    items = [turns[0], reasoning, turns[1], turns[2]]
    answer = responses_client.responses.create(model=ANALYSING, input=items, max_output_tokens=16, store=False)
    assert answer.usage.input_tokens == without + kept
    ollama_client = ollama.Client(host=server.base_url, timeout=60)
    messages = [turns[0], {**turns[1], "thinking": thought}, turns[2]]
    answer = ollama_client.chat(model=ANALYSING, messages=messages, options={"num_predict": 1})
    assert answer.prompt_eval_count == without + kept


def test_responses_and_anthropic_give_the_call_after_the_thinking(server):
    tool = SIDE_TOOL["function"]
    responses = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    # Responses has no budget, and this random model thinks past any max_output_tokens: effort "none"
    # ends its analysis at once, and the call's commentary message follows.
    fields = {"model": ANALYSING, "input": MESSAGES, "max_output_tokens": 128, "temperature": 0, "store": False}
    fields |= {"tools": [{"type": "function", **tool}], "tool_choice": "required", "parallel_tool_calls": False}
    fields |= {"reasoning": {"effort": "none"}}
    whole = responses.responses.create(**fields)
    assert [item.type for item in whole.output] == ["function_call"] and whole.output[0].name == "pick"
    assert json.loads(whole.output[0].arguments)["side"] in ("left", "right")
    events = list(responses.responses.create(**fields, stream=True))
    assert [item.type for item in events[-1].response.output] == ["function_call"]
    assert events[-1].response.output[0].arguments == whole.output[0].arguments
    client = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    fields = {
        "model": ANALYSING,
        "max_tokens": 128,
        "messages": MESSAGES,
        "tools": [{"name": "pick", "input_schema": tool["parameters"]}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": BUDGET},
        "extra_body": {"temperature": 0},
    }
    message = client.messages.create(**fields)
    assert [block.type for block in message.content] == ["thinking", "tool_use"] and message.stop_reason == "tool_use"
    assert message.content[1].input["side"] in ("left", "right") and no_markers(message.content[0].thinking)
    with client.messages.stream(**fields) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "tool_use"]
    assert final.content[1].input == message.content[1].input


def test_the_effort_reaches_the_templates_reasoning_line(server):
    def prompt_tokens(**fields) -> int:
        return chat(server, max_tokens=1, **fields)["usage"]["prompt_tokens"]

    # "Reasoning: high" is one byte longer than "Reasoning: low" (a token per byte here); unasked, no line.
    low, high = prompt_tokens(reasoning_effort="low"), prompt_tokens(reasoning_effort="high")
    assert high - low == 1 and prompt_tokens() < low
    ollama_client = ollama.Client(host=server.base_url, timeout=60)
    answer = ollama_client.chat(model=ANALYSING, messages=MESSAGES, think="high", options={"num_predict": 1})
    assert answer.prompt_eval_count == high
