"""Embeddings, tokenize/detokenize, the model listing's capabilities and an
agent-sized request, driven by the openai SDK against a started `hearth serve`."""

import base64
import math

import httpx
import numpy as np
import openai
import pytest

from tests.helpers.models import DEFAULT_MODEL_ID
from tests.helpers.tools import OPENCODE_2020

WEEK = [{"role": "user", "content": "Monday, Tuesday, Wednesday,"}]


# Embeddings and tokens


def test_embeddings_float_and_base64(openai_client):
    texts = ["The cat sat on the mat", "A cat was sitting on the mat", "Quarterly tax filings are due in April"]
    # The SDK asks for base64 and decodes it when no encoding_format is given.
    default = openai_client.embeddings.create(model=DEFAULT_MODEL_ID, input=texts)
    floats = openai_client.embeddings.create(model=DEFAULT_MODEL_ID, input=texts, encoding_format="float")
    assert [d.index for d in default.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in floats.data])
    assert vectors.shape == (3, 640)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(np.array([d.embedding for d in default.data]), vectors, atol=1e-6)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert floats.usage.prompt_tokens > 0 and floats.usage.total_tokens == floats.usage.prompt_tokens
    raw = httpx.post(
        f"{openai_client.base_url}embeddings",
        json={"model": DEFAULT_MODEL_ID, "input": "hello", "encoding_format": "base64"},
        timeout=60,
    ).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert decoded.shape == (640,) and math.isclose(float(np.linalg.norm(decoded)), 1.0, abs_tol=1e-3)


def test_embeddings_errors(openai_client):
    for bad, param in (([], "input"), ([1, 2, 3], "input"), ("", "input")):
        with pytest.raises(openai.BadRequestError) as raised:
            openai_client.embeddings.create(model=DEFAULT_MODEL_ID, input=bad, encoding_format="float")
        assert raised.value.body["param"] == param
    with pytest.raises(openai.NotFoundError):
        openai_client.embeddings.create(model="no-such-model", input="x")


def test_tokenize_and_detokenize_round_trip(server):
    text = "Hello, wörld! 你好 🙂"
    tokens = httpx.post(
        f"{server.base_url}/tokenize", json={"model": DEFAULT_MODEL_ID, "prompt": text, "with_pieces": True}, timeout=60
    ).json()
    assert tokens["count"] == len(tokens["tokens"]) and tokens["max_model_len"] == 32768
    back = httpx.post(f"{server.base_url}/detokenize", json={"model": DEFAULT_MODEL_ID, "tokens": tokens["tokens"]}, timeout=60)
    assert back.json()["prompt"].endswith(text)
    bad = httpx.post(f"{server.base_url}/detokenize", json={"model": DEFAULT_MODEL_ID, "tokens": [10**9]}, timeout=60)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tokens"


def test_models_say_what_they_can_do(openai_client):
    openai_client.chat.completions.create(model=DEFAULT_MODEL_ID, messages=WEEK, max_tokens=1)
    card = openai_client.models.retrieve(DEFAULT_MODEL_ID)
    assert card.loaded is True and card.memory_bytes > 0
    assert {"chat", "completion", "embeddings", "tools"} <= set(card.capabilities)


def _opencode_like_tools() -> list[dict]:
    """Ten function tools shaped like OpenCode's: draft 2020-12 "$schema",
    exclusiveMinimum, and bounds of +-(2**53 - 1)."""
    tools = []
    for index, name in enumerate(["bash", "edit", "glob", "grep", "list", "read", "write", "todowrite", "todoread", "webfetch"]):
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": f"Tool {index}: " + "Use it when the task needs it. " * 20,
                    "parameters": {
                        **OPENCODE_2020,
                        "properties": {
                            "path": {"type": "string", "description": "An absolute path"},
                            **OPENCODE_2020["properties"],
                        },
                        "required": ["path"],
                    },
                },
            }
        )
    return tools


def test_an_opencode_sized_agent_request(openai_client):
    # What OpenCode sends: a long system prompt and ten tools (about 7,500
    # tokens together), streamed, with usage and an output limit. The default
    # context (its trained 32768) holds it.
    system = "You are a coding agent. Follow the rules below carefully.\n" + "Rule: keep answers short and exact. " * 520
    stream = openai_client.chat.completions.create(
        model=DEFAULT_MODEL_ID,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "List the files here."}],
        tools=_opencode_like_tools(),
        tool_choice="auto",
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
    )
    chunks = list(stream)
    assert chunks[-1].usage.prompt_tokens > 7000
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish and finish[-1] in ("stop", "length", "tool_calls")
    for chunk in chunks:
        for fragment in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            assert fragment.function.name is None or fragment.function.name in {t["function"]["name"] for t in _opencode_like_tools()}
