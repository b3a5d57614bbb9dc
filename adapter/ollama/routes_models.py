"""GET /api/version, GET /api/tags, GET /api/ps, POST /api/show"""

import hashlib
import json
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request

from hearth.adapter.ollama.answers import rfc3339
from hearth.adapter.ollama.lookup import resolve_model
from hearth.adapter.ollama.names import listed_name, parameter_size
from hearth.adapter.ollama.protocol import ShowRequest
from hearth.engine.v1 import engine_pb2 as pb

router = APIRouter()

# The Ollama API level Hearth answers like. Clients gate features on it
# (tools, structured outputs, /api/embed arrived by 0.3-0.5); 0.12.0 has every
# endpoint and field implemented here.
OLLAMA_API_VERSION = "0.12.0"

# Ollama's expires_at for a model kept until unloaded: now plus Go's largest
# duration (about 292 years).
_FOREVER = timedelta(microseconds=(2**63 - 1) // 1000)

_CAPABILITIES = {
    pb.CAPABILITY_CHAT: "completion",
    pb.CAPABILITY_COMPLETION: "completion",
    pb.CAPABILITY_TOOLS: "tools",
    pb.CAPABILITY_EMBEDDINGS: "embedding",
    pb.CAPABILITY_REASONING: "thinking",
}


def digest(model: pb.Model) -> str:
    """A stable identity for the listing (Ollama lists its blob's sha256).
    Hashing a multi-gigabyte file on every listing is too slow, so this hashes
    what identifies the file instead: it is not the file's sha256."""
    identity = f"{model.id}\0{model.path}\0{model.file_size_bytes}\0{model.modified_unix_seconds}"
    return hashlib.sha256(identity.encode()).hexdigest()


def modified_at(model: pb.Model) -> str:
    return rfc3339(datetime.fromtimestamp(model.modified_unix_seconds, UTC))


def details(model: pb.Model) -> dict:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": model.architecture,
        "families": [model.architecture] if model.architecture else [],
        "parameter_size": parameter_size(model.parameter_count),
        "quantization_level": model.quantization,
    }


def capabilities(model: pb.Model) -> list[str]:
    named = (_CAPABILITIES.get(c) for c in model.capabilities)
    return list(dict.fromkeys(name for name in named if name))


def expires_at(loaded: pb.LoadedModel, default_keep_alive: float) -> str:
    now = datetime.now(UTC)
    if loaded.expires_in_seconds < 0:
        return rfc3339(now + _FOREVER)
    seconds = loaded.expires_in_seconds
    if seconds == 0 and loaded.active_requests == 0:
        # An engine that does not report it: the default keep-alive from last use.
        seconds = max(default_keep_alive - loaded.idle_seconds, 0.0)
    return rfc3339(now + timedelta(seconds=min(seconds, _FOREVER.total_seconds())))


@router.get("/api/version")
async def version() -> dict:
    return {"version": OLLAMA_API_VERSION}


@router.get("/api/tags")
async def tags(request: Request) -> dict:
    models = await request.app.state.engine.list_models()
    return {
        "models": [
            {
                "name": listed_name(model.id),
                "model": listed_name(model.id),
                "modified_at": modified_at(model),
                "size": model.file_size_bytes,
                "digest": digest(model),
                "details": details(model),
            }
            # Files that cannot be served are not offered; `hearth models` shows them.
            for model in models
            if model.state != pb.MODEL_STATE_INVALID
        ]
    }


@router.get("/api/ps")
async def ps(request: Request) -> dict:
    engine = request.app.state.engine
    status = await engine.status(timeout=30)
    models = {model.id: model for model in await engine.list_models()}
    running = []
    for loaded in status.loaded_models:
        model = models.get(loaded.id)
        if model is None:
            continue
        running.append(
            {
                "name": listed_name(model.id),
                "model": listed_name(model.id),
                "size": loaded.memory_bytes,
                # Memory on the GPU: all of it when layers are offloaded, none on CPU.
                "size_vram": loaded.memory_bytes if status.gpu_offload else 0,
                "digest": digest(model),
                "details": details(model),
                "expires_at": expires_at(loaded, status.keep_alive_seconds),
                "context_length": model.context_window,
            }
        )
    return {"models": running}


@router.post("/api/show")
async def show(body: ShowRequest, request: Request) -> dict:
    model = await resolve_model(request.app.state.engine, body.model)
    architecture = model.architecture or "unknown"
    model_info = {
        "general.architecture": architecture,
        "general.parameter_count": model.parameter_count,
        f"{architecture}.context_length": model.trained_context_length,
        "general.file_type": model.quantization,
        # What Hearth adds: the context it serves and where the chat template comes from.
        "hearth.context_window": model.context_window,
        "hearth.max_output_tokens": model.max_output_tokens,
        "hearth.chat_template_source": model.chat_template_source,
    }
    if model.display_name:
        model_info["general.name"] = model.display_name
    lines = [f"num_ctx {model.context_window}", *_parameter_lines(model)]
    modelfile = [f"# Served by Hearth from {model.path}", f"FROM {model.path}"]
    modelfile += [f"PARAMETER {line}" for line in lines]
    if model.system:
        modelfile.append(f"SYSTEM {json.dumps(model.system)}")
    shown = {
        "license": "",
        "modelfile": "\n".join(modelfile) + "\n",
        "parameters": "\n".join(lines),
        # Hearth renders chats with Jinja templates (the file's, the config
        # file's or a built-in one), not Ollama's Go templates.
        "template": "",
        "details": details(model),
        "model_info": model_info,
        "capabilities": capabilities(model),
        "modified_at": modified_at(model),
    }
    if model.system:
        shown["system"] = model.system
    return shown


# The engine's names for what Ollama's Modelfile PARAMETER calls otherwise.
_OLLAMA_NAMES = {"max_tokens": "num_predict"}


def _parameter_lines(model) -> list[str]:
    """The model's defaults as Ollama's show lists them: "temperature 0.2", one "stop" line per string."""
    lines = []
    for name, value in sorted(model.parameters.items()):
        if name == "stop":
            lines += [f"stop {json.dumps(each)}" for each in json.loads(value)]
        else:
            lines.append(f"{_OLLAMA_NAMES.get(name, name)} {value}")
    return lines
