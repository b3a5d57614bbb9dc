"""Every router of the Responses API, for the app to include."""

from hearth.adapter.responses import routes

ROUTERS = [routes.router]
