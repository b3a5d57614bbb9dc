"""The gRPC servicer: protobuf in, domain call, protobuf out. Nothing else."""

from hearth.engine.core import EngineCore
from hearth.engine.rpc import convert, model_settings
from hearth.engine.rpc.convert import required_model
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc


class EngineServicer(engine_pb2_grpc.EngineServicer):
    def __init__(self, core: EngineCore):
        self._core = core

    async def ListModels(self, request: pb.ListModelsRequest, context) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=[convert.model_to_proto(m) for m in await self._core.list_models()])

    async def GetModel(self, request: pb.GetModelRequest, context) -> pb.GetModelResponse:
        return pb.GetModelResponse(model=convert.model_to_proto(await self._core.get_model(request.id)))

    async def LoadModel(self, request: pb.LoadModelRequest, context) -> pb.LoadModelResponse:
        keep_alive = request.keep_alive_seconds if request.HasField("keep_alive_seconds") else None
        return pb.LoadModelResponse(model=convert.model_to_proto(await self._core.load_model(request.id, keep_alive)))

    async def UnloadModel(self, request: pb.UnloadModelRequest, context) -> pb.UnloadModelResponse:
        return pb.UnloadModelResponse(model=convert.model_to_proto(await self._core.unload_model(request.id)))

    async def Generate(self, request: pb.GenerateRequest, context):
        params = convert.generate_params_from_proto(request)
        async for event in self._core.generate(params):
            yield convert.generation_event_to_proto(event)

    async def Embed(self, request: pb.EmbedRequest, context) -> pb.EmbedResponse:
        return convert.embed_result_to_proto(await self._core.embed(convert.embed_params_from_proto(request)))

    async def Tokenize(self, request: pb.TokenizeRequest, context) -> pb.TokenizeResponse:
        result = await self._core.tokenize(convert.tokenize_params_from_proto(request))
        return convert.tokenize_result_to_proto(result)

    async def Detokenize(self, request: pb.DetokenizeRequest, context) -> pb.DetokenizeResponse:
        model = convert.required_model(request.model)
        return pb.DetokenizeResponse(text=await self._core.detokenize(model, list(request.tokens)))

    async def GetStatus(self, request: pb.GetStatusRequest, context) -> pb.GetStatusResponse:
        return convert.status_to_proto(self._core.status())

    async def WatchEvents(self, request: pb.WatchEventsRequest, context):
        async for timestamp, event, replayed in self._core.events.watch():
            yield convert.event_to_proto(timestamp, event, replayed)

    async def WatchLogs(self, request: pb.WatchLogsRequest, context):
        async for timestamp, line, replayed in self._core.logs.watch():
            yield convert.log_to_proto(timestamp, line, replayed)

    async def PullModel(self, request: pb.PullModelRequest, context):
        async for update in self._core.pull_model(request.reference, request.revision):
            yield convert.pull_update_to_proto(update)

    async def DeleteModel(self, request: pb.DeleteModelRequest, context) -> pb.DeleteModelResponse:
        await self._core.delete_model(request.id)
        return pb.DeleteModelResponse()

    async def CopyModel(self, request: pb.CopyModelRequest, context) -> pb.CopyModelResponse:
        view = await self._core.copy_model(request.source, request.destination)
        return pb.CopyModelResponse(model=convert.model_to_proto(view))

    async def UpdateModelSettings(
        self, request: pb.UpdateModelSettingsRequest, context
    ) -> pb.UpdateModelSettingsResponse:
        settings = model_settings.settings_from_proto(request.settings)
        view = await self._core.update_model_settings(required_model(request.model), settings)
        return pb.UpdateModelSettingsResponse(model=convert.model_to_proto(view))
