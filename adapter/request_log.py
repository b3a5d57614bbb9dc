"""Watches every HTTP request: one INFO line when its response has ended, and
its count and latency in the metrics (refusals by the guards included)."""

import logging
import time

from hearth.adapter.metrics import Metrics, record_http_request

log = logging.getLogger("hearth.adapter.requests")


class RequestLogMiddleware:
    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

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

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.monotonic() - started
            record_http_request(self.metrics, scope, status, seconds)
            log.info("%s %s %s %.3fs", scope["method"], scope["path"], status or "disconnected", seconds)
