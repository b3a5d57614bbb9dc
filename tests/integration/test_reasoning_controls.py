"""What a user sets about a reasoning model, and what it costs: the CLI shows
each model's reasoning format; a config entry's reasoning_format overrides the
template's (and "none" leaves the tags in the answer), and an alias keeps it;
each API's off switch turns the template's own switch off where it has one;
the usage streamed at the end counts the thinking; an earlier turn's thinking
sent back costs no prompt tokens where the template drops it; and Anthropic
returns what a model thought when max_tokens cut it.

The models are tiny llamas decoded for real: a random one with Qwen3's
enable_thinking switch (it thinks on and on), and scripted ones
(tests.helpers.reasoning_models) that write "Easy.", </think>, "Four!"."""

import json
import subprocess
import sys

import anthropic
import httpx
import ollama
import openai
import pytest

from tests.helpers.gguf_factory import write_tiny_llama
from tests.helpers.reasoning_models import (
    END_THINK,
    PLAIN_TEMPLATE,
    SWITCH_OFF_EXTRA_TOKENS,
    SWITCH_TEMPLATE,
    THINK,
    THINK_TAGS,
    script_tokens,
    write_scripted_llama,
)
from tests.helpers.servers import HearthServer, base_env, free_port

HEARTH = [sys.executable, "-m", "hearth"]
WRITER = "think-writer"  # its template opens the reasoning; it writes "Easy.</think>Four!"
TAGS_WRITER = "tags-writer"  # a template without reasoning; it writes "<think>Easy.</think>Four!"
SWITCH = "think-switch"
HISTORY = "think-history"
HARMONY = "harmony-model"
PLAIN = "plain"
# Config entries over those files.
AS_TEXT = "think-as-text"  # WRITER with reasoning_format "none"
AS_THINK = "tags-as-think"  # TAGS_WRITER with reasoning_format "think"
THOUGHT, ANSWER = "Easy.", "Four!"
MESSAGES = [{"role": "user", "content": "What is two and two?"}]
MAX_TOKENS = 24
# Qwen3's way with earlier turns: their thinking is dropped, but a turn after the last user message (a tool-calling
# turn still going on) keeps it. Tool results keep their role (the template names 'tool'), so they are not user turns.
HISTORY_TEMPLATE = (
    "{% set ns = namespace(last_user=0) %}"
    "{% for m in messages %}{% if m.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}{% endfor %}"
    "{% for m in messages %}<{{ 'tool' if m.role == 'tool' else m.role }}>"
    "{% if m.role == 'assistant' and loop.index0 > ns.last_user and m.reasoning_content %}"
    "<think>{{ m.reasoning_content }}</think>{% endif %}{{ m.content or '' }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant><think>\n{% endif %}"
)
HARMONY_TEMPLATE = (
    "{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant<|channel|>analysis<|message|>{% endif %}"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reasoning-controls")
    models = folder / "models"
    models.mkdir()
    writes = script_tokens(THOUGHT, END_THINK, ANSWER)
    write_scripted_llama(models / f"{WRITER}.gguf", writes)
    write_scripted_llama(models / f"{TAGS_WRITER}.gguf", [THINK, *writes], chat_template=PLAIN_TEMPLATE)
    write_scripted_llama(models / f"{HISTORY}.gguf", writes, chat_template=HISTORY_TEMPLATE)
    write_tiny_llama(models / f"{SWITCH}.gguf", seed=3, chat_template=SWITCH_TEMPLATE, added_tokens=THINK_TAGS)
    write_tiny_llama(models / f"{HARMONY}.gguf", chat_template=HARMONY_TEMPLATE)
    write_tiny_llama(models / f"{PLAIN}.gguf", chat_template=PLAIN_TEMPLATE)
    entries = [
        {"id": AS_TEXT, "path": f"models/{WRITER}.gguf", "reasoning_format": "none"},
        {"id": AS_THINK, "path": f"models/{TAGS_WRITER}.gguf", "reasoning_format": "think"},
    ]
    (folder / "config.json").write_text(json.dumps({"models": entries}))
    return folder


@pytest.fixture(scope="module")
def server(folder):
    running = HearthServer(folder / "models", folder / "config.json", folder / "server.log")
    try:
        yield running
    finally:
        running.stop()


def chat(server, model: str = WRITER, **fields) -> dict:
    body = {"model": model, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "temperature": 0, **fields}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def cards(server) -> dict[str, dict]:
    return {m["id"]: m for m in httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]}


