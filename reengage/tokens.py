"""Signed tokens for links in mail (unsubscribe, tracking, rep outcome forms).

``payload.signature``, both base64url: the payload is a small JSON object of opaque ids
(never a name or an address), the signature an HMAC-SHA256 with the secret key. A token
that was tampered with, or signed for another purpose, is refused. A token stamped with
the hour it was issued (``"t"``, see :func:`stamp`) can also be refused once it is too old.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

from reengage.errors import ReengageError


class BadToken(ReengageError):  # reads better at the call site than BadTokenError
    """A token was malformed, tampered with, or made for another purpose."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    """A URL-safe token carrying ``payload``, valid only for ``purpose``."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, purpose, body)}"


def stamp(issued: datetime) -> int:
    """The issue time a token carries: whole hours since the epoch (short, and enough)."""
    return int(issued.timestamp()) // 3600


def verify(
    secret: str,
    purpose: str,
    token: str,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> dict[str, Any]:
    """The payload of a genuine token; raises :class:`BadToken` otherwise.

    With ``max_age`` (and ``now``), a token must carry its issue time and be younger.
    """
    body, _, mac = token.partition(".")
    if not body or not mac or not hmac.compare_digest(mac, _mac(secret, purpose, body)):
        raise BadToken("this link is not valid: it may have been cut short or changed")
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken("this link is not valid") from exc
    if not isinstance(payload, dict):
        raise BadToken("this link is not valid")
    if max_age is not None and now is not None:
        issued = payload.get("t")
        if not isinstance(issued, int) or now.timestamp() - issued * 3600 > (
            max_age.total_seconds() + 3600
        ):
            raise BadToken("this link has expired")
    return payload


def _mac(secret: str, purpose: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}\x1f{body}".encode(), hashlib.sha256)
    return _b64(digest.digest()[:20])
