"""The gRPC servicer: protobuf in, domain call, protobuf out. Nothing else."""

from hearth.engine import convert
from hearth.engine.core import EngineCore
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
        return pb.LoadModelResponse(model=convert.model_to_proto(await self._core.load_model(request.id)))

    async def UnloadModel(self, request: pb.UnloadModelRequest, context) -> pb.UnloadModelResponse:
        return pb.UnloadModelResponse(model=convert.model_to_proto(await self._core.unload_model(request.id)))

    async def Generate(self, request: pb.GenerateRequest, context):
        params = convert.generate_params_from_proto(request)
        async for event in self._core.generate(params):
            yield convert.generation_event_to_proto(event)

    async def GetStatus(self, request: pb.GetStatusRequest, context) -> pb.GetStatusResponse:
        return convert.status_to_proto(self._core.status())

    async def WatchEvents(self, request: pb.WatchEventsRequest, context):
        async for timestamp, event in self._core.events.watch():
            yield convert.event_to_proto(timestamp, event)
