"""The Playground's tools box: OpenAI's tool objects (or bare functions) become
the engine's tools; what is not a tool says why."""

import json

import pytest

from hearth.desktop.chat_session import ChatTurn
from hearth.desktop.controller import chat_tools, history_messages

pytestmark = pytest.mark.unit


def test_tools_in_openais_shape_or_bare_functions_are_read():
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    [wrapped] = chat_tools(json.dumps([{"type": "function", "function": weather}]))
    [bare] = chat_tools(json.dumps(weather))
    assert wrapped == bare and wrapped.name == "get_weather"
    assert json.loads(wrapped.parameters_json)["properties"]["city"] == {"type": "string"}
    assert chat_tools("  ") == []


@pytest.mark.parametrize(
    "text, says", [("[{", "not JSON"), ('"x"', "JSON array"), ('[{"type": "function"}]', "no name"), ("[1]", "no name")]
)
def test_what_is_not_a_tool_says_why(text, says):
    with pytest.raises(ValueError, match=says):
        chat_tools(text)


def test_a_turn_of_calls_alone_goes_back_with_its_calls():
    turns = [
        ChatTurn("user", "Weather in Oslo?"),
        ChatTurn("assistant", "", tool_calls=[("get_weather", '{"city": "Oslo"}'), ("get_time", "{}")]),
        ChatTurn("user", "And now?"),
    ]
    messages = history_messages(turns)
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    calls = messages[1].tool_calls
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", '{"city": "Oslo"}'), ("get_time", "{}")]
    assert len({c.id for c in calls}) == 2 and not messages[0].tool_calls
