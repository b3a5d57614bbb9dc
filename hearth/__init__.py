"""Hearth: a local LLM server with an OpenAI-compatible API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hearth-llm")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
