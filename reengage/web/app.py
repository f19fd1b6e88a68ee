"""The web apps: the public one (links in mail, the outcome form, the dashboard, the ingest
API and webhooks) and the operations one (``/healthz``, ``/metrics``), which is served on
its own address, loopback by default, and never beside the public routes."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from reengage.store import Store
from reengage.web import api, calls, dashboard, health, hooks, links
from reengage.web.config import WebConfig
from reengage.web.pages import problem


def create_app(
    store: Store, config: WebConfig | None = None, *, alive: Callable[[], bool] = lambda: True
) -> Starlette:
    """The public app over ``store``; without ``config`` the operations app instead."""
    if config is None:
        return ops_app(store, alive)
    routes: list[BaseRoute] = [
        *links.routes(store, config),
        *api.routes(store, config),
        *hooks.routes(store, config),
        *calls.routes(store, config),
        *dashboard.routes(store, config),
    ]
    return Starlette(routes=routes, exception_handlers={404: _not_found})


def ops_app(store: Store, alive: Callable[[], bool] = lambda: True) -> Starlette:
    """``/healthz`` and ``/metrics`` alone, for a loopback or private address."""
    return Starlette(routes=health.routes(store, alive), exception_handlers={404: _not_found})


async def _not_found(request: Request, exc: Exception) -> Response:
    return problem("Not found", "There is no page at this address.", 404)
