"""What the app accepts from a browser's form: a small body, sent from our own pages.

A body is read chunk by chunk and refused (413) as soon as it passes its limit, or before
a byte is read when its declared length is over it: nobody can make the server hold more.
A form post is refused (403) when the browser says it comes from another site (``Origin``);
a post without ``Origin`` (old browsers, mail clients, scripts) passes. ``Origin: null``
(a sandboxed frame, a redirect across sites) is not provably ours and is refused too,
unless the browser itself vouches with ``Sec-Fetch-Site: same-origin`` (a page cannot set
that header; Chromium sends ``null`` for our own form when a page's referrer policy is
``no-referrer``, which is why our pages use ``same-origin``).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message

from reengage.logs import get_logger
from reengage.web.pages import problem

log = get_logger(__name__)

# No form of ours has more than a dozen fields, and none takes a file.
MAX_FIELDS = 64


class TooLarge(Exception):
    """A request body over its limit; nothing past the limit was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is over {limit} bytes")
        self.limit = limit


class BadForm(Exception):
    """A form body that does not parse (a file, too many fields, broken multipart)."""


class TooSlow(Exception):
    """A body that did not arrive within :data:`BODY_SECONDS`, or whose sender went away."""


# A form or API body comes within this many seconds, or the request is refused (408): a
# client trickling bytes cannot hold a connection (and a file descriptor) for ever.
BODY_SECONDS = 30.0


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with :class:`TooLarge` as soon as it passes ``limit`` (never held
    whole, never read on when the declared length is already over it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise TooSlow(f"the body did not arrive within {BODY_SECONDS:.0f} s") from None
    except ClientDisconnect:
        raise TooSlow("the sender went away before the body arrived") from None
    return b"".join(chunks)


async def read_form(request: Request, limit: int) -> FormData:
    """The posted form (URL-encoded or multipart), read within ``limit`` bytes."""
    body = await read_limited(request, limit)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form(max_files=0, max_fields=MAX_FIELDS)
    except (HTTPException, MultiPartException) as exc:
        raise BadForm(str(getattr(exc, "detail", exc))) from exc


async def form_or_page(
    request: Request, limit: int, company: str, route: str
) -> FormData | Response:
    """The posted form, or the page that says why it was not taken (and a log line)."""
    try:
        return await read_form(request, limit)
    except TooLarge as exc:
        log.info("form_too_large", route=route, limit=exc.limit)
        return too_large(exc.limit, company)
    except BadForm as exc:
        log.info("form_unreadable", route=route, reason=str(exc))
        return bad_form(company)
    except TooSlow as exc:
        log.info("form_too_slow", route=route, reason=str(exc))
        return too_slow(company)


def refused_origin(request: Request, base_url: str, company: str, route: str) -> Response | None:
    """The 403 page (and a log line) for a form posted from another site, else None."""
    origin = foreign_origin(request, base_url)
    if origin is None:
        return None
    log.info("form_cross_site", route=route, origin=origin[:200])
    return cross_site(company)


def foreign_origin(request: Request, base_url: str) -> str | None:
    """The other site a browser says this request comes from, or None when it is ours
    (the ``Host`` it was sent to, or the public address in ``base_url``) or not said."""
    origin = request.headers.get("origin")
    if origin is None or request.headers.get("sec-fetch-site") == "same-origin":
        return None
    given = origin.strip().lower().rstrip("/")
    if given == "null":
        return origin
    host = request.headers.get("host", "").strip().lower()
    if host and urlsplit(given).netloc == host:
        return None
    if base_url:
        ours = urlsplit(base_url.strip().lower())
        if given == f"{ours.scheme}://{ours.netloc}":
            return None
    return origin


def too_large(limit: int, company: str = "") -> Response:
    """The page for a form post over the limit (the connection is closed after it)."""
    answer = problem(
        "That was too much to send",
        f"Nothing was changed: a form here takes at most {limit // 1024} KB. Go back, shorten "
        "what you wrote, and send it again.",
        413,
        company,
    )
    answer.headers["Connection"] = "close"  # the rest of the body is never read
    return answer


def too_slow(company: str = "") -> Response:
    """The page for a form whose body did not arrive in time (the connection is closed)."""
    answer = problem(
        "That took too long to arrive",
        "Nothing was changed. Check your connection, open the page again and send it again.",
        408,
        company,
    )
    answer.headers["Connection"] = "close"
    return answer


def cross_site(company: str = "") -> Response:
    """The page for a form posted from another site: nothing done, and how to do it."""
    return problem(
        "This form was sent from another site",
        "Nothing was changed. For your safety this form only works from our own page: open "
        "the link you were sent again and use the buttons there.",
        403,
        company,
    )


def bad_form(company: str = "") -> Response:
    """The page for a form body that does not parse."""
    return problem(
        "The form could not be read",
        "Nothing was changed. Open the page again and send the form from there.",
        400,
        company,
    )
