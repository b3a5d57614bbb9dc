"""A failed engine call, read once: the gRPC status and the engine's
ErrorInfo reason, so that no caller parses message text or handles grpc."""

import grpc

from hearth.rpc_errors import read_rpc_error

# Status codes that mean no engine answered, as opposed to one answering with an error.
NOT_LISTENING = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class EngineCallError(Exception):
    """An engine call failed. ``reason`` is the engine's ErrorInfo reason
    ("MODEL_NOT_FOUND", "INVALID_ARGUMENT", ...) when it said one, else "";
    ``code`` the gRPC status code's name ("UNAVAILABLE", "CANCELLED", ...)."""

    def __init__(self, code: str, message: str, reason: str = "", metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "EngineCallError":
        info = read_rpc_error(error)
        return cls(info.code.name, info.message, info.reason, info.metadata)

    @classmethod
    def stream_truncated(cls) -> "EngineCallError":
        return cls("UNKNOWN", "The engine ended the stream early", "STREAM_TRUNCATED")

    @property
    def param(self) -> str | None:
        return self.metadata.get("param")

    @property
    def not_listening(self) -> bool:
        """No engine answered at the address (as opposed to one refusing the call)."""
        return self.code in {code.name for code in NOT_LISTENING}

    @property
    def cancelled(self) -> bool:
        return self.code == grpc.StatusCode.CANCELLED.name

    def describe(self) -> str:
        """One line for a person: "not_found: The model 'x' does not exist [MODEL_NOT_FOUND]"."""
        reason = f" [{self.reason}]" if self.reason else ""
        return f"{self.code.lower()}: {self.message}{reason}"
