"""google.rpc.ErrorInfo on gRPC statuses: how the engine says which error it
raised, and how clients read it back. Shared by both sides of the wire."""

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "hearth.engine.v1"
_DETAILS_KEY = "grpc-status-details-bin"


def status_with_reason(
    code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str]
) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """(code, details, trailing metadata) for ``context.abort``."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(info)
    return code, message, ((_DETAILS_KEY, status.SerializeToString()),)


@dataclass
class RpcErrorInfo:
    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def read_rpc_error(error: grpc.RpcError) -> RpcErrorInfo:
    """The status code, message and ErrorInfo (if any) of a failed call."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    result = RpcErrorInfo(code=code, message=message or "")
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key != _DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info) and info.domain == ERROR_DOMAIN:
                result.reason = info.reason
                result.metadata = dict(info.metadata)
    return result
