"""The engine's gRPC channel: the one place a channel is made, with the
options every client wants, TLS when asked for, and the API key every call carries."""

import logging

import grpc

from hearth.auth import address_host, auth_metadata, is_loopback_host
from hearth.tls import ClientTls

log = logging.getLogger(__name__)

# A prompt of a few MB is fine; beyond that is not a chat.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = (
    # After an engine restart, reconnect within a second instead of gRPC's
    # default backoff of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)


def open_channel(address: str, *, asynchronous: bool, tls: ClientTls | None = None) -> grpc.Channel | grpc.aio.Channel:
    """A channel to the engine at ``address`` (grpc.aio's when ``asynchronous``), over
    TLS when ``tls`` is given. Raises hearth.tls.TlsSetupError for unusable files."""
    aio = grpc.aio if asynchronous else grpc
    if tls is None:
        if not is_loopback_host(address_host(address)):
            log.warning(
                "the link to the engine at %s is not encrypted: set LLM_ENGINE_TLS_CA (or LLM_ENGINE_TLS)", address
            )
        return aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    return aio.secure_channel(address, tls.credentials(), options=CHANNEL_OPTIONS + tls.channel_options())


def call_metadata(api_key: str | None) -> tuple[tuple[str, str], ...] | None:
    """Metadata for every call: the key when there is one (the engine refuses
    calls without it when it has one); health checks need none but get it too."""
    return auth_metadata(api_key) or None
