"""Engine settings, read from LLM_* environment variables and command-line flags."""

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from hearth.paths import default_config_file, default_models_dir
from hearth.settings.link import EngineLinkSettings, OptionalFile
from hearth.tls import ServerTls

DEFAULT_ENGINE_ADDRESS = "127.0.0.1:50051"

# Sizes as people write them: decimal (MB, GB) and binary (MiB, GiB) units.
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_byte_size(value: object) -> object:
    """'8GiB', '512MB', '1.5 GB' or a plain number of bytes, as bytes; anything
    else is passed on for pydantic to refuse."""
    if not isinstance(value, str):
        return value
    match = _SIZE.match(value)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{value!r} is not a size: give bytes, or a number with B, KB, MB, GB, KiB, MiB or GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


ByteSize = Annotated[int, BeforeValidator(parse_byte_size)]


def _zero_or_usable_context(value: int) -> int:
    if 0 < value < 256:
        raise ValueError("must be 0 (the model's trained context) or greater than or equal to 256")
    return value


class EngineSettings(EngineLinkSettings):
    models_dir: Path = Field(
        default_factory=default_models_dir,
        description="Folder scanned for *.gguf files; each file becomes a model named after it.",
    )
    config_file: Path = Field(
        default_factory=default_config_file,
        description='JSON file declaring extra models: {"models": [{"id", "path", ...}]}.',
    )
    engine_address: str = Field(
        default=DEFAULT_ENGINE_ADDRESS,
        description="host:port the gRPC server binds.",
    )
    use_gpu: bool = Field(
        default=True,
        description="Offload all layers to the GPU when this llama.cpp build supports it.",
    )
    keep_alive: float = Field(
        default=300.0,
        ge=0,
        description=(
            "Seconds a model stays loaded after its last request; 0 unloads at once. "
            "A request's own keep-alive overrides it for its model."
        ),
    )
    memory_budget: ByteSize | None = Field(
        default=None,
        ge=1,
        description=(
            "Memory the loaded models may take together (bytes, or e.g. '8GiB', '512MB'); loading past it "
            "unloads the least recently used idle models. Default: 90% of the GPUs' memory when layers are "
            "offloaded to one, else 75% of RAM."
        ),
    )
    max_loaded_models: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="Most models loaded at once; loading one more unloads the least recently used idle one. 0: no limit.",
    )
    load_wait: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description=(
            "Seconds a load waits for busy models to finish when only they stand in the way of the memory "
            "budget, before failing with MODEL_BUSY."
        ),
    )
    context_size: Annotated[int, AfterValidator(_zero_or_usable_context)] = Field(
        default=0,
        ge=0,
        le=1_048_576,
        description=(
            "Most context a model is served with (its KV pool, shared by its slots), unless its config entry says "
            "otherwise. 0: the model's trained context, halved while it does not fit the memory budget."
        ),
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="CPU threads for llama.cpp; default: the machine's cores.",
    )
    batch_size: int = Field(default=512, ge=32, le=8192, description="Tokens evaluated per decode step.")
    parallel: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Sequences one model decodes at once (slots); they share the model's KV pool.",
    )
    kv_pool: Literal["shared", "per_slot"] = Field(
        default="shared",
        description=(
            "shared: a model's slots share one KV cache of its served context (memory set by the context; one "
            "request may use all of it; greedy output may differ in the last bits between a request alone and in a "
            "batch). per_slot: each slot has its own cache of the whole context (memory grows with the slots; "
            "greedy output does not depend on the batch)."
        ),
    )
    kv_cache_type: Literal["f16", "q8_0", "q4_0"] = Field(
        default="f16",
        description=(
            "Precision of the KV cache of models whose config entry sets none: q8_0 about halves it and q4_0 "
            "quarters it (the model's attention heads must be a multiple of 32 values; quantized values need "
            "flash attention)."
        ),
    )
    flash_attention: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="llama.cpp's flash attention: auto (where the backend has it), on or off.",
    )
    max_queue: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="Requests that may wait for one model before new ones are refused.",
    )
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="When set, every gRPC method but health requires metadata 'authorization: Bearer <key>'.",
    )
    allow_remote: bool = Field(
        default=False,
        description="Accepted for the adapter's sake; a non-loopback engine always needs an API key.",
    )
    tls_cert: OptionalFile = Field(
        default=None, description="PEM certificate the gRPC port serves TLS with (with tls_key)."
    )
    tls_key: OptionalFile = Field(default=None, description="PEM key of tls_cert.", repr=False)
    tls_client_ca: OptionalFile = Field(
        default=None, description="PEM CA file: when set, only clients with a certificate it signed may connect."
    )
    insecure_remote: bool = Field(
        default=False,
        description="Allow a non-loopback engine address without TLS (the API key is still required).",
    )
    hf_cache_dir: Path | None = Field(
        default=None,
        description="Download cache for pulls from Hugging Face; default: huggingface_hub's (HF_HOME, HF_HUB_CACHE).",
    )
    pull_chunk_bytes: int = Field(
        default=512 * 1024,
        ge=4096,
        le=64 * 1024 * 1024,
        description="Bytes a pull reads between progress reports; a cancelled pull stops at the next chunk.",
    )

    @model_validator(mode="after")
    def _server_tls_pair(self):
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key")
        return self

    def server_tls(self) -> ServerTls | None:
        """The gRPC port's TLS, or None for plaintext."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        return ServerTls(cert=self.tls_cert, key=self.tls_key, client_ca=self.tls_client_ca)

    @property
    def kv_streams(self) -> int:
        """Context-sized KV caches a loaded model holds: one shared, or one per slot."""
        return 1 if self.kv_pool == "shared" else self.parallel
