"""uvicorn's HTTP/1.1 protocol with a deadline for each request's headers: a
client that connects and then sends its headers slowly (or not at all) is
disconnected once ``header_timeout`` seconds have passed, counted from the
connection or from the previous answer on it. uvicorn's own keep-alive timer
stops at the first byte, so it alone lets one byte a second hold a connection."""

import asyncio

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState


class DeadlineH11Protocol(H11Protocol):
    header_timeout = 10.0

    def __init__(self, config: Config, server_state: ServerState, app_state: dict, _loop=None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self, seconds: float | None = None) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(seconds or self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()
        elif self._header_timer is None and not self.transport.is_closing():
            # Back to waiting for headers (the rest of a body answered early has arrived).
            self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer(max(self.header_timeout, self.timeout_keep_alive))
        elif self.conn.their_state is h11.SEND_BODY:
            # Answered before its body was read (a refused Host or key): the body
            # must still end in time, or the connection closes.
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def protocol_with_header_timeout(seconds: float) -> type[DeadlineH11Protocol]:
    """The protocol class for uvicorn's ``http`` setting, with this deadline."""
    return type("HearthH11Protocol", (DeadlineH11Protocol,), {"header_timeout": seconds})
