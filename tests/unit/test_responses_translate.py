"""Responses requests -> engine requests (namespaced functions, earlier turns)
and the event stream of a generation that fails midway."""

import asyncio

import pytest

from hearth.adapter.common.errors import ApiError
from hearth.adapter.responses.events import response_events
from hearth.adapter.responses.protocol import ResponsesRequest
from hearth.adapter.responses.translate import function_call_item, responses_to_generate
from hearth.client import EngineCallError
from hearth.engine.v1 import engine_pb2 as pb

READ = {"type": "function", "name": "read", "parameters": {"type": "object"}}


def request(**fields) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"model": "m", "input": "hi", **fields})


def test_a_namespace_offers_its_functions_under_flat_names_and_maps_calls_back():
    namespace = {"type": "namespace", "name": "mcp__files", "description": "Files.", "tools": [READ]}
    prepared = responses_to_generate(request(tools=[READ, namespace, {"type": "web_search"}]), "resp_1")
    assert [tool.name for tool in prepared.generate.tools] == ["read", "mcp__files__read"]
    assert prepared.generate.tools[1].description == "Files."
    assert prepared.left_out == ["web_search"]
    call = pb.ToolCall(id="call_1", name="mcp__files__read", arguments="{}")
    item = function_call_item(call, prepared.names)
    assert (item["name"], item["namespace"]) == ("read", "mcp__files")
    plain = function_call_item(pb.ToolCall(id="call_2", name="read", arguments="{}"), prepared.names)
    assert plain["name"] == "read" and "namespace" not in plain


def test_a_namespaced_call_in_the_input_is_the_flat_name_the_model_knows():
    items = [
        {"type": "function_call", "call_id": "c1", "name": "read", "namespace": "mcp__files", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "text"},
    ]
    generate = responses_to_generate(request(input=items), "resp_1").generate
    assert [call.name for call in generate.messages[0].tool_calls] == ["mcp__files__read"]


def test_earlier_turns_come_before_the_input_and_instructions_first():
    history = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
    ]
    prepared = responses_to_generate(request(instructions="sys", input="three"), "resp_1", history)
    assert [(m.role, m.content) for m in prepared.generate.messages] == [
        ("system", "sys"),
        ("user", "one"),
        ("assistant", "two"),
        ("user", "three"),
    ]
    assert prepared.input_items[0]["content"] == [{"type": "input_text", "text": "three"}]
    assert prepared.input_items[0]["id"].startswith("msg_")


def test_a_replayed_namespaced_call_keeps_the_name_it_was_offered_under():
    # A plain function already named mcp__files__read: the namespaced one is offered as mcp__files__read_.
    clash = {**READ, "name": "mcp__files__read"}
    namespace = {"type": "namespace", "name": "mcp__files", "tools": [READ]}
    items = [{"type": "function_call", "call_id": "c1", "name": "read", "namespace": "mcp__files", "arguments": "{}"}]
    generate = responses_to_generate(request(input=items, tools=[clash, namespace]), "resp_1").generate
    assert [tool.name for tool in generate.tools] == ["mcp__files__read", "mcp__files__read_"]
    assert [call.name for call in generate.messages[0].tool_calls] == ["mcp__files__read_"]


def test_an_item_reference_must_name_an_item_of_the_earlier_turns():
    history = [{"type": "message", "id": "msg_1", "role": "user", "content": [{"type": "input_text", "text": "one"}]}]
    known = responses_to_generate(request(input=[{"type": "item_reference", "id": "msg_1"}]), "resp_1", history)
    assert [m.content for m in known.generate.messages] == ["one"]
    with pytest.raises(ApiError) as raised:
        responses_to_generate(request(input=[{"type": "item_reference", "id": "msg_gone"}]), "resp_1", history)
    assert raised.value.status == 400 and raised.value.param == "input[0].id"


def test_input_item_ids_sent_twice_are_made_unique_for_paging():
    same = {"type": "message", "id": "msg_x", "role": "user", "content": "again"}
    items = responses_to_generate(request(input=[same, same]), "resp_1").input_items
    assert items[0]["id"] == "msg_x" and items[1]["id"] != "msg_x"


async def _failing_stream():
    yield pb.GenerateResponse(text="Hel")
    raise EngineCallError("UNAVAILABLE", "the engine went away", "")


def test_a_generation_that_fails_midway_ends_with_error_and_response_failed():
    body = request(stream=True)
    prepared = responses_to_generate(body, "resp_1")

    async def events():
        return [e async for e in response_events(_failing_stream(), body, prepared, "resp_1", 0, stored=False)]

    events = asyncio.run(events())
    kinds = [kind for kind, _ in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert [payload["sequence_number"] for _, payload in events] == list(range(len(events)))
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    assert events[-2][1]["message"] == failed["error"]["message"]
