"""`hearth models` (`hearth list`): the engine's view of the models, or the folder's when no engine runs."""

import json
import logging

from hearth.client import EngineCallError, EngineClient, model_state_name
from hearth.engine.v1 import engine_pb2 as pb
from hearth.formatting import human_bytes, human_count
from hearth.settings.engine import EngineSettings

log = logging.getLogger(__name__)


def _from_engine(settings: EngineSettings) -> list[pb.Model] | None:
    address = settings.engine_address
    with EngineClient(address, api_key=settings.api_key, tls=settings.client_tls()) as client:
        try:
            return client.list_models(timeout=5)
        except EngineCallError as exc:
            if exc.not_listening:
                return None
            if exc.code == "UNAUTHENTICATED":
                log.warning("the engine at %s wants an API key (LLM_API_KEY); listing the folder instead", address)
                return None
            raise


def models_from_folder(settings: EngineSettings) -> list[pb.Model]:
    """The models folder's models as the engine would list them (no engine needed)."""
    from hearth.engine.core import model_registry
    from hearth.engine.rpc.convert import model_to_proto
    from hearth.engine.service.views import describe

    registry = model_registry(settings, gpu_offload=False)
    return [model_to_proto(describe(record)) for record in registry.scan().values()]


def print_models(settings: EngineSettings, *, as_json: bool, ids_only: bool = False) -> int:
    models = _from_engine(settings)
    source = f"engine at {settings.engine_address}"
    if models is None:
        models = models_from_folder(settings)
        source = f"{settings.models_dir} (engine not running)"
    if ids_only:
        print("\n".join(m.id for m in models))
        return 0
    if as_json:
        from google.protobuf.json_format import MessageToDict

        print(json.dumps([MessageToDict(m, preserving_proto_field_name=True) for m in models], indent=2))
        return 0
    print(f"Models from {source}:")
    if not models:
        print("  none; put *.gguf files in the models folder or run `hearth pull-default`")
        return 0
    rows = [("ID", "STATE", "ARCH", "PARAMS", "QUANT", "SIZE", "CONTEXT", "TEMPLATE", "REASONING")]
    for m in models:
        state = model_state_name(m.state)
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
                m.reasoning_format if m.reasoning_format not in ("", "none") else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
