"""How a client reaches the engine: TLS on the gRPC link (the adapter, the CLI
and the desktop window read the same LLM_ENGINE_TLS_* settings)."""

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from hearth.settings.file import HearthSettings
from hearth.tls import ClientTls


def _blank_is_unset(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# A file setting; an empty LLM_* variable leaves it unset (not the current folder).
OptionalFile = Annotated[Path | None, BeforeValidator(_blank_is_unset)]


class EngineLinkSettings(HearthSettings):
    engine_tls: bool = Field(
        default=False,
        description="Reach the engine over TLS, trusting the system's CAs (setting engine_tls_ca implies it).",
    )
    engine_tls_ca: OptionalFile = Field(
        default=None, description="PEM file of the CA that signed the engine's certificate (or that certificate)."
    )
    engine_tls_cert: OptionalFile = Field(
        default=None, description="PEM client certificate, for an engine that requires one (with engine_tls_key)."
    )
    engine_tls_key: OptionalFile = Field(default=None, description="PEM key of engine_tls_cert.")
    engine_tls_server_name: str | None = Field(
        default=None, description="Name the engine's certificate is checked against, when not the address's host."
    )

    @model_validator(mode="after")
    def _client_pair(self):
        if (self.engine_tls_cert is None) != (self.engine_tls_key is None):
            raise ValueError("engine_tls_cert and engine_tls_key go together")
        return self

    def client_tls(self) -> ClientTls | None:
        """The link's TLS, or None for plaintext."""
        if not (self.engine_tls or self.engine_tls_ca or self.engine_tls_cert):
            return None
        return ClientTls(
            ca=self.engine_tls_ca,
            cert=self.engine_tls_cert,
            key=self.engine_tls_key,
            server_name=self.engine_tls_server_name,
        )
