"""Typed engine errors. The gRPC interceptor maps each to a status code and
a google.rpc.ErrorInfo reason, so clients never parse message text."""

import grpc


class EngineError(Exception):
    reason = "INTERNAL"
    status_code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, param: str | None = None, model: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.model = model


class ModelNotFound(EngineError):
    reason = "MODEL_NOT_FOUND"
    status_code = grpc.StatusCode.NOT_FOUND


class ModelInvalid(EngineError):
    reason = "MODEL_INVALID"
    status_code = grpc.StatusCode.FAILED_PRECONDITION


class ModelLoadFailed(EngineError):
    reason = "MODEL_LOAD_FAILED"
    status_code = grpc.StatusCode.INTERNAL


class ContextLengthExceeded(EngineError):
    reason = "CONTEXT_LENGTH_EXCEEDED"
    status_code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidArgument(EngineError):
    reason = "INVALID_ARGUMENT"
    status_code = grpc.StatusCode.INVALID_ARGUMENT


class TemplateError(EngineError):
    reason = "TEMPLATE_ERROR"
    status_code = grpc.StatusCode.INVALID_ARGUMENT


class QueueFull(EngineError):
    reason = "QUEUE_FULL"
    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ModelBusy(EngineError):
    """Loading needs memory that only models serving requests hold."""

    reason = "MODEL_BUSY"
    status_code = grpc.StatusCode.FAILED_PRECONDITION


class PullFailed(EngineError):
    reason = "PULL_FAILED"
    status_code = grpc.StatusCode.UNAVAILABLE


class ChecksumMismatch(EngineError):
    reason = "CHECKSUM_MISMATCH"
    status_code = grpc.StatusCode.DATA_LOSS


class AlreadyExists(EngineError):
    reason = "ALREADY_EXISTS"
    status_code = grpc.StatusCode.ALREADY_EXISTS
