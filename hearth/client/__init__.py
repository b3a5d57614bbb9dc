"""The one client of the engine's gRPC API, used by the adapter, the desktop
window and the CLI: the channel and its options, API-key metadata, errors
read into EngineCallError, finish-reason names, and stream helpers. It
imports only the ground floor and the generated hearth.engine.v1 stubs."""

from hearth.client.aio import AsyncEngineClient, GenerationStream, ServerStream
from hearth.client.errors import EngineCallError
from hearth.client.names import FINISH_REASONS, OLLAMA_SAMPLING, finish_reason_name, model_state_name
from hearth.client.sync import EngineClient

__all__ = [
    "FINISH_REASONS",
    "OLLAMA_SAMPLING",
    "AsyncEngineClient",
    "EngineCallError",
    "EngineClient",
    "GenerationStream",
    "ServerStream",
    "finish_reason_name",
    "model_state_name",
]
