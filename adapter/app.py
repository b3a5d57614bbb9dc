"""The adapter's FastAPI application: OpenAI REST in, engine gRPC out."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from hearth import __version__
from hearth.adapter.engine_client import EngineClient
from hearth.adapter.errors import install_error_handlers
from hearth.adapter.request_log import RequestLogMiddleware
from hearth.adapter.routes import chat, completions, health, models
from hearth.adapter.settings import AdapterSettings

# Browser pages served from this machine may call the API; others only when configured.
LOCAL_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$"


def create_app(settings: AdapterSettings | None = None) -> FastAPI:
    settings = settings or AdapterSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        app.state.engine = EngineClient(settings.engine_address)
        try:
            yield
        finally:
            await app.state.engine.close()

    app = FastAPI(title="Hearth", version=__version__, lifespan=lifespan)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_origin_regex=LOCAL_ORIGINS,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(RequestLogMiddleware)
    install_error_handlers(app)
    for module in (models, chat, completions, health):
        app.include_router(module.router)
    return app
