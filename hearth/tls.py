"""TLS on the engine's gRPC link: the server's certificate and key (with an
optional CA whose client certificates it requires), and what a client trusts
and presents. Files are read here, once, into gRPC credentials; a file that
cannot be read or is not PEM is a TlsSetupError naming it. Imports nothing of
Hearth's."""

from dataclasses import dataclass
from pathlib import Path

import grpc

PEM_MARK = b"-----BEGIN "


class TlsSetupError(Exception):
    """TLS settings that cannot be used: a certificate or key file unreadable or not PEM, or a missing part."""


def read_pem(path: Path, what: str) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise TlsSetupError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if PEM_MARK not in data:
        raise TlsSetupError(f"the {what} {path} is not a PEM file")
    return data


@dataclass(frozen=True)
class ServerTls:
    cert: Path
    key: Path
    # When set, a client must present a certificate this CA signed.
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        pair = (read_pem(self.key, "TLS key"), read_pem(self.cert, "TLS certificate"))
        if self.client_ca is None:
            return grpc.ssl_server_credentials([pair])
        roots = read_pem(self.client_ca, "client CA certificate")
        return grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=True)


@dataclass(frozen=True)
class ClientTls:
    # The CA that signed the engine's certificate (the system's roots when None).
    ca: Path | None = None
    # A client certificate, for an engine that requires one.
    cert: Path | None = None
    key: Path | None = None
    # The name the engine's certificate is checked against, when not the address's host.
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        roots = read_pem(self.ca, "engine CA certificate") if self.ca is not None else None
        if self.cert is not None and self.key is not None:
            return grpc.ssl_channel_credentials(
                root_certificates=roots,
                private_key=read_pem(self.key, "client TLS key"),
                certificate_chain=read_pem(self.cert, "client TLS certificate"),
            )
        return grpc.ssl_channel_credentials(root_certificates=roots)

    def channel_options(self) -> tuple[tuple[str, str], ...]:
        return (("grpc.ssl_target_name_override", self.server_name),) if self.server_name else ()
