"""Text checks every API family makes: lone surrogates anywhere in a parsed
body, and tool-call arguments from a client's history as the engine takes
them (JSON object text; OpenAI sends JSON text, Ollama an object, some clients mix them)."""

import json
from typing import Any


def arguments_json(arguments: dict[str, Any] | str) -> str:
    """The arguments as JSON object text; ValueError when they are not an
    object (or nest too deeply to read)."""
    try:
        if isinstance(arguments, str):
            parsed = json.loads(arguments) if arguments.strip() else {}
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
            return arguments if arguments.strip() else "{}"
        return json.dumps(arguments, ensure_ascii=False)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def header_list(names: list[str], limit: int = 1024) -> str:
    """Client-given names as one header value: comma-separated, non-ASCII and
    control characters percent-encoded (headers are latin-1 and one line), at most ``limit`` characters."""
    from urllib.parse import quote

    return ",".join(quote(name, safe=" _-.:/@") for name in names)[:limit]


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """Where in a parsed JSON body a string holds a lone surrogate (JSON allows
    the escape "\\ud800"; UTF-8, protobuf and the engine do not); None if nowhere.
    Walks without recursion, so a body nested however deep is read to the end."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where or "body"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                pending.append((child, f"{where}.{key}" if where else str(key)))
                pending.append((key, where or "body"))
        elif isinstance(item, list):
            pending.extend((child, f"{where}[{index}]") for index, child in reversed(list(enumerate(item))))
    return None
