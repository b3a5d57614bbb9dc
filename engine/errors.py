"""Typed engine errors, free of any transport: each names its reason (the
google.rpc.ErrorInfo reason clients read), and rpc.interceptors maps reasons
to gRPC status codes in one place."""


class EngineError(Exception):
    reason = "INTERNAL"

    def __init__(self, message: str, *, param: str | None = None, model: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.model = model


class ModelNotFound(EngineError):
    reason = "MODEL_NOT_FOUND"


class ModelInvalid(EngineError):
    reason = "MODEL_INVALID"


class ModelLoadFailed(EngineError):
    reason = "MODEL_LOAD_FAILED"


class ContextLengthExceeded(EngineError):
    reason = "CONTEXT_LENGTH_EXCEEDED"


class InvalidArgument(EngineError):
    reason = "INVALID_ARGUMENT"


class TemplateError(EngineError):
    reason = "TEMPLATE_ERROR"


class QueueFull(EngineError):
    reason = "QUEUE_FULL"


class ModelBusy(EngineError):
    """Loading needs memory that only models serving requests hold."""

    reason = "MODEL_BUSY"


class PullFailed(EngineError):
    reason = "PULL_FAILED"


class ChecksumMismatch(EngineError):
    reason = "CHECKSUM_MISMATCH"


class AlreadyExists(EngineError):
    reason = "ALREADY_EXISTS"