def hearth(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(HEARTH + args, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def reasoning_column(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if line.split()[:1] == ["ID"])
    assert lines[header].split()[-1] == "REASONING"
    return {line.split()[0]: line.split()[-1] for line in lines[header + 1 :]}


EXPECTED_FORMATS = {WRITER: "think", SWITCH: "think", HARMONY: "harmony", PLAIN: "-", AS_TEXT: "-", AS_THINK: "think"}


def test_hearth_models_and_show_tell_the_reasoning_format(server, folder):
    env = base_env(folder / "models", folder / "config.json")
    listed = hearth(["models", "--engine-address", server.engine_address], env)
    assert listed.returncode == 0, listed.stderr
    assert EXPECTED_FORMATS.items() <= reasoning_column(listed.stdout).items()
    # Without an engine the folder and the config file are read, with the same overrides.
    offline = hearth(["models", "--engine-address", f"127.0.0.1:{free_port()}"], env)
    assert "engine not running" in offline.stdout
    assert EXPECTED_FORMATS.items() <= reasoning_column(offline.stdout).items()
    env["LLM_ENGINE_ADDRESS"] = server.engine_address
    for model, shown in ((WRITER, "think"), (HARMONY, "harmony"), (AS_TEXT, "-")):
        details = hearth(["show", model], env)
        assert details.returncode == 0, details.stderr
        assert f"    {'reasoning':<16}{shown}" in details.stdout.splitlines(), details.stdout
    assert json.loads(hearth(["show", AS_THINK, "--json"], env).stdout)["reasoning_format"] == "think"


def test_a_config_entry_sets_the_reasoning_format(server):
    listed = cards(server)
    assert listed[WRITER]["reasoning_format"] == "think" and "reasoning" in listed[WRITER]["capabilities"]
    assert listed[AS_TEXT]["reasoning_format"] == "none" and "reasoning" not in listed[AS_TEXT]["capabilities"]
    assert listed[TAGS_WRITER]["reasoning_format"] == "none" and listed[AS_THINK]["reasoning_format"] == "think"
    # "none": the model's tags are left in its answer, nothing is reasoning.
    for model in (AS_TEXT, TAGS_WRITER):
        message = chat(server, model)["choices"][0]["message"]
        assert message.get("reasoning_content") is None and "</think>" in message["content"]
    assert chat(server, AS_TEXT)["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    # "think" over a template that shows no tags: what the model writes between them is its reasoning.
    message = chat(server, AS_THINK)["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == (THOUGHT, ANSWER)
    shown = httpx.post(f"{server.base_url}/api/show", json={"model": AS_THINK}, timeout=30).json()
    assert "thinking" in shown["capabilities"]


def test_an_alias_keeps_the_reasoning_format_of_its_source(server):
    client = ollama.Client(host=server.base_url, timeout=60)
    client.copy(AS_TEXT, "text-copy")
    client.copy(AS_THINK, "think-copy")
    listed = cards(server)
    assert listed["text-copy"]["reasoning_format"] == "none" and listed["think-copy"]["reasoning_format"] == "think"
    assert "</think>" in chat(server, "text-copy")["choices"][0]["message"]["content"]
    message = chat(server, "think-copy")["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == (THOUGHT, ANSWER)


def switch_prompts(server) -> dict[str, tuple[int, bool]]:
    """Each API's (prompt tokens, whether reasoning came out) for the switch model, with thinking off."""
    seen = {}
    body = chat(server, SWITCH, reasoning_effort="none")
    seen["chat"] = body["usage"]["prompt_tokens"], bool(body["choices"][0]["message"].get("reasoning_content"))
    answer = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60).messages.create(
        model=SWITCH, max_tokens=MAX_TOKENS, messages=MESSAGES, thinking={"type": "disabled"}
    )
    # Anthropic counts the cached part of the prompt apart.
    prompt = answer.usage.input_tokens + (answer.usage.cache_read_input_tokens or 0)
    seen["anthropic"] = prompt, any(b.type == "thinking" for b in answer.content)
    said = ollama.Client(host=server.base_url, timeout=60).chat(
        model=SWITCH, messages=MESSAGES, think=False, options={"num_predict": MAX_TOKENS}
    )
    seen["ollama"] = said.prompt_eval_count, bool(said.message.thinking)
    responses = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    response = responses.responses.create(
        model=SWITCH, input=MESSAGES, max_output_tokens=MAX_TOKENS, reasoning={"effort": "none"}, store=False
    )
    seen["responses"] = response.usage.input_tokens, any(item.type == "reasoning" for item in response.output)
    return seen


def test_each_apis_off_switch_turns_the_templates_switch_off(server):
    on = chat(server, SWITCH)
    assert on["choices"][0]["message"]["reasoning_content"]  # this random model thinks until max_tokens
    # Off, the template writes its empty reasoning block: the prompt grows by it, and nothing is thought.
    expected = (on["usage"]["prompt_tokens"] + SWITCH_OFF_EXTRA_TOKENS, False)
    assert switch_prompts(server) == dict.fromkeys(("chat", "anthropic", "ollama", "responses"), expected)


def test_off_without_a_switch_closes_the_reasoning_and_the_answer_follows(server):
    message = chat(server, reasoning_effort="none")["choices"][0]["message"]
    assert message.get("reasoning_content") is None and message["content"] == ANSWER
    client = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    answer = client.messages.create(
        model=WRITER, max_tokens=MAX_TOKENS, messages=MESSAGES, thinking={"type": "disabled"}
    )
    assert [(b.type, b.text) for b in answer.content] == [("text", ANSWER)]


def test_streamed_usage_counts_the_reasoning_tokens(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model=WRITER,
        messages=MESSAGES,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage.completion_tokens_details.reasoning_tokens == len(THOUGHT)
    assert usage.completion_tokens == chat(server)["usage"]["completion_tokens"]
    events = list(
        client.responses.create(model=WRITER, input=MESSAGES, max_output_tokens=MAX_TOKENS, store=False, stream=True)
    )
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens_details.reasoning_tokens == len(THOUGHT)


PRIOR = "The user adds small numbers, so the answer is four."
TURNS = [MESSAGES[0], {"role": "assistant", "content": ANSWER}, {"role": "user", "content": "And three and three?"}]


def test_earlier_thinking_sent_back_costs_no_prompt_tokens(server):
    def prompt_tokens(assistant: dict) -> int:
        messages = [TURNS[0], {**TURNS[1], **assistant}, TURNS[2]]
        return chat(server, HISTORY, messages=messages, max_tokens=1)["usage"]["prompt_tokens"]

    without = prompt_tokens({})
    assert prompt_tokens({"reasoning_content": PRIOR}) == without
    blocks = [{"type": "thinking", "thinking": PRIOR, "signature": "x"}, {"type": "text", "text": ANSWER}]
    client = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    answer = client.messages.create(
        model=HISTORY, max_tokens=1, messages=[TURNS[0], {"role": "assistant", "content": blocks}, TURNS[2]]
    )
    assert answer.usage.input_tokens + answer.usage.cache_read_input_tokens == without
    said = ollama.Client(host=server.base_url, timeout=60).chat(
        model=HISTORY, messages=[TURNS[0], {**TURNS[1], "thinking": PRIOR}, TURNS[2]], options={"num_predict": 1}
    )
    assert said.prompt_eval_count == without
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": PRIOR}],
    }
    responses = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)
    response = responses.responses.create(
        model=HISTORY, input=[TURNS[0], reasoning, TURNS[1], TURNS[2]], max_output_tokens=1, store=False
    )
    assert response.usage.input_tokens == without


def test_thinking_of_a_tool_calling_turn_still_going_on_reaches_the_template(server):
    # The control for the test above: the template keeps a turn's thinking after the last user message.
    call = {"id": "call_1", "type": "function", "function": {"name": "pick", "arguments": "{}"}}
    turn = {"role": "assistant", "content": "", "tool_calls": [call]}

    def prompt_tokens(assistant: dict) -> int:
        messages = [MESSAGES[0], {**turn, **assistant}, {"role": "tool", "tool_call_id": "call_1", "content": "left"}]
        return chat(server, HISTORY, messages=messages, max_tokens=1)["usage"]["prompt_tokens"]

    # The thought between its tags, as the model's tokenizer reads them.
    block = {"model": HISTORY, "prompt": f"<think>{PRIOR}</think>", "add_special_tokens": False}
    expected = httpx.post(f"{server.base_url}/tokenize", json=block, timeout=30).json()["count"]
    assert expected > len(PRIOR)
    assert prompt_tokens({"reasoning_content": PRIOR}) - prompt_tokens({}) == expected


def test_anthropic_returns_the_thinking_cut_by_max_tokens(server):
    client = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    fields = {
        "model": WRITER,
        "max_tokens": 3,
        "messages": MESSAGES,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    message = client.messages.create(**fields)
    assert message.stop_reason == "max_tokens"
    assert [(b.type, b.thinking) for b in message.content] == [("thinking", THOUGHT[:3])]
    assert message.content[0].signature and message.usage.output_tokens == 3
    with client.messages.stream(**fields) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and [(b.type, b.thinking) for b in final.content] == [("thinking", "Eas")]
