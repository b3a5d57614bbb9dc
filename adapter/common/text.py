"""Text checks every API family makes: lone surrogates anywhere in a parsed
body, and tool-call arguments from a client's history as the engine takes
them (JSON object text; OpenAI sends JSON text, Ollama an object, some clients mix them)."""

import json
from typing import Any


def arguments_json(arguments: dict[str, Any] | str) -> str:
    """The arguments as JSON object text; ValueError when they are not an object."""
    if isinstance(arguments, str):
        parsed = json.loads(arguments) if arguments.strip() else {}
        if not isinstance(parsed, dict):
            raise ValueError("not a JSON object")
        return arguments if arguments.strip() else "{}"
    return json.dumps(arguments, ensure_ascii=False)


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """Where in a parsed JSON body a string holds a lone surrogate (JSON allows
    the escape "\\ud800"; UTF-8, protobuf and the engine do not); None if nowhere."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = lone_surrogate_at(key, path or "body") or lone_surrogate_at(
                item, f"{path}.{key}" if path else str(key)
            )
            if where:
                return where
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if where := lone_surrogate_at(item, f"{path}[{index}]"):
                return where
    return None
