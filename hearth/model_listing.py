"""`hearth models`: the engine's view of the models, or the folder's when no engine runs."""

import json
import logging

import grpc

from hearth.engine.auth import auth_metadata
from hearth.engine.settings import EngineSettings
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.formatting import human_bytes, human_count

log = logging.getLogger(__name__)


def _from_engine(address: str, api_key: str | None = None) -> list[pb.Model] | None:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = engine_pb2_grpc.EngineStub(channel).ListModels(
                pb.ListModelsRequest(), timeout=5, metadata=auth_metadata(api_key) or None
            )
            return list(reply.models)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return None
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                log.warning("the engine at %s wants an API key (LLM_API_KEY); listing the folder instead", address)
                return None
            raise


def _from_folder(settings: EngineSettings) -> list[pb.Model]:
    from hearth.engine.convert import model_to_proto
    from hearth.engine.core import describe
    from hearth.engine.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir, settings.config_file, settings.context_size)
    return [model_to_proto(describe(record)) for record in registry.scan().values()]


def print_models(settings: EngineSettings, *, as_json: bool) -> int:
    models = _from_engine(settings.engine_address, settings.api_key)
    source = f"engine at {settings.engine_address}"
    if models is None:
        models = _from_folder(settings)
        source = f"{settings.models_dir} (engine not running)"
    if as_json:
        from google.protobuf.json_format import MessageToDict

        print(json.dumps([MessageToDict(m, preserving_proto_field_name=True) for m in models], indent=2))
        return 0
    print(f"Models from {source}:")
    if not models:
        print("  none; put *.gguf files in the models folder or run `hearth pull-default`")
        return 0
    rows = [("ID", "STATE", "ARCH", "PARAMS", "QUANT", "SIZE", "CONTEXT", "TEMPLATE")]
    for m in models:
        state = pb.ModelState.Name(m.state).removeprefix("MODEL_STATE_").lower()
        if m.state_reason:
            state += f" ({m.state_reason[:60]})"
        rows.append(
            (
                m.id,
                state,
                m.architecture or "-",
                human_count(m.parameter_count) if m.parameter_count else "-",
                m.quantization or "-",
                human_bytes(m.file_size_bytes),
                str(m.context_window),
                m.chat_template_source or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
