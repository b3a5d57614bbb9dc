"""Every router of the Anthropic Messages API, for the app to include."""

from hearth.adapter.anthropic import routes

ROUTERS = [routes.router]
