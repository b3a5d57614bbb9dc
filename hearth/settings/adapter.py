"""Adapter settings, read from LLM_* environment variables and command-line flags."""

from pathlib import Path

from pydantic import Field

from hearth.paths import default_responses_db
from hearth.settings.engine import DEFAULT_ENGINE_ADDRESS
from hearth.settings.link import EngineLinkSettings


class AdapterSettings(EngineLinkSettings):
    server_host: str = Field(default="127.0.0.1", description="Address the REST server binds.")
    server_port: int = Field(default=11434, ge=1, le=65535, description="Port of the REST server.")
    engine_address: str = Field(default=DEFAULT_ENGINE_ADDRESS, description="Engine gRPC host:port.")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed besides localhost ones (JSON list in LLM_CORS_ORIGINS).",
    )
    health_timeout: float = Field(default=2.0, gt=0, le=60, description="Seconds /health waits for the engine.")
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="When set, every route but /health requires 'Authorization: Bearer <key>'; sent to the engine too.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header values accepted besides loopback ones (JSON list in LLM_ALLOWED_HOSTS; '*' for any).",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, le=1 << 30, description="Largest request body; larger ones get 413."
    )
    allow_remote: bool = Field(
        default=False,
        description="Allow listening on a non-loopback address without an API key.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds a client has to send a request's headers (from connecting, or from the previous answer).",
    )
    body_timeout: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds a client has to send a request's whole body; then 408."
    )
    keep_alive_timeout: float = Field(
        default=5.0, gt=0, le=600, description="Seconds an idle keep-alive connection stays open."
    )
    max_connections: int = Field(
        default=512, ge=8, le=65536, description="Open connections at most; requests beyond them get 503."
    )
    responses_db: Path = Field(
        default_factory=default_responses_db,
        description="SQLite file of stored Responses API responses (for previous_response_id, retrieve, delete).",
    )
    responses_max_count: int = Field(
        default=1000, ge=0, le=10_000_000, description="Stored responses kept at most (oldest go first); 0: none."
    )
    responses_max_age: float = Field(
        default=30 * 24 * 3600, gt=0, le=10 * 365 * 24 * 3600, description="Seconds a stored response is kept."
    )
    stream_ping_interval: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds between ping events of a streamed Anthropic answer while its prompt is read.",
    )
