"""The adapter's one gRPC channel to the engine, with errors turned into OpenAIError."""

import time

import grpc

from hearth.adapter.errors import OpenAIError, from_rpc_error
from hearth.adapter.generation import FINISH_REASONS
from hearth.adapter.metrics import Metrics
from hearth.engine.auth import auth_metadata
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


async def first_message(call):
    """The first message of a server-streaming call: errors before any output
    become OpenAIErrors (so HTTP errors, not broken streams)."""
    try:
        first = await call.read()
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from exc
    except BaseException:
        call.cancel()
        raise
    if first is grpc.aio.EOF:
        raise OpenAIError(502, "The engine ended the stream early", type="server_error", code="stream_truncated")
    return first


class GenerationStream:
    """A started Generate call whose first message has arrived, so that errors
    before any output become HTTP errors rather than broken streams."""

    def __init__(self, call, first: pb.GenerateResponse, model: str = "", metrics: Metrics | None = None):
        self._call = call
        self._first: pb.GenerateResponse | None = first
        self._model = model
        self._metrics = metrics
        self._ended = False

    def _end(self, outcome: str, message: pb.GenerateResponse | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if self._metrics is not None:
            usage = message.usage if message is not None else None
            self._metrics.generation_ended(
                self._model,
                outcome,
                usage.prompt_tokens if usage is not None else 0,
                usage.completion_tokens if usage is not None else 0,
            )

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        # The stream's last message is the one that carries usage.
        if self._first is not None:
            first, self._first = self._first, None
            if first.HasField("usage"):
                self._end(_outcome(first), first)
            yield first
            if first.HasField("usage"):
                return
        try:
            while (message := await self._call.read()) is not grpc.aio.EOF:
                if message.HasField("usage"):
                    self._end(_outcome(message), message)
                yield message
                if message.HasField("usage"):
                    return
        except grpc.RpcError as exc:
            self._end("error")
            raise from_rpc_error(exc) from exc
        self._end("error")
        raise OpenAIError(502, "The engine ended the stream early", type="server_error", code="stream_truncated")

    def cancel(self) -> None:
        self._end("cancelled")
        self._call.cancel()


class ServerStream:
    """A server-streaming call (other than Generate) whose first message has
    arrived, so that errors before any progress become HTTP errors."""

    def __init__(self, call, first):
        self._call = call
        self._first = first

    @classmethod
    async def start(cls, call) -> "ServerStream":
        return cls(call, await first_message(call))

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        try:
            while (message := await self._call.read()) is not grpc.aio.EOF:
                yield message
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def cancel(self) -> None:
        self._call.cancel()


def _outcome(message: pb.GenerateResponse) -> str:
    return FINISH_REASONS.get(message.finish_reason, "stop")


class EngineClient:
    def __init__(self, address: str, *, api_key: str | None = None, metrics: Metrics | None = None):
        self.address = address
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = engine_pb2_grpc.EngineStub(self._channel)
        # Sent with every call; the engine refuses calls without it when it has a key.
        self._metadata = auth_metadata(api_key) or None
        self._metrics = metrics

    async def close(self) -> None:
        await self._channel.close()

    async def list_models(self) -> list[pb.Model]:
        try:
            reply = await self._stub.ListModels(pb.ListModelsRequest(), timeout=30, metadata=self._metadata)
            return list(reply.models)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def get_model(self, model_id: str) -> pb.Model:
        try:
            reply = await self._stub.GetModel(pb.GetModelRequest(id=model_id), timeout=30, metadata=self._metadata)
            return reply.model
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def status(self, timeout: float) -> pb.GetStatusResponse:
        try:
            return await self._stub.GetStatus(pb.GetStatusRequest(), timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def _unary(self, method, request, timeout: float | None = None):
        try:
            return await method(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def embed(self, request: pb.EmbedRequest) -> pb.EmbedResponse:
        return await self._unary(self._stub.Embed, request)

    async def tokenize(self, request: pb.TokenizeRequest) -> pb.TokenizeResponse:
        return await self._unary(self._stub.Tokenize, request, timeout=120)

    async def detokenize(self, request: pb.DetokenizeRequest) -> pb.DetokenizeResponse:
        return await self._unary(self._stub.Detokenize, request, timeout=120)

    async def load_model(self, model_id: str, keep_alive_seconds: float | None = None) -> pb.Model:
        request = pb.LoadModelRequest(id=model_id)
        if keep_alive_seconds is not None:
            request.keep_alive_seconds = keep_alive_seconds
        # No deadline: loading a large model from a slow disk takes what it takes.
        return (await self._unary(self._stub.LoadModel, request)).model

    async def unload_model(self, model_id: str) -> pb.Model:
        return (await self._unary(self._stub.UnloadModel, pb.UnloadModelRequest(id=model_id))).model

    async def delete_model(self, model_id: str) -> None:
        await self._unary(self._stub.DeleteModel, pb.DeleteModelRequest(id=model_id), timeout=120)

    async def copy_model(self, source: str, destination: str) -> pb.Model:
        request = pb.CopyModelRequest(source=source, destination=destination)
        return (await self._unary(self._stub.CopyModel, request, timeout=120)).model

    async def pull(self, request: pb.PullModelRequest) -> "ServerStream":
        """A started PullModel call whose first progress message has arrived."""
        return await ServerStream.start(self._stub.PullModel(request, metadata=self._metadata))

    async def generate(self, request: pb.GenerateRequest) -> GenerationStream:
        call = self._stub.Generate(request, metadata=self._metadata)
        started = time.monotonic()
        first = await first_message(call)
        if self._metrics is not None:
            self._metrics.generation_started(request.model, time.monotonic() - started)
        return GenerationStream(call, first, request.model, self._metrics)
