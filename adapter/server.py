"""Runs the adapter under uvicorn."""

import logging

import uvicorn

from hearth.adapter.app import create_app
from hearth.adapter.http_protocol import protocol_with_header_timeout
from hearth.auth import UnsafeBind, check_bind
from hearth.settings.adapter import AdapterSettings
from hearth.tls import TlsSetupError

log = logging.getLogger(__name__)


def uvicorn_config(settings: AdapterSettings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.server_host,
        port=settings.server_port,
        log_config=None,  # keep the process's own logging setup
        access_log=False,  # RequestLogMiddleware writes one line per request
        timeout_graceful_shutdown=10,
        # Slow or idle clients cannot hold connections: headers within
        # header_timeout, idle keep-alive for keep_alive_timeout, the body
        # within body_timeout (BodySizeLimit), and max_connections at most.
        http=protocol_with_header_timeout(settings.header_timeout),
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=settings.max_connections,
    )


def check_adapter_bind(settings: AdapterSettings) -> None:
    """Raises UnsafeBind for a non-loopback address without a key or --allow-remote."""
    check_bind(
        settings.server_host, api_key=settings.api_key, allow_remote=settings.allow_remote, what="the OpenAI API"
    )
    if settings.server_host.strip("[]") in ("", "0.0.0.0", "::") and not settings.allowed_hosts:
        log.warning(
            "listening on all interfaces, but only requests for localhost are answered: "
            "list the names clients use for this machine in LLM_ALLOWED_HOSTS"
        )


def check_engine_link(settings: AdapterSettings) -> None:
    """Raises TlsSetupError when the TLS files for the link to the engine cannot be used, before anything starts."""
    tls = settings.client_tls()
    if tls is not None:
        tls.credentials()


def run_adapter(settings: AdapterSettings) -> int:
    try:
        check_adapter_bind(settings)
        check_engine_link(settings)
    except (UnsafeBind, TlsSetupError) as exc:
        log.error("%s", exc)
        return 2
    log.info(
        "OpenAI API on http://%s:%d/v1 (engine %s)", settings.server_host, settings.server_port, settings.engine_address
    )
    uvicorn.Server(uvicorn_config(settings)).run()
    return 0
