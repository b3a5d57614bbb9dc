"""`hearth ps`, `hearth stop MODEL` and `hearth show MODEL`: what the running
engine has loaded, unloading one model, and one model's details (from the
engine, or from the models folder when no engine runs)."""

import json
import sys

from google.protobuf.json_format import MessageToDict

from hearth.client import EngineCallError, EngineClient, model_state_name
from hearth.engine.v1 import engine_pb2 as pb
from hearth.formatting import human_bytes, human_count, human_duration
from hearth.settings.engine import EngineSettings

EXIT_FAILED = 1
_BACKENDS = {pb.BACKEND_CPU: "CPU", pb.BACKEND_METAL: "GPU (Metal)", pb.BACKEND_CUDA: "GPU (CUDA)"}
_BACKENDS |= {pb.BACKEND_VULKAN: "GPU (Vulkan)", pb.BACKEND_OTHER_GPU: "GPU"}


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _no_engine(settings: EngineSettings) -> int:
    return _fail(f"no engine answers at {settings.engine_address}; start one with `hearth serve`")


def _client(settings: EngineSettings) -> EngineClient:
    return EngineClient(settings.engine_address, api_key=settings.api_key, tls=settings.client_tls())


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _until(loaded: pb.LoadedModel) -> str:
    if loaded.expires_in_seconds < 0:
        return "until unloaded"
    return f"{human_duration(loaded.expires_in_seconds)} from now"


def print_running(settings: EngineSettings, *, as_json: bool) -> int:
    with _client(settings) as client:
        try:
            status = client.status(timeout=10)
        except EngineCallError as exc:
            return _no_engine(settings) if exc.not_listening else _fail(exc.message)
    if as_json:
        loaded = [MessageToDict(m, preserving_proto_field_name=True) for m in status.loaded_models]
        print(json.dumps(loaded, indent=2))
        return 0
    processor = _BACKENDS.get(status.backend, "CPU") if status.gpu_offload else "CPU"
    rows = [("NAME", "SIZE", "PROCESSOR", "CONTEXT", "SLOTS", "ACTIVE", "QUEUED", "UNTIL")]
    for loaded in status.loaded_models:
        rows.append(
            (
                loaded.id,
                human_bytes(loaded.memory_bytes),
                processor,
                str(loaded.kv_cells) if loaded.kv_cells else "-",
                f"{loaded.busy_slots}/{loaded.slots} busy",
                str(loaded.active_requests),
                str(loaded.queued_requests),
                _until(loaded),
            )
        )
    _table(rows)
    return 0


def stop_model(settings: EngineSettings, model_id: str) -> int:
    with _client(settings) as client:
        try:
            loaded = {m.id for m in client.status(timeout=10).loaded_models}
            if model_id not in loaded:
                client.get_model(model_id, timeout=10)  # a model that does not exist is an error
                print(f"{model_id} was not loaded", file=sys.stderr)
                return 0
            client.unload_model(model_id, timeout=120)
        except EngineCallError as exc:
            return _no_engine(settings) if exc.not_listening else _fail(exc.message)
    return 0


def find_model(settings: EngineSettings, model_id: str) -> pb.Model | None:
    """The engine's view of the model, or the folder's when no engine answers; None: no such model."""
    with _client(settings) as client:
        try:
            return client.get_model(model_id, timeout=10)
        except EngineCallError as exc:
            if exc.code == "NOT_FOUND":
                return None
            if not exc.not_listening:
                raise
    from hearth.cli.listing import models_from_folder

    return next((m for m in models_from_folder(settings) if m.id == model_id), None)


def model_or_failure(settings: EngineSettings, model_id: str) -> pb.Model | int:
    """The model (see find_model), or the exit status after saying why there is none."""
    try:
        model = find_model(settings, model_id)
    except EngineCallError as exc:
        return _fail(exc.message)
    if model is None:
        return _fail(f"The model '{model_id}' does not exist; `hearth list` shows the models")
    return model


def show_model(settings: EngineSettings, model_id: str, *, as_json: bool) -> int:
    model = model_or_failure(settings, model_id)
    if isinstance(model, int):
        return model
    if as_json:
        print(json.dumps(MessageToDict(model, preserving_proto_field_name=True), indent=2))
        return 0
    context = str(model.trained_context_length or "-")
    if model.context_window and model.context_window != model.trained_context_length:
        context += f" (served with {model.context_window})"
    details = [
        ("state", model_state_name(model.state) + (f" ({model.state_reason})" if model.state_reason else "")),
        ("architecture", model.architecture or "-"),
        ("parameters", human_count(model.parameter_count) if model.parameter_count else "-"),
        ("quantization", model.quantization or "-"),
        ("context length", context),
        ("max output", str(model.max_output_tokens or "-")),
        ("size", human_bytes(model.file_size_bytes)),
        ("path", model.path),
        ("chat template", model.chat_template_source or "-"),
        ("reasoning", model.reasoning_format if model.reasoning_format not in ("", "none") else "-"),
    ]
    print("  Model")
    for name, value in details:
        print(f"    {name:<16}{value}")
    print("\n  Capabilities")
    for capability in model.capabilities:
        print(f"    {pb.Capability.Name(capability).removeprefix('CAPABILITY_').lower()}")
    load = _load_settings(model.settings)
    if load:
        print("\n  Load settings (from its config entry)")
        for name, value in load:
            print(f"    {name:<20}{value}")
    if model.estimated_memory_bytes:
        print(f"\n  Estimated memory once loaded: {human_bytes(model.estimated_memory_bytes)}")
    if model.parameters:
        print("\n  Parameters (for requests that set none)")
        for name, value in sorted(model.parameters.items()):
            print(f"    {name:<20}{value}")
    if model.system:
        print("\n  System")
        for line in model.system.splitlines():
            print(f"    {line}")
    return 0


def _load_settings(settings: pb.ModelSettings) -> list[tuple[str, str]]:
    """The load settings the model's entry sets, as `show` writes them."""
    shown = []
    if settings.HasField("context_window"):
        shown.append(("context", str(settings.context_window)))
    if settings.HasField("gpu_layers"):
        shown.append(("gpu layers", "all" if settings.gpu_layers < 0 else str(settings.gpu_layers)))
    if settings.HasField("parallel"):
        shown.append(("parallel slots", str(settings.parallel)))
    if settings.kv_cache_type:
        shown.append(("kv cache", settings.kv_cache_type))
    if settings.HasField("keep_alive_seconds"):
        seconds = settings.keep_alive_seconds
        shown.append(("keep alive", "until unloaded" if seconds < 0 else f"{seconds:g}s"))
    return shown
