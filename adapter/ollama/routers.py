"""Every router of Ollama's native API, for the app to include."""

from hearth.adapter.ollama import (
    routes_embed,
    routes_generate,
    routes_manage,
    routes_models,
    routes_pull,
)

ROUTERS = [module.router for module in (routes_models, routes_generate, routes_embed, routes_pull, routes_manage)]
