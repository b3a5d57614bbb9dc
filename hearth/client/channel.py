"""The engine's gRPC channel: the one place a channel is made, with the
options every client wants, and the API key every call carries."""

import grpc

from hearth.auth import auth_metadata

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


def open_channel(address: str, *, asynchronous: bool) -> grpc.Channel | grpc.aio.Channel:
    """A channel to the engine at ``address`` (grpc.aio's when ``asynchronous``)."""
    if asynchronous:
        return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


def call_metadata(api_key: str | None) -> tuple[tuple[str, str], ...] | None:
    """Metadata for every call: the key when there is one (the engine refuses
    calls without it when it has one); health checks need none but get it too."""
    return auth_metadata(api_key) or None
