"""The links inside every mail: the open pixel, click redirects and the preferences page
(unsubscribe, or pause for 90 days), including RFC 8058 one-click unsubscribe.

Every token is sealed and dated (``tokens``): a tampered, malformed or expired one records
nothing and gets a plain page saying so (400); the pixel is served whatever its token. A
click only ever redirects to the URL sealed into its token when the mail was rendered, so
the service is never an open redirect. A post to the preferences page is read only up to
the form limit, and must come from our own page unless it is an RFC 8058 one-click
unsubscribe, which a mail client sends from anywhere.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from reengage import responses
from reengage.errors import ReengageError
from reengage.logs import get_logger
from reengage.store import Store
from reengage.tokens import BadToken, verify
from reengage.web.forms import form_or_page, refused_origin
from reengage.web.pages import SECURITY_HEADERS, page, problem

if TYPE_CHECKING:
    from reengage.web.config import WebConfig

log = get_logger(__name__)

# The smallest transparent GIF: served whatever happens to the recording.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PIXEL_HEADERS = {"Cache-Control": "no-store, max-age=0", "Referrer-Policy": "no-referrer"}


def routes(store: Store, config: WebConfig) -> list[Route]:
    """``/o/TOKEN.gif``, ``/c/TOKEN`` and ``/u/TOKEN`` (GET shows, POST acts)."""

    def check(purpose: str, token: str) -> dict[str, Any]:
        return verify(
            config.secret,
            purpose,
            token,
            previous=config.previous_secrets,
            now=config.clock(),
            max_age=config.link_max_age,
        )

    def bad_link(exc: BadToken) -> Response:
        log.info("link_refused", reason=str(exc))
        return problem(
            "This link does not work",
            f"{str(exc).capitalize()}. If you want to stop getting our mail, reply to any of "
            "our emails and say so; a person will take care of it.",
            company=config.company_name,
        )

    async def pixel(request: Request) -> Response:
        try:
            key = str(check("open", request.path_params["token"])["m"])
            await run_in_threadpool(responses.record_open, store, key, config.clock())
        except BadToken as exc:
            log.info("open_refused", reason=str(exc))
        except (ReengageError, KeyError) as exc:  # never shown: the image is served anyway
            log.error("open_not_recorded", error=str(exc))
        return Response(PIXEL, media_type="image/gif", headers=PIXEL_HEADERS)

    async def click(request: Request) -> Response:
        try:
            payload = check("click", request.path_params["token"])
        except BadToken as exc:
            return bad_link(exc)
        url = payload.get("u")
        if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
            return problem("This link does not work", "It does not lead to a web page.")
        try:
            await run_in_threadpool(
                responses.record_click,
                store,
                str(payload.get("m")),
                url,
                config.clock(),
                config.policy,
            )
        except ReengageError as exc:  # the reader still gets where they wanted to go
            log.error("click_not_recorded", error=str(exc))
        return RedirectResponse(url, status_code=302, headers={"Referrer-Policy": "no-referrer"})

    async def preferences(request: Request) -> Response:
        try:
            key = str(check("unsubscribe", request.path_params["token"])["m"])
        except BadToken as exc:
            return bad_link(exc)
        ref = await run_in_threadpool(responses.message, store, key)
        if ref is None:
            return problem("This link does not work", "We cannot find the mail it came from.")
        if request.method == "POST":
            return await act(request, ref)
        name = " ".join(p for p in (ref.first_name, ref.last_name) if p)
        return page(
            "preferences.html.j2",
            company=config.company_name,
            address=config.company_address,
            name=name,
            email=ref.email,
            pause_days=config.policy.pause_days,
            pause_first=request.query_params.get("pause") is not None,
        )

    async def act(request: Request, ref: Any) -> Response:
        company = config.company_name
        form = await form_or_page(request, config.form_max_bytes, company, "preferences")
        if isinstance(form, Response):
            return form
        now = config.clock()
        if form.get("List-Unsubscribe") == "One-Click":  # RFC 8058: no page, no redirect
            # A mail client posts this from anywhere: the RFC requires it to be accepted.
            await run_in_threadpool(responses.unsubscribe, store, ref, now, source="one_click")
            return PlainTextResponse("You are unsubscribed.", headers=SECURITY_HEADERS)
        refused = refused_origin(request, config.base_url, company, "preferences")
        if refused is not None:
            return refused
        action = form.get("action")
        if action == "pause":
            until = await run_in_threadpool(responses.pause, store, ref, now, config.policy)
            return done(
                f"Paused until {until.date():%d %B %Y}",
                f"{ref.email} gets no mail from us until then.",
            )
        if action == "unsubscribe":
            await run_in_threadpool(responses.unsubscribe, store, ref, now, source="page")
            return done(
                "You are unsubscribed",
                f"{ref.email} will get no more marketing mail from {config.company_name}.",
            )
        return problem("Nothing was changed", "Choose unsubscribe or pause on the page.")

    def done(title: str, detail: str) -> Response:
        return page(
            "done.html.j2",
            title=title,
            detail=detail,
            company=config.company_name,
            address=config.company_address,
        )

    return [
        Route("/o/{token}.gif", pixel),
        Route("/c/{token}", click),
        Route("/u/{token}", preferences, methods=["GET", "POST"]),
    ]
