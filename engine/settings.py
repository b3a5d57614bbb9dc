"""Engine settings, read from LLM_* environment variables and command-line flags."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hearth.paths import default_config_file, default_models_dir
from hearth.settings_file import sources_with_config_file

DEFAULT_ENGINE_ADDRESS = "127.0.0.1:50051"


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        # Flags > LLM_* variables > the config file's "settings" object > defaults.
        return sources_with_config_file(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )

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
        description="Seconds a model stays loaded after its last request; 0 unloads at once.",
    )
    context_size: int = Field(
        default=8192,
        ge=256,
        le=1_048_576,
        description="Most context a model is served with, unless its config entry says otherwise.",
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
        description="Sequences one model decodes at once (slots); each has the model's full context.",
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
        description="Allow listening on a non-loopback address without an API key.",
    )
