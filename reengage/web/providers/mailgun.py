"""Mailgun's webhooks: ``{"signature": {timestamp, token, signature}, "event-data": {...}}``
where the signature is HMAC-SHA256 of timestamp followed by token under the webhook
signing key. The signature does not cover the event, so a token is accepted once: a
token seen again with another event is refused (a retry of the same event is fine), by
whichever process it reaches (the tokens are kept in the database), as is a timestamp
more than 15 minutes from now.

Our message is named by the user variable ``reengage_message_id`` when the sender sets
one, otherwise by ``message.headers.message-id``: the Message-ID our mail carried.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any, Protocol

from reengage.responses import ProviderEvent
from reengage.web.providers.common import (
    MAX_AGE_SECONDS,
    Parsed,
    Refused,
    Skipped,
    event_id,
    message_id,
    metadata_message,
    obj,
    recipient,
    text,
)


class Tokens(Protocol):
    """Where a signature's token is claimed: ``store.webhook_tokens``, shared by every
    process answering webhooks (:class:`reengage.store.webhook_tokens.WebhookTokens`)."""

    def claim(
        self, provider: str, token: str, event: str, now: datetime, *, keep: timedelta
    ) -> bool: ...


def verify(key: str, body: Any, now: datetime, tokens: Tokens) -> Any:
    """The event data of a payload Mailgun signed lately; otherwise :class:`Refused`.
    Claims the token in the database: call it off the event loop."""
    if not isinstance(body, dict):
        raise Refused(422, 'expected a JSON object {"signature": ..., "event-data": ...}')
    signed = body.get("signature")
    if not isinstance(signed, dict) or not all(
        isinstance(signed.get(k), str) and signed[k] for k in ("timestamp", "token", "signature")
    ):
        raise Refused(401, "unsigned: signature.timestamp, .token and .signature are required")
    stamp, token = signed["timestamp"], signed["token"]
    expected = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signed["signature"].lower()):
        raise Refused(403, "the Mailgun signature does not verify")
    if not stamp.isdigit() or abs(now.timestamp() - int(stamp)) > MAX_AGE_SECONDS:
        raise Refused(
            403, f"signature.timestamp is not within {MAX_AGE_SECONDS // 60} minutes of now"
        )
    data = body.get("event-data")
    raw_id = text(data.get("id"), 200) if isinstance(data, dict) else None
    # Kept for twice the signature's life: a token older than that is refused as stale.
    keep = timedelta(seconds=2 * MAX_AGE_SECONDS)
    if not tokens.claim("mailgun", token, raw_id or "", now, keep=keep):
        raise Refused(403, "this signature's token was used already: a replayed request")
    return data


_TYPES = {
    "delivered": "delivered",
    "opened": "open",
    "clicked": "click",
    "complained": "complaint",
    "unsubscribed": "unsubscribe",
}


def events(data: Any) -> list[Parsed]:
    """The one event of a verified payload."""
    if not isinstance(data, dict):
        return [Skipped(None, "unknown", "event-data: expected a JSON object")]
    what = text(data.get("event"), 40) or "unknown"
    raw_id = text(data.get("id"), 200)
    if raw_id is None:
        return [Skipped(None, what, "event-data.id: every Mailgun event has one")]
    key = event_id("mailgun", raw_id)
    if what == "failed":
        kind = "bounce" if data.get("severity") == "permanent" else "soft_bounce"
    elif what in _TYPES:
        kind = _TYPES[what]
    else:  # accepted, stored, rejected...
        return [Skipped(key, what)]
    address = recipient(data.get("recipient"))
    if address is None:
        return [Skipped(key, what, "event-data.recipient: the recipient's address is required")]
    headers = obj(obj(data.get("message")).get("headers"))
    ours = metadata_message(data.get("user-variables")) or message_id(headers.get("message-id"))
    status = obj(data.get("delivery-status"))
    if kind == "click":
        detail = text(data.get("url"))
    else:
        detail = text(status.get("message") or status.get("description") or data.get("reason"))
    return [ProviderEvent(key, kind, message=ours, recipient=address, detail=detail)]
