"""``GET /dashboard``: the results of ``reengage stats`` as a page with charts, behind a token.

The token is ``REENGAGE_DASHBOARD_TOKEN``, given as ``Authorization: Bearer …`` (scripts,
proxies) or as ``?token=…`` (a link a marketer can bookmark; the page sends no Referer
and is never cached, so the address does not leak from it). Unset, the page does not
exist (404), like the API. The page is rendered on the server, charts included, and runs
no script; ``?campaign=`` and ``?since=`` narrow it as the command's options do.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reengage import stats
from reengage.errors import InputError, ReengageError
from reengage.logs import get_logger
from reengage.stats.intervals import points
from reengage.store import Store
from reengage.web import charts
from reengage.web.pages import page, problem

if TYPE_CHECKING:
    from reengage.web.app import WebConfig

log = get_logger(__name__)


def routes(store: Store, config: WebConfig) -> list[Route]:
    """The dashboard's route; without a configured token it answers 404."""

    async def dashboard(request: Request) -> Response:
        expected = config.dashboard_token
        if expected is None:
            return problem(
                "Not found",
                "The dashboard is off: set REENGAGE_DASHBOARD_TOKEN to turn it on.",
                404,
                config.company_name,
            )
        given, in_query = _token(request)
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            log.info("dashboard_refused", token_given=given is not None)
            refused = problem(
                "The dashboard needs its token",
                "Open the address you were given, with ?token=… at its end, or send "
                "Authorization: Bearer … with REENGAGE_DASHBOARD_TOKEN.",
                401,
                config.company_name,
            )
            refused.headers["WWW-Authenticate"] = "Bearer"
            return refused
        now = config.clock()
        campaign = request.query_params.get("campaign") or None
        since_text = (request.query_params.get("since") or "").strip() or None
        try:
            since = stats.parse_since(since_text, now, config.zone) if since_text else None
        except InputError as exc:
            return problem("That date is not understood", f"since: {exc}", 400)
        try:
            shown = await run_in_threadpool(_render, store, now, campaign, since)
        except InputError as exc:
            return problem("Nothing to show for that", f"campaign: {exc}", 400)
        except ReengageError as exc:
            log.error("dashboard_failed", error=str(exc))
            return problem(
                "Results are not available",
                "The database did not answer; try again in a minute.",
                503,
            )
        return page(
            "dashboard.html.j2",
            company=config.company_name,
            token=given if in_query else None,
            chosen_campaign=campaign,
            since_text=since_text or "",
            points=points,
            **shown,
        )

    return [Route("/dashboard", dashboard)]


def _token(request: Request) -> tuple[str | None, bool]:
    """The token presented, and whether it came in the address (so forms must carry it)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    query = request.query_params.get("token")
    return (query, True) if query else (None, False)


def _render(store: Store, now: Any, campaign: str | None, since: Any) -> dict[str, Any]:
    """The numbers and every chart, computed off the event loop (pygal is CPU work)."""
    results = stats.campaign_results(store, now, campaign=campaign, since=since)
    return {
        "results": results,
        "known_campaigns": store.stats.campaign_ids(),
        "lift_chart": charts.lift(results.campaigns),
        "funnel_charts": {c.campaign_id: charts.funnel(c) for c in results.campaigns},
        "timeline_charts": {
            c.campaign_id: charts.reactivation_over_time(c) for c in results.campaigns
        },
        "causes_chart": charts.causes(results.calls),
        "opens_note": stats.OPENS_NOTE,
        "horizon_days": round(results.horizon.total_seconds() / 86400),
    }
