"""The web app's own pages (preferences with unsubscribe and pause, the rep's call outcome
form, the dashboard and its sign-in, errors), rendered from ``reengage/web/templates`` with
autoescaping always on: nothing from a customer record reaches a page unescaped.

These are reengage's pages, not marketers' mail, so they use a plain Jinja2 environment
rather than the sandbox in ``render.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).with_name("templates")

# Pages hold a token in their URL: never leak it in a Referer to another site, never run in
# a frame, run no script at all (they work without JavaScript), post forms only to
# ourselves. "same-origin", not "no-referrer": under no-referrer a browser posts our own
# forms with "Origin: null", which cannot be told from a sandboxed frame on another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page with the security headers every page carries."""
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def problem(title: str, detail: str, status_code: int = 400, company: str = "") -> HTMLResponse:
    """A plain error page: what went wrong and what the reader can do, nothing more."""
    return page("problem.html.j2", status_code, title=title, detail=detail, company=company)
