"""``GET /dashboard``: the results of ``reengage stats`` as a page with charts, behind a sign-in.

A marketer signs in once with ``REENGAGE_DASHBOARD_TOKEN`` on a form; the answer is a
session cookie (HttpOnly, SameSite=Strict, Secure behind HTTPS, only for /dashboard) that
lasts ``REENGAGE_DASHBOARD_SESSION_HOURS`` and ends when the token changes. Scripts and
proxies send ``Authorization: Bearer …`` instead. An address with ``?token=…`` (an old
bookmark, the demo's printed link) signs in once too, then redirects to the address
without it. Unset, the page does not exist (404), like the API. The page is rendered on
the server, charts included, and runs no script; ``?campaign=`` and ``?since=`` narrow it
as the command's options do. It speaks the browser's language (``Accept-Language``: English
or Simplified Chinese) and shows money in ``REENGAGE_CURRENCY``; what it says about a campaign
is worded in :mod:`reengage.web.dashboard_view`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from reengage import i18n, stats
from reengage.errors import InputError, ReengageError
from reengage.i18n import Texts
from reengage.logs import get_logger
from reengage.store import Store
from reengage.tokens import BadToken, sign, stamp, verify
from reengage.web import charts, dashboard_view
from reengage.web.forms import form_or_page, refused_origin
from reengage.web.pages import SECURITY_HEADERS, page, problem

if TYPE_CHECKING:
    from reengage.web.config import WebConfig

log = get_logger(__name__)

COOKIE = "reengage_dashboard"
SESSION = "dashboard-session"  # the token purpose of the cookie's value


def routes(store: Store, config: WebConfig) -> list[Route]:
    """The dashboard, its sign-in and sign-out; without a configured token all answer 404."""

    def off() -> Response:
        return problem(
            "Not found",
            "The dashboard is off: set REENGAGE_DASHBOARD_TOKEN to turn it on.",
            404,
            config.company_name,
        )

    def right(given: str | None, expected: str) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), expected.encode())

    def session_ok(request: Request, expected: str) -> bool:
        value = request.cookies.get(COOKIE)
        if not value:
            return False
        try:
            found = verify(
                config.secret,
                SESSION,
                value,
                previous=config.previous_secrets,
                now=config.clock(),
                max_age=config.dashboard_session,
            )
        except BadToken:
            return False
        return found.get("k") == _fingerprint(expected)

    def sign_in_page(error: str | None = None, status: int = 401) -> Response:
        return page(
            "sign_in.html.j2",
            status,
            company=config.company_name,
            error=error,
            hours=round(config.dashboard_session.total_seconds() / 3600),
        )

    def signed_in(to: str, expected: str) -> Response:
        """A redirect to ``to`` that carries the session cookie."""
        answer = RedirectResponse(to, status_code=303, headers=SECURITY_HEADERS)
        answer.set_cookie(
            COOKIE,
            sign(config.secret, SESSION, {"t": stamp(config.clock()), "k": _fingerprint(expected)}),
            max_age=int(config.dashboard_session.total_seconds()),
            path="/dashboard",
            secure=config.base_url.lower().startswith("https://"),
            httponly=True,
            samesite="strict",
        )
        return answer

    async def dashboard(request: Request) -> Response:
        expected = config.dashboard_token
        if expected is None:
            return off()
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and bearer.strip():
            if not right(bearer.strip(), expected):
                log.info("dashboard_refused", how="bearer")
                refused = problem(
                    "The dashboard needs its token",
                    "The bearer token is not REENGAGE_DASHBOARD_TOKEN.",
                    401,
                    config.company_name,
                )
                refused.headers["WWW-Authenticate"] = "Bearer"
                return refused
            return await show(request, signed_in=False)
        if "token" in request.query_params:
            # A sign-in link: the token leaves the address at once (history, bookmarks).
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            rest = urlencode(kept)
            if not right(request.query_params["token"], expected):
                log.info("dashboard_refused", how="link")
                return sign_in_page("That link's token is not the dashboard's. Sign in here.")
            log.info("dashboard_signed_in", how="link")
            return signed_in("/dashboard" + (f"?{rest}" if rest else ""), expected)
        if not session_ok(request, expected):
            return sign_in_page()
        return await show(request, signed_in=True)

    async def sign_in(request: Request) -> Response:
        expected = config.dashboard_token
        if expected is None:
            return off()
        company = config.company_name
        refused = refused_origin(request, config.base_url, company, "dashboard")
        if refused is not None:
            return refused
        form = await form_or_page(request, config.form_max_bytes, company, "dashboard")
        if isinstance(form, Response):
            return form
        given = form.get("token")
        if not isinstance(given, str) or not right(given.strip(), expected):
            log.info("dashboard_refused", how="form")
            return sign_in_page("That is not the dashboard's token.")
        log.info("dashboard_signed_in", how="form")
        return signed_in("/dashboard", expected)

    async def sign_out(request: Request) -> Response:
        refused = refused_origin(request, config.base_url, config.company_name, "sign_out")
        if refused is not None:
            return refused
        answer = RedirectResponse("/dashboard", status_code=303, headers=SECURITY_HEADERS)
        answer.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
        return answer

    async def show(request: Request, *, signed_in: bool) -> Response:
        t = i18n.texts(i18n.negotiate(request.headers.get("accept-language")))
        now = config.clock()
        campaign = request.query_params.get("campaign") or None
        since_text = (request.query_params.get("since") or "").strip() or None
        try:
            since = stats.parse_since(since_text, now, config.zone) if since_text else None
        except InputError as exc:
            return problem("That date is not understood", f"since: {exc}", 400)
        try:
            shown = await run_in_threadpool(
                _render, store, now, campaign, since, t, config.currency
            )
        except InputError as exc:
            return problem("Nothing to show for that", f"campaign: {exc}", 400)
        except ReengageError as exc:
            log.error("dashboard_failed", error=str(exc))
            return problem(
                "Results are not available",
                "The database did not answer; try again in a minute.",
                503,
            )
        words: dict[str, Any] = t.in_template()
        answer = page(
            "dashboard.html.j2",
            company=config.company_name,
            signed_in=signed_in,
            chosen_campaign=campaign,
            since_text=since_text or "",
            currency=config.currency,
            **shown,
            **words,
        )
        answer.headers["Content-Language"] = t.words
        answer.headers["Vary"] = "Accept-Language"
        return answer

    return [
        Route("/dashboard", dashboard),
        Route("/dashboard/sign-in", sign_in, methods=["POST"]),
        Route("/dashboard/sign-out", sign_out, methods=["POST"]),
    ]


def _fingerprint(token: str) -> str:
    """What a session remembers of the token it was opened with: a new token ends it."""
    return hashlib.sha256(b"reengage dashboard\x1f" + token.encode()).hexdigest()[:16]


def _render(
    store: Store, now: Any, campaign: str | None, since: Any, t: Texts, currency: str
) -> dict[str, Any]:
    """The numbers, their words and every chart, computed off the event loop (pygal is CPU
    work). The lift and causes charts come at two widths; the page shows the one that fits."""
    results = stats.campaign_results(store, now, campaign=campaign, since=since)
    horizon_days = round(results.horizon.total_seconds() / 86400)
    return {
        "results": results,
        "known_campaigns": store.stats.campaign_ids(),
        "lift_views": {
            c.campaign_id: dashboard_view.lift_view(c.lift, t) for c in results.campaigns
        },
        "groups": {
            c.campaign_id: dashboard_view.groups(c, t, currency, horizon_days)
            for c in results.campaigns
        },
        "undecided": [
            c.campaign_id for c in results.campaigns if c.lift.kind not in dashboard_view.DECIDED
        ],
        "definitions": dashboard_view.definitions(t, horizon_days),
        "lift_charts": [charts.lift(results.campaigns, t, w) for w in (charts.WIDE, charts.NARROW)],
        "funnel_charts": {c.campaign_id: charts.funnel(c, t) for c in results.campaigns},
        "timeline_charts": {
            c.campaign_id: charts.reactivation_over_time(c, t) for c in results.campaigns
        },
        "causes_charts": [charts.causes(results.calls, t, w) for w in (charts.WIDE, charts.NARROW)],
        "horizon_days": horizon_days,
    }
