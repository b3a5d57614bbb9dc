"""The adapter's FastAPI application: each API family's REST in, engine gRPC out."""

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from hearth import __version__
from hearth.adapter.anthropic.routers import ROUTERS as ANTHROPIC_ROUTERS
from hearth.adapter.common.errors import install_error_handlers
from hearth.adapter.disconnect import CancelOnDisconnect
from hearth.adapter.metrics import Metrics
from hearth.adapter.ollama.routers import ROUTERS as OLLAMA_ROUTERS
from hearth.adapter.openai.routers import ROUTERS as OPENAI_ROUTERS
from hearth.adapter.openapi import (
    ANTHROPIC,
    OLLAMA,
    OPENAI,
    SERVER,
    TAGS,
    AnthropicErrorResponse,
    OllamaErrorResponse,
    OpenAIErrorResponse,
    error_responses,
)
from hearth.adapter.request_log import RequestLogMiddleware
from hearth.adapter.responses.routers import ROUTERS as RESPONSES_ROUTERS
from hearth.adapter.responses.store import ResponseStore
from hearth.adapter.routes import health, metrics
from hearth.adapter.security import (
    LOCAL_ORIGINS,
    ApiKeyGuard,
    BodySizeLimit,
    HostOriginGuard,
    HostPolicy,
)
from hearth.auth import normalized_key
from hearth.client import AsyncEngineClient
from hearth.settings.adapter import AdapterSettings


def create_app(settings: AdapterSettings | None = None) -> FastAPI:
    settings = settings or AdapterSettings()
    api_key = normalized_key(settings.api_key)
    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        app.state.metrics = app_metrics
        app.state.engine = AsyncEngineClient(
            settings.engine_address, api_key=api_key, observer=app_metrics, tls=settings.client_tls()
        )
        app.state.responses = await asyncio.to_thread(
            ResponseStore,
            settings.responses_db,
            max_count=settings.responses_max_count,
            max_age_s=settings.responses_max_age,
        )
        try:
            yield
        finally:
            await app.state.engine.close()
            app.state.responses.close()

    app = FastAPI(
        title="Hearth",
        version=__version__,
        description="A local LLM server: the OpenAI, Anthropic and Ollama APIs over one engine.",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    # Starlette runs the middleware added last first. In request order: the log
    # and the metrics see everything; then Host and Origin, CORS (preflights end
    # there), the API key, the body size, cancelling the work of clients that
    # leave before their answer starts, and the routes.
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout)
    if api_key:
        app.add_middleware(ApiKeyGuard, api_key=api_key)
    app.add_middleware(
        CORSMiddleware,
        # "*" is opt-in (LLM_CORS_ORIGINS=["*"]) and never comes with credentials.
        allow_origins=settings.cors_origins,
        allow_origin_regex=LOCAL_ORIGINS,
        # DELETE: Ollama's /api/delete.
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "x-api-key", "anthropic-version", "anthropic-beta"],
        allow_credentials=False,
    )
    app.add_middleware(
        HostOriginGuard,
        policy=HostPolicy(settings.allowed_hosts, settings.cors_origins, bind_host=settings.server_host),
    )
    app.add_middleware(RequestLogMiddleware, metrics=app_metrics)
    install_error_handlers(app)
    # Every route is in /openapi.json (and so /docs), tagged with its family and
    # documented with its family's error body. (The schemathesis test leaves out
    # the routes that change the models folder or only answer 501, itself.)
    families = (
        (SERVER, OpenAIErrorResponse, (health.router, metrics.router)),
        # The API families side by side; Ollama's native API (/api/*) on the port its clients expect.
        (OPENAI, OpenAIErrorResponse, (*OPENAI_ROUTERS, *RESPONSES_ROUTERS)),
        (ANTHROPIC, AnthropicErrorResponse, ANTHROPIC_ROUTERS),
        (OLLAMA, OllamaErrorResponse, OLLAMA_ROUTERS),
    )
    for tag, error_body, routers in families:
        for router in routers:
            app.include_router(router, tags=[tag], responses=error_responses(error_body))
    return app
