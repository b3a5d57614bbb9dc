"""Tool-call arguments from a client's history, as the engine takes them: JSON
object text. OpenAI sends JSON text, Ollama an object; some clients mix them."""

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
