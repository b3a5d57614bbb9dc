"""The engine client for asyncio code (the adapter): unary calls, and
streams whose first message has arrived before they are handed out, so that
errors before any output become errors of the call rather than broken streams."""

import time
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hearth.client.channel import call_metadata, open_channel
from hearth.client.errors import EngineCallError
from hearth.client.names import finish_reason_name
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.tls import ClientTls


class GenerationObserver(Protocol):
    """Told when generations start and end (the adapter's metrics)."""

    def generation_started(self, model: str, seconds_to_first_message: float) -> None: ...

    def generation_ended(self, model: str, outcome: str, prompt_tokens: int, completion_tokens: int) -> None: ...


async def first_message(call):
    """The first message of a server-streaming call; an error before it is an EngineCallError."""
    try:
        first = await call.read()
    except grpc.RpcError as exc:
        raise EngineCallError.from_rpc(exc) from exc
    except BaseException:
        call.cancel()
        raise
    if first is grpc.aio.EOF:
        raise EngineCallError.stream_truncated()
    return first


class ServerStream:
    """A server-streaming call whose first message has arrived."""

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
            raise EngineCallError.from_rpc(exc) from exc

    def cancel(self) -> None:
        self._call.cancel()


class GenerationStream:
    """A started Generate call whose first message has arrived. Its messages
    end with the one that carries usage; a stream that ends before it is an
    EngineCallError (STREAM_TRUNCATED)."""

    def __init__(self, call, first: pb.GenerateResponse, model: str = "", observer: GenerationObserver | None = None):
        self._call = call
        self._first: pb.GenerateResponse | None = first
        self._model = model
        self._observer = observer
        self._ended = False

    def _end(self, outcome: str, message: pb.GenerateResponse | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if self._observer is not None:
            usage = message.usage if message is not None else None
            self._observer.generation_ended(
                self._model,
                outcome,
                usage.prompt_tokens if usage is not None else 0,
                usage.completion_tokens if usage is not None else 0,
            )

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        if self._first is not None:
            first, self._first = self._first, None
            if first.HasField("usage"):
                self._end(finish_reason_name(first.finish_reason), first)
            yield first
            if first.HasField("usage"):
                return
        try:
            while (message := await self._call.read()) is not grpc.aio.EOF:
                if message.HasField("usage"):
                    self._end(finish_reason_name(message.finish_reason), message)
                yield message
                if message.HasField("usage"):
                    return
        except grpc.RpcError as exc:
            self._end("error")
            raise EngineCallError.from_rpc(exc) from exc
        self._end("error")
        raise EngineCallError.stream_truncated()

    def cancel(self) -> None:
        self._end("cancelled")
        self._call.cancel()


class AsyncEngineClient:
    """One channel to the engine; every method raises EngineCallError."""

    def __init__(
        self,
        address: str,
        *,
        api_key: str | None = None,
        observer: GenerationObserver | None = None,
        tls: ClientTls | None = None,
    ):
        self.address = address
        self._channel = open_channel(address, asynchronous=True, tls=tls)
        self._stub = engine_pb2_grpc.EngineStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._metadata = call_metadata(api_key)
        self._observer = observer

    async def close(self) -> None:
        await self._channel.close()

    async def _unary(self, method, request, timeout: float | None = None):
        try:
            return await method(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise EngineCallError.from_rpc(exc) from exc

    async def healthy(self, timeout: float) -> bool:
        """Whether the engine answers its health check as SERVING."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout, metadata=self._metadata)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def list_models(self) -> list[pb.Model]:
        return list((await self._unary(self._stub.ListModels, pb.ListModelsRequest(), timeout=30)).models)

    async def get_model(self, model_id: str) -> pb.Model:
        return (await self._unary(self._stub.GetModel, pb.GetModelRequest(id=model_id), timeout=30)).model

    async def status(self, timeout: float) -> pb.GetStatusResponse:
        return await self._unary(self._stub.GetStatus, pb.GetStatusRequest(), timeout=timeout)

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

    async def pull(self, request: pb.PullModelRequest) -> ServerStream:
        """A started PullModel call whose first progress message has arrived."""
        return await ServerStream.start(self._stub.PullModel(request, metadata=self._metadata))

    async def generate(self, request: pb.GenerateRequest) -> GenerationStream:
        call = self._stub.Generate(request, metadata=self._metadata)
        started = time.monotonic()
        first = await first_message(call)
        if self._observer is not None:
            self._observer.generation_started(request.model, time.monotonic() - started)
        return GenerationStream(call, first, request.model, self._observer)
