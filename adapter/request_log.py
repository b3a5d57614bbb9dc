"""One INFO line per HTTP request, written when its response has ended."""

import logging
import time

log = logging.getLogger("hearth.adapter.requests")


class RequestLogMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        status = 0

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            log.info(
                "%s %s %s %.3fs",
                scope["method"],
                scope["path"],
                status or "disconnected",
                time.monotonic() - started,
            )
