"""Hearth: a local LLM server with OpenAI-, Ollama-compatible APIs.

This package is the ground floor: the engine client (client/), settings
(settings/), auth, paths, logging and formatting, shared by the engine, the
adapter and the desktop window; it imports nothing above it. Its cli/
subpackage is the top floor that runs them all.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hearth-llm")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
