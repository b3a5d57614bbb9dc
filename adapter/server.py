"""Runs the adapter under uvicorn."""

import logging

import uvicorn

from hearth.adapter.app import create_app
from hearth.adapter.settings import AdapterSettings

log = logging.getLogger(__name__)


def uvicorn_config(settings: AdapterSettings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.server_host,
        port=settings.server_port,
        log_config=None,  # keep the process's own logging setup
        access_log=False,  # RequestLogMiddleware writes one line per request
        timeout_graceful_shutdown=10,
    )


def run_adapter(settings: AdapterSettings) -> int:
    log.info("OpenAI API on http://%s:%d/v1 (engine %s)", settings.server_host, settings.server_port, settings.engine_address)
    uvicorn.Server(uvicorn_config(settings)).run()
    return 0
