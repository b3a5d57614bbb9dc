"""The Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`, run by Node.js)
against a started Hearth: text, streams with usage, and tool calls, as a
TypeScript app would use them. The default model is a small base model, so the
tests check the protocol (the SDK completes, reads usage, assembles well-formed
tool calls), not what the model chose to say."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.models import DEFAULT_MODEL_ID

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
CLIENT = NODE_DIR / "ai_sdk_client.mjs"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is installed by `make test`")


def run_scenario(server, scenario: str) -> dict:
    """One scenario of ai_sdk_client.mjs against ``server``; its JSON result."""
    assert (NODE_DIR / "node_modules" / "@ai-sdk" / "openai-compatible").is_dir(), "run `make node-deps`"
    result = subprocess.run(
        ["node", str(CLIENT), server.base_url, scenario, DEFAULT_MODEL_ID],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"the AI SDK failed: {result.stderr}"
    return json.loads(result.stdout)


def assert_usage(reply: dict, max_output: int) -> None:
    usage = reply["usage"]
    assert usage["inputTokens"] > 0
    assert 0 < usage["outputTokens"] <= max_output
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def assert_weather_call(call: dict) -> None:
    assert call["toolName"] == "get_weather"
    assert isinstance(call["toolCallId"], str) and call["toolCallId"]
    # The SDK checks the arguments against the zod schema and flags calls that fail it.
    assert not call["invalid"], call
    assert isinstance(call["input"]["city"], str)


def test_generate_text(server):
    reply = run_scenario(server, "text")
    assert reply["text"].strip()
    assert reply["finishReason"] in ("stop", "length")
    assert_usage(reply, max_output=16)
    assert reply["toolCalls"] == []
    assert [r["stream"] for r in reply["sent"]] == [False]


def test_stream_text_reports_usage(server):
    reply = run_scenario(server, "stream")
    assert reply["text"].strip()
    assert reply["chunks"] >= 2, "the text arrived in one piece, not streamed"
    assert reply["finishReason"] in ("stop", "length")
    # Usage in a stream needs stream_options.include_usage, which `includeUsage: true` sends.
    assert reply["sent"][0]["stream"] is True
    assert reply["sent"][0]["stream_options"] == {"include_usage": True}
    assert_usage(reply, max_output=16)


def test_required_tool_call(server):
    reply = run_scenario(server, "tools")
    assert reply["sent"][0]["tool_choice"] == "required"
    assert reply["finishReason"] == "tool-calls"
    assert len(reply["toolCalls"]) >= 1
    for call in reply["toolCalls"]:
        assert_weather_call(call)
    assert_usage(reply, max_output=64)


def test_named_tool_call(server):
    reply = run_scenario(server, "tools-named")
    assert reply["sent"][0]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert reply["finishReason"] == "tool-calls"
    assert len(reply["toolCalls"]) >= 1
    assert_weather_call(reply["toolCalls"][0])


def test_streamed_tool_call_assembles(server):
    reply = run_scenario(server, "tools-stream")
    sent = reply["sent"][0]
    assert sent["stream"] is True and sent["tool_choice"] == "required"
    parts = reply["parts"]
    # The SDK built the call from streamed tool_calls deltas: a start naming the
    # tool, the arguments in one or more deltas, an end, then the whole call.
    assert "get_weather" in parts["toolInputStarts"]
    assert parts["toolInputDeltas"] >= 1
    assert parts["toolInputEnds"] >= 1
    assert parts["toolCalls"] == len(reply["toolCalls"]) >= 1
    for call in reply["toolCalls"]:
        assert_weather_call(call)
    assert reply["finishReason"] == "tool-calls"
    assert_usage(reply, max_output=64)


def test_auto_tool_choice_completes(server):
    reply = run_scenario(server, "tools-auto")
    assert reply["sent"][0]["tool_choice"] == "auto"
    assert reply["sent"][0]["tools"] == ["get_weather"]
    # The model may answer or call: either way a well-formed end.
    assert reply["finishReason"] in ("stop", "length", "tool-calls")
    if reply["finishReason"] == "tool-calls":
        assert reply["toolCalls"]
    for call in reply["toolCalls"]:
        assert isinstance(call["toolCallId"], str) and call["toolCallId"]
        assert call["toolName"] == "get_weather"
        assert isinstance(call["input"], dict)
    assert_usage(reply, max_output=32)
