"""Health and metrics: ``/healthz`` for load balancers and supervisors, ``/metrics`` for
Prometheus. Served only by the operations app (``REENGAGE_OPS_HOST``/``_PORT``), never on
the public address; ``/healthz`` says what fails, and the log says why."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reengage import metrics
from reengage.errors import ReengageError
from reengage.logs import get_logger
from reengage.store import Store
from reengage.timeutil import utcnow

log = get_logger(__name__)


def routes(store: Store, alive: Callable[[], bool]) -> list[Route]:
    """``/healthz`` (200 or 503 with what is failing) and ``/metrics``."""

    def checks() -> dict[str, str]:
        now = utcnow()
        depth = store.sending.queue_depth(now)
        counts = store.sending.message_counts()
        unknown, failed = counts.get("unknown", 0), counts.get("failed", 0)
        metrics.QUEUE_DEPTH.set(depth)
        metrics.UNKNOWN.set(unknown)
        metrics.FAILED.set(failed)
        return {
            "database": "ok",
            "queue_depth": str(depth),
            "unknown_sends": str(unknown),
            "failed_sends": str(failed),
        }

    async def healthz(request: Request) -> Response:
        """200 while the service works; "degraded" (still 200: restarting would not help)
        while mails wait for a person (``reengage sends list``); 503 when it cannot work."""
        ok = True
        try:
            found = await run_in_threadpool(checks)
        except ReengageError as exc:  # the reason (hosts, users, SQL) goes to the log only
            log.error("health_check_failed", error=str(exc))
            ok = False
            found = {"database": "failing: see the log (health_check_failed)"}
        if not alive():
            ok = False
            found["scheduler"] = "stopped"
        else:
            found["scheduler"] = "running"
        waiting = found.get("unknown_sends", "0") != "0" or found.get("failed_sends", "0") != "0"
        unmarked = int(metrics.REGISTRY.get_sample_value(metrics.UNMARKED_SAMPLE) or 0)
        if unmarked:  # recorded, not lost; but the mailbox fills until a person fixes it
            found["mailbox"] = (
                f"{unmarked} mail(s) recorded but not moved, flagged or deleted: see the log "
                "(mailbox_marking_failed) and reengage doctor"
            )
        status = "failing" if not ok else "degraded" if waiting or unmarked else "ok"
        if waiting:
            found["attention"] = "mails wait for a person: reengage sends list"
        return JSONResponse(
            {"ok": ok and not waiting and not unmarked, "status": status, **found},
            status_code=200 if ok else 503,
        )

    async def prometheus(request: Request) -> Response:
        try:
            depth = await run_in_threadpool(store.sending.queue_depth, utcnow())
            metrics.QUEUE_DEPTH.set(depth)
        except ReengageError as exc:  # the scrape still answers; /healthz says what is wrong
            log.warning("metrics_queue_depth_failed", error=str(exc))
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    return [Route("/healthz", healthz), Route("/metrics", prometheus)]
