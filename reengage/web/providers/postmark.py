"""Postmark's webhooks (Bounce, SpamComplaint, Delivery, Open, Click, SubscriptionChange).
Postmark signs nothing: the webhook URL carries HTTP basic auth credentials
(``https://USER:PASSWORD@host/api/v1/events/postmark``) that must match the configured
ones. One event per request.

Postmark's ``MessageID`` is its own, so our message is named by the metadata
``reengage_message_id`` (an ``X-PM-Metadata-reengage_message_id`` header on the mail).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from reengage.responses import ProviderEvent
from reengage.web.providers.common import (
    Parsed,
    Refused,
    Skipped,
    event_id,
    metadata_message,
    recipient,
    text,
)


def authorize(credentials: str, authorization: str) -> None:
    """Refuse with 401 unless the request's basic auth is ``credentials`` (USER:PASSWORD)."""
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "basic" or not given:
        raise Refused(401, "basic auth required: put USER:PASSWORD@ in the webhook URL")
    try:
        decoded = base64.b64decode(given.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(401, "the basic auth credentials are not base64") from None
    if not hmac.compare_digest(decoded, credentials.encode()):
        raise Refused(401, "wrong basic auth credentials")


# Bounce types that mean the address is gone, and those that may pass later.
_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
_SOFT = {"SoftBounce", "Transient", "DnsError", "Blocked", "MailFrontier"}
# The field saying when, which with Postmark's MessageID identifies events without an ID.
_WHEN = {
    "Delivery": "DeliveredAt",
    "Open": "ReceivedAt",
    "Click": "ReceivedAt",
    "SubscriptionChange": "ChangedAt",
}


def events(body: Any) -> list[Parsed]:
    """The one event of a Postmark webhook call."""
    if not isinstance(body, dict):
        raise Refused(422, "expected a JSON object (one Postmark webhook event)")
    what = text(body.get("RecordType"), 40) or "unknown"
    if what in ("Bounce", "SpamComplaint"):
        raw = text(body.get("ID"), 100)
        key = event_id("postmark", what, raw) if raw else None
    else:
        their, when = text(body.get("MessageID"), 100), text(body.get(_WHEN.get(what, "")), 60)
        key = event_id("postmark", what, their, when) if their and when else None
    if key is None:
        return [Skipped(None, what, "ID (or MessageID and its time): Postmark's event needs one")]
    kind = _kind(what, body)
    if kind is None:
        return [Skipped(key, what)]
    address = recipient(body.get("Email") or body.get("Recipient"))
    if address is None:
        return [Skipped(key, what, "Email/Recipient: the recipient's address is required")]
    if kind == "click":
        detail = text(body.get("OriginalLink"))
    else:
        detail = text(
            body.get("Details")
            or body.get("Description")
            or body.get("SuppressionReason")
            or body.get("Type")
        )
    return [
        ProviderEvent(
            key,
            kind,
            message=metadata_message(body.get("Metadata")),
            recipient=address,
            detail=detail,
        )
    ]


def _kind(what: str, body: dict[str, Any]) -> str | None:
    if what == "Bounce":
        found = text(body.get("Type"), 40)
        if found in _HARD:
            return "bounce"
        if found in _SOFT:
            return "soft_bounce"
        return {
            "SpamComplaint": "complaint",
            "SpamNotification": "complaint",
            "Unsubscribe": "unsubscribe",
        }.get(str(found))
    if what == "SubscriptionChange":
        if body.get("SuppressSending") is not True:
            return None  # a reactivation: nothing to undo by itself
        reason = body.get("SuppressionReason")
        return {"HardBounce": "bounce", "SpamComplaint": "complaint"}.get(
            str(reason), "unsubscribe"
        )
    return {
        "SpamComplaint": "complaint",
        "Delivery": "delivered",
        "Open": "open",
        "Click": "click",
    }.get(what)
