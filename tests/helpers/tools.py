"""Tools and requests the tool-calling tests share."""

import re

from hearth.engine.domain import GenerateParams, SamplingParams, ToolCall, ToolSpec
from hearth.engine.tools.extractors import ToolCallExtractor

WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 8},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
            "detailed": {"type": "boolean"},
        },
        "required": ["city", "unit", "days", "detailed"],
    },
)
SEARCH = ToolSpec(
    "search",
    "Search the web",
    {"type": "object", "properties": {"query": {"type": "string", "maxLength": 6}}, "required": ["query"]},
)
NAMES = frozenset({"get_weather", "search"})
CALL_ID = re.compile(r"call_[A-Za-z0-9]{24}")


def params(tool_choice: str = "auto", *, tools=(WEATHER, SEARCH), parallel: bool = True, function: str = "") -> GenerateParams:
    return GenerateParams(
        model="m",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        prompt=None,
        max_tokens=64,
        stop=(),
        sampling=SamplingParams(),
        request_id="r",
        tools=tools,
        tool_choice=tool_choice,
        tool_choice_function=function,
        parallel_tool_calls=parallel,
    )


def run(extractor: ToolCallExtractor, pieces: list[str]) -> tuple[str, list[ToolCall]]:
    shown, calls = [], []
    for piece in pieces:
        text, made = extractor.push(piece)
        shown.append(text)
        calls += made
    text, made = extractor.finish()
    return "".join(shown) + text, calls + made


# A tool schema as OpenCode writes them: draft-07, absurd bounds.
OPENCODE_LIKE = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "filePath": {"type": "string", "description": "The absolute path"},
        "offset": {"type": "number", "exclusiveMinimum": 0, "maximum": 9007199254740991},
        "limit": {"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991},
        "lines": {"type": "array", "items": {"type": "string", "maxLength": 9007199254740991}, "maxItems": 9007199254740991},
        "extra": {"description": "anything"},
    },
    "required": ["filePath"],
    "additionalProperties": False,
}


# The shape of OpenCode's newer tool schemas (zod's draft 2020-12 output).
OPENCODE_2020 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "offset": {"type": "integer", "exclusiveMinimum": 0, "maximum": 9007199254740991},
        "limit": {"type": "number", "minimum": -9007199254740991, "maximum": 9007199254740991},
    },
    "required": ["offset"],
    "additionalProperties": False,
}
