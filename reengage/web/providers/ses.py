"""Amazon SES notifications (delivered in an SNS ``Notification``) read into events.

Both shapes are read: feedback notifications (``notificationType``: Bounce, Complaint,
Delivery) and event publishing (``eventType``: also Open, Click and Subscription). The
message is named by the Message-ID header our mail carried (``mail.commonHeaders.messageId``
or ``mail.headers``), never by SES's own ``mail.messageId``. Each SNS message is one event
per recipient it lists, identified by the SNS MessageId (and the recipient's place).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reengage.responses import ProviderEvent
from reengage.web.providers.common import (
    Parsed,
    Skipped,
    event_id,
    header,
    message_id,
    obj,
    recipient,
    text,
)


def events(notification: Mapping[str, Any]) -> list[Parsed]:
    """The events of one verified SNS Notification carrying an SES notification."""
    sns_id = str(notification.get("MessageId"))
    try:
        body = json.loads(notification["Message"])
    except (ValueError, TypeError, RecursionError):
        return [Skipped(event_id("ses", sns_id), "unknown", "Message is not JSON")]
    if not isinstance(body, dict):
        return [Skipped(event_id("ses", sns_id), "unknown", "Message is not a JSON object")]
    kind = body.get("eventType") or body.get("notificationType")
    mail = obj(body.get("mail"))
    ours = _our_message_id(mail)
    what = str(kind or "unknown")[:40]
    reader = _READERS.get(what)
    if reader is None:  # Send, Reject, DeliveryDelay, AmazonSnsSubscriptionSucceeded...
        return [Skipped(event_id("ses", sns_id), what)]
    part = body.get(what[0].lower() + what[1:])
    if not isinstance(part, dict):
        return [Skipped(event_id("ses", sns_id), what, f"{what} notification without its details")]
    found = reader(part, mail)
    if not found:  # a Subscription change that leaves some topics on: nothing to do
        problem = None if what == "Subscription" else f"{what} notification names no recipient"
        return [Skipped(event_id("ses", sns_id), what, problem)]
    parsed: list[Parsed] = []
    for index, (kind_, address, detail) in enumerate(found):
        key = event_id("ses", sns_id, index) if len(found) > 1 else event_id("ses", sns_id)
        if address is None and kind_ in ("bounce", "soft_bounce", "complaint"):
            parsed.append(Skipped(key, what, "recipient without an email address"))
            continue
        parsed.append(ProviderEvent(key, kind_, message=ours, recipient=address, detail=detail))
    return parsed


def _our_message_id(mail: Mapping[str, Any]) -> str | None:
    common = mail.get("commonHeaders")
    found = message_id(common.get("messageId")) if isinstance(common, dict) else None
    return found or message_id(header(mail.get("headers"), "Message-ID"))


Found = list[tuple[str, str | None, str | None]]  # (type, recipient, detail)


def _bounce(part: Mapping[str, Any], mail: Mapping[str, Any]) -> Found:
    # Permanent: the address is gone. Transient (and Undetermined): it may yet work.
    kind = "bounce" if part.get("bounceType") == "Permanent" else "soft_bounce"
    why = f"{part.get('bounceType')}/{part.get('bounceSubType')}"
    return [
        (
            kind,
            recipient(r.get("emailAddress")),
            text(f"{why}: {r.get('diagnosticCode') or r.get('status') or ''}"),
        )
        for r in _list(part.get("bouncedRecipients"))
    ]


def _complaint(part: Mapping[str, Any], mail: Mapping[str, Any]) -> Found:
    why = (
        text(part.get("complaintFeedbackType")) or text(part.get("complaintSubType")) or "complaint"
    )
    return [
        ("complaint", recipient(r.get("emailAddress")), why)
        for r in _list(part.get("complainedRecipients"))
    ]


def _delivery(part: Mapping[str, Any], mail: Mapping[str, Any]) -> Found:
    detail = text(part.get("smtpResponse"))
    found = part.get("recipients")
    return [("delivered", recipient(r), detail) for r in found] if isinstance(found, list) else []


def _open(part: Mapping[str, Any], mail: Mapping[str, Any]) -> Found:
    return [("open", _first_destination(mail), text(part.get("userAgent")))]


def _click(part: Mapping[str, Any], mail: Mapping[str, Any]) -> Found:
    return [("click", _first_destination(mail), text(part.get("link")))]


def _subscription(part: Mapping[str, Any], mail: Mapping[str, Any]) -> Found:
    # SES list management: only leaving every topic is an unsubscribe from everything.
    prefs = part.get("newTopicPreferences")
    if not isinstance(prefs, dict) or prefs.get("unsubscribeAll") is not True:
        return []
    return [("unsubscribe", _first_destination(mail), "SES list management")]


def _first_destination(mail: Mapping[str, Any]) -> str | None:
    destination = mail.get("destination")
    return recipient(destination[0]) if isinstance(destination, list) and destination else None


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


_READERS = {
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Delivery": _delivery,
    "Open": _open,
    "Click": _click,
    "Subscription": _subscription,
}
