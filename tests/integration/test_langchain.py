"""LangChain's ChatOpenAI against a started `hearth serve`: invoke, stream,
batch, structured output and tools, as LangChain users write them."""

import pytest
from pydantic import BaseModel, Field

from tests.helpers.models import DEFAULT_MODEL_ID, INSTRUCT_MODEL_ID


class Weather(BaseModel):
    """Current weather in a city."""

    city: str = Field(max_length=40, description="The city")
    unit: str = Field(pattern="^(celsius|fahrenheit)$")


@pytest.fixture
def llm(server):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=DEFAULT_MODEL_ID,
        base_url=f"{server.base_url}/v1",
        api_key="unused",
        temperature=0,
        max_tokens=60,
        max_retries=0,
        stream_usage=True,
    )


def test_invoke_stream_and_batch(llm):
    short = llm.bind(max_tokens=6)
    reply = short.invoke("Monday, Tuesday, Wednesday,")
    assert reply.content and reply.usage_metadata["output_tokens"] <= 6
    chunks = list(short.stream("Monday, Tuesday, Wednesday,"))
    assert "".join(c.content for c in chunks) == reply.content
    # stream_usage: the usage chunk arrives and is merged.
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.usage_metadata["output_tokens"] == reply.usage_metadata["output_tokens"]
    answers = short.batch(["Monday, Tuesday, Wednesday,", "One, two, three,"])
    assert answers[0].content == reply.content and answers[1].content


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output(llm, method):
    structured = llm.with_structured_output(Weather, method=method)
    result = structured.invoke("What is the weather in Paris?")
    assert isinstance(result, Weather)


def test_json_mode(instruct_server):
    from langchain_openai import ChatOpenAI

    # JSON mode promises a JSON object, not a shape: without a schema LangChain returns the dict.
    # (A model that follows the request closes its object; a base model may fill the budget.)
    llm = ChatOpenAI(
        model=INSTRUCT_MODEL_ID,
        base_url=f"{instruct_server.base_url}/v1",
        api_key="unused",
        temperature=0,
        max_tokens=300,
        max_retries=0,
    )
    result = llm.with_structured_output(None, method="json_mode").invoke("Give a JSON object with one key, name, for a cat.")
    assert isinstance(result, dict)


def test_bind_tools(llm):
    with_tools = llm.bind_tools([Weather], tool_choice="any")
    reply = with_tools.invoke("What is the weather in Paris?")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "Weather"
    Weather(**reply.tool_calls[0]["args"])
    streamed = None
    for chunk in with_tools.stream("What is the weather in Paris?"):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed.tool_calls and streamed.tool_calls[0]["name"] == "Weather"
    Weather(**streamed.tool_calls[0]["args"])
