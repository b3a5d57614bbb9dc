"""The adapter's one gRPC channel to the engine, with errors turned into OpenAIError."""

import grpc

from hearth.adapter.errors import OpenAIError, from_rpc_error
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc

CHANNEL_OPTIONS = [
    # After an engine restart, reconnect within a second instead of gRPC's
    # default backoff of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


class GenerationStream:
    """A started Generate call whose first message has arrived, so that errors
    before any output become HTTP errors rather than broken streams."""

    def __init__(self, call, first: pb.GenerateResponse):
        self._call = call
        self._first: pb.GenerateResponse | None = first

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        # The stream's last message is the one that carries usage.
        if self._first is not None:
            first, self._first = self._first, None
            yield first
            if first.HasField("usage"):
                return
        try:
            while (message := await self._call.read()) is not grpc.aio.EOF:
                yield message
                if message.HasField("usage"):
                    return
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        raise OpenAIError(502, "The engine ended the stream early", type="server_error", code="stream_truncated")

    def cancel(self) -> None:
        self._call.cancel()


class EngineClient:
    def __init__(self, address: str):
        self.address = address
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = engine_pb2_grpc.EngineStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def list_models(self) -> list[pb.Model]:
        try:
            return list((await self._stub.ListModels(pb.ListModelsRequest(), timeout=30)).models)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def get_model(self, model_id: str) -> pb.Model:
        try:
            return (await self._stub.GetModel(pb.GetModelRequest(id=model_id), timeout=30)).model
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def status(self, timeout: float) -> pb.GetStatusResponse:
        try:
            return await self._stub.GetStatus(pb.GetStatusRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def generate(self, request: pb.GenerateRequest) -> GenerationStream:
        call = self._stub.Generate(request)
        try:
            first = await call.read()
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        except BaseException:
            call.cancel()
            raise
        if first is grpc.aio.EOF:
            raise OpenAIError(502, "The engine ended the stream early", type="server_error", code="stream_truncated")
        return GenerationStream(call, first)
