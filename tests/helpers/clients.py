"""Small helpers for driving the official clients in tests."""

import ollama
import pytest


def ollama_refusal(call, *args, **kwargs) -> ollama.ResponseError:
    """The error the ollama client raises for ``call(*args, **kwargs)`` (the test fails if none)."""
    with pytest.raises(ollama.ResponseError) as raised:
        call(*args, **kwargs)
    return raised.value
