"""The OpenAI Agents SDK (`openai-agents`) on Hearth's Responses API: an agent
with a function tool runs its loop (model call, tool call, tool output, final
answer) against a started `hearth serve` with the instruct model, tracing off
so that nothing leaves the machine."""

import asyncio

import agents
from openai import AsyncOpenAI

from tests.helpers.models import INSTRUCT_MODEL_ID


def test_an_agent_calls_its_tool_and_answers(agent_server):
    agents.set_tracing_disabled(True)
    asked: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        asked.append(city)
        return f"It is sunny and 24 C in {city}."

    client = AsyncOpenAI(base_url=f"{agent_server.base_url}/v1", api_key="unused", max_retries=0, timeout=300)
    agent = agents.Agent(
        name="Weather",
        instructions="Use the get_weather tool to answer questions about the weather, then answer in one sentence.",
        tools=[get_weather],
        model=agents.OpenAIResponsesModel(model=INSTRUCT_MODEL_ID, openai_client=client),
        model_settings=agents.ModelSettings(temperature=0, tool_choice="auto"),
    )

    async def run():
        try:
            return await agents.Runner.run(agent, "What is the weather in Paris?", max_turns=4)
        finally:
            await client.close()

    result = asyncio.run(run())
    assert asked and "paris" in asked[0].lower()
    assert isinstance(result.final_output, str) and result.final_output.strip()
    kinds = [item.type for item in result.new_items]
    assert "tool_call_item" in kinds and "tool_call_output_item" in kinds and kinds[-1] == "message_output_item"
