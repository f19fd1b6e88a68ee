"""SendGrid's signed Event Webhook: ECDSA (P-256, SHA-256) over the timestamp header
followed by the raw body, checked against the verification key SendGrid shows (base64
DER). The body is a JSON array of events, each identified by its ``sg_event_id``.

Our message is named by a custom argument ``reengage_message_id`` when the sender adds one,
otherwise by ``smtp-id``: the Message-ID of mail sent over SMTP, which SendGrid reports on
delivery, bounce and drop events (not on opens and clicks, which reengage tracks itself).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reengage.errors import ConfigError
from reengage.responses import ProviderEvent
from reengage.web.providers.common import (
    MAX_AGE_SECONDS,
    Parsed,
    Refused,
    Skipped,
    event_id,
    message_id,
    metadata_message,
    recipient,
    text,
)

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_key(encoded: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER, or a ConfigError saying what to paste."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError(
            "REENGAGE_SENDGRID_WEBHOOK_KEY is not SendGrid's verification key: paste the "
            "base64 text shown under Mail Settings > Signed Event Webhook Requests"
        )
    return key


def verify(key: ec.EllipticCurvePublicKey, headers: Any, body: bytes, now: datetime) -> None:
    """Refuse (401 unsigned, 403 forged or stale) unless SendGrid signed this body lately."""
    signature, stamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
    if not signature or not stamp:
        raise Refused(401, f"unsigned: {SIGNATURE} and {TIMESTAMP} are required")
    if not stamp.isdigit() or abs(now.timestamp() - int(stamp)) > MAX_AGE_SECONDS:
        raise Refused(403, f"{TIMESTAMP} is not within {MAX_AGE_SECONDS // 60} minutes of now")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            stamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (binascii.Error, ValueError, InvalidSignature):
        raise Refused(403, "the SendGrid signature does not verify") from None


# SendGrid's event names and what they are to reengage; others (processed, deferred,
# dropped, group_resubscribe...) are not acted on.
_TYPES = {
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}


def events(body: Any) -> list[Parsed]:
    """The events of a verified payload (a JSON array)."""
    if not isinstance(body, list):
        raise Refused(422, "expected a JSON array of SendGrid events")
    return [_event(item) for item in body]


def _event(item: Any) -> Parsed:
    if not isinstance(item, dict):
        return Skipped(None, "unknown", "expected a JSON object")
    what = text(item.get("event"), 40) or "unknown"
    raw_id = text(item.get("sg_event_id"), 200)
    if raw_id is None:
        return Skipped(None, what, "sg_event_id: every SendGrid event has one")
    key = event_id("sendgrid", raw_id)
    if what == "bounce":
        # "bounce" is permanent; "blocked" (and "expired") are refusals that may pass later.
        kind = "bounce" if item.get("type", "bounce") == "bounce" else "soft_bounce"
    elif what in _TYPES:
        kind = _TYPES[what]
    else:
        return Skipped(key, what)
    address = recipient(item.get("email"))
    if address is None:
        return Skipped(key, what, "email: the recipient's address is required")
    ours = metadata_message(item) or message_id(item.get("smtp-id"))
    detail = (
        text(item.get("url"))
        if kind == "click"
        else text(item.get("reason") or item.get("response") or item.get("status"))
    )
    return ProviderEvent(key, kind, message=ours, recipient=address, detail=detail)
