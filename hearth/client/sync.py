"""The engine client for threads (the desktop window, the CLI): the
synchronous gRPC API, since grpc.aio binds a process-wide poller to one event
loop. Every method raises EngineCallError; streams are returned as calls that
another thread may cancel."""

from collections.abc import Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hearth.client.channel import call_metadata, open_channel
from hearth.client.errors import EngineCallError
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.tls import ClientTls


class CallStream:
    """A server-streaming call: iterate it for its messages (EngineCallError on
    failure, whose ``cancelled`` tells a cancel from a failure); cancel() from any thread."""

    def __init__(self, call):
        self._call = call

    def __iter__(self) -> Iterator:
        try:
            yield from self._call
        except grpc.RpcError as exc:
            raise EngineCallError.from_rpc(exc) from exc

    def cancel(self) -> None:
        self._call.cancel()


class EngineClient:
    def __init__(self, address: str, *, api_key: str | None = None, tls: ClientTls | None = None):
        self.address = address
        self._channel = open_channel(address, asynchronous=False, tls=tls)
        self._stub = engine_pb2_grpc.EngineStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        # Replaced whole, never mutated: threads read it without a lock.
        self._metadata = call_metadata(api_key)

    def __enter__(self) -> "EngineClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def set_api_key(self, api_key: str | None) -> None:
        self._metadata = call_metadata(api_key)

    def _unary(self, method, request, timeout: float | None):
        try:
            return method(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise EngineCallError.from_rpc(exc) from exc

    def healthy(self, timeout: float = 3.0) -> bool:
        """Whether an engine answers its health check as SERVING at the address."""
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout, metadata=self._metadata)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def status(self, timeout: float) -> pb.GetStatusResponse:
        return self._unary(self._stub.GetStatus, pb.GetStatusRequest(), timeout)

    def list_models(self, timeout: float) -> list[pb.Model]:
        return list(self._unary(self._stub.ListModels, pb.ListModelsRequest(), timeout).models)

    def get_model(self, model_id: str, timeout: float) -> pb.Model:
        return self._unary(self._stub.GetModel, pb.GetModelRequest(id=model_id), timeout).model

    def load_model(self, model_id: str, timeout: float) -> pb.Model:
        return self._unary(self._stub.LoadModel, pb.LoadModelRequest(id=model_id), timeout).model

    def unload_model(self, model_id: str, timeout: float) -> pb.Model:
        return self._unary(self._stub.UnloadModel, pb.UnloadModelRequest(id=model_id), timeout).model

    def delete_model(self, model_id: str, timeout: float = 120) -> None:
        self._unary(self._stub.DeleteModel, pb.DeleteModelRequest(id=model_id), timeout)

    def copy_model(self, source: str, destination: str, timeout: float = 120) -> pb.Model:
        request = pb.CopyModelRequest(source=source, destination=destination)
        return self._unary(self._stub.CopyModel, request, timeout).model

    def update_model_settings(self, model_id: str, settings: pb.ModelSettings, timeout: float = 60) -> pb.Model:
        """Replaces the model's own settings (its config entry's); they apply from its next load."""
        request = pb.UpdateModelSettingsRequest(model=model_id, settings=settings)
        return self._unary(self._stub.UpdateModelSettings, request, timeout).model

    def pull(self, reference: str, revision: str = "") -> CallStream:
        """PullModel's progress; no deadline (a download takes what the network needs)."""
        request = pb.PullModelRequest(reference=reference, revision=revision)
        return CallStream(self._stub.PullModel(request, metadata=self._metadata))

    def generate(self, request: pb.GenerateRequest) -> CallStream:
        return CallStream(self._stub.Generate(request, metadata=self._metadata))

    def watch_events(self) -> CallStream:
        return CallStream(self._stub.WatchEvents(pb.WatchEventsRequest(), metadata=self._metadata))

    def watch_logs(self) -> CallStream:
        """The engine's log lines: the recent ones (replayed), then as they are written."""
        return CallStream(self._stub.WatchLogs(pb.WatchLogsRequest(), metadata=self._metadata))
