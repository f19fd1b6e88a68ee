"""The HTTP side (Starlette): health and metrics now; tracking, unsubscribe and the ingest
API join it with the responses issue."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reengage import metrics
from reengage.errors import ReengageError
from reengage.logs import get_logger
from reengage.store import Store
from reengage.timeutil import utcnow

log = get_logger(__name__)


def create_app(store: Store, *, alive: Callable[[], bool] = lambda: True) -> Starlette:
    """The web app over ``store``; ``alive`` says whether the daemon's ticks still run."""

    async def healthz(request: Request) -> Response:
        checks: dict[str, str] = {}
        ok = True
        try:
            now = utcnow()
            depth = store.queue_depth(now)
            unknown = store.message_counts().get("unknown", 0)
            metrics.QUEUE_DEPTH.set(depth)
            metrics.UNKNOWN.set(unknown)
            checks["database"] = "ok"
            checks["queue_depth"] = str(depth)
            checks["unknown_sends"] = str(unknown)
        except ReengageError as exc:
            ok = False
            checks["database"] = f"failing: {exc}"
        if not alive():
            ok = False
            checks["scheduler"] = "stopped"
        else:
            checks["scheduler"] = "running"
        return JSONResponse({"ok": ok, **checks}, status_code=200 if ok else 503)

    async def prometheus(request: Request) -> Response:
        try:
            metrics.QUEUE_DEPTH.set(store.queue_depth(utcnow()))
        except ReengageError as exc:  # the scrape still answers; /healthz says what is wrong
            log.warning("metrics_queue_depth_failed", error=str(exc))
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", prometheus)])
