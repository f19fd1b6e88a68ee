"""What one inbound mail is: a bounce, a complaint, an auto-reply, a reply, or nothing we know.

Pure: raw bytes and the envelope recipients in, an :class:`Inbound` out; no I/O, never raises.
The order of the checks is the point: a DSN (RFC 3464) carries ``Auto-Submitted:
auto-replied`` by rule, so delivery reports and feedback reports (ARF, RFC 5965) are
recognised before auto-reply headers; bounces that are not DSNs go to flufl.bounce
(Mailman's detectors). Reply text is cut from its quoted history by mail-parser-reply, and
both libraries live behind this package only: ``reports`` (DSN, ARF), ``bounces``
(flufl.bounce), ``replies`` (auto-replies, reply text), on ``headers`` and ``model``.
"""

from __future__ import annotations

import email
from collections.abc import Sequence
from dataclasses import replace
from email.message import Message

from reengage.logs import get_logger
from reengage.mailparse.bounces import heuristic_bounce, looks_like_bounce
from reengage.mailparse.headers import (
    BOUNCE_PREFIX,
    REPLY_PREFIX,
    SUBJECT_LIMIT,
    addresses_in,
    content_type,
    header,
    msgids,
    normal_address,
    one_line,
    our_token,
    report_type,
    returned_original,
    token_in,
)
from reengage.mailparse.model import Inbound, InboundKind, unknown
from reengage.mailparse.replies import auto_reply_reason, reply_text
from reengage.mailparse.reports import arf_ids, delivery_status, feedback

__all__ = [
    "BOUNCE_PREFIX",
    "REPLY_PREFIX",
    "UNREADABLE",
    "Inbound",
    "InboundKind",
    "classify",
    "normal_address",
    "token_in",
]

log = get_logger(__name__)

UNREADABLE = "the mail could not be read"  # the diagnostic of a mail that did not parse


def classify(raw: bytes, recipients: Sequence[str] = ()) -> Inbound:
    """Say what one received mail is; malformed input gives UNKNOWN rather than an error."""
    try:
        msg = email.message_from_bytes(raw)
        return _classify(msg, tuple(recipients))
    except Exception as exc:  # a mail is data from anyone: no shape of it may stop the listener
        log.warning("inbound_unparsable", error=repr(exc)[:300], size=len(raw))
        unreadable = unknown(token=our_token((), tuple(recipients)))
        return replace(unreadable, diagnostic=f"{UNREADABLE}: {type(exc).__name__}")


def _classify(msg: Message, rcpts: tuple[str, ...]) -> Inbound:
    subject = one_line(header(msg, "Subject"), SUBJECT_LIMIT)
    sender = addresses_in(msg, "From")[:1]
    original = returned_original(msg)
    headers_to = addresses_in(msg, "To", "Cc", "Delivered-To", "X-Original-To", lower=False)
    base = replace(
        unknown(our_token(headers_to, rcpts, original), subject, sender[0] if sender else ""),
        bounce_token=next(filter(None, (token_in(a, BOUNCE_PREFIX) for a in rcpts)), None),
        original_subject=one_line(header(original, "Subject"), SUBJECT_LIMIT)
        if original is not None
        else None,
    )
    original_ids = msgids(header(original, "Message-ID"))

    if content_type(msg) == "multipart/report" and "feedback" in report_type(msg):
        found = feedback(msg, original, base)
        if found is not None:
            return replace(found, message_ids=original_ids or arf_ids(msg))
    dsn = delivery_status(msg, base)
    if dsn is not None:
        return replace(dsn, message_ids=original_ids)

    reason = auto_reply_reason(msg, subject, base.token is not None)
    to_bounce_address = any(token_in(a, BOUNCE_PREFIX) for a in (*rcpts, *headers_to))
    if looks_like_bounce(msg, base, reason, to_bounce_address):
        bounce = heuristic_bounce(msg, base)
        if bounce is not None:
            return replace(bounce, message_ids=original_ids or bounce.message_ids)

    thread_ids = msgids(header(msg, "In-Reply-To") + " " + header(msg, "References"))
    if reason is not None:
        return replace(
            base,
            kind=InboundKind.AUTO_REPLY,
            auto_reason=reason,
            message_ids=thread_ids,
            recipients=sender,
            text=reply_text(msg),
        )
    if thread_ids or any(token_in(a, REPLY_PREFIX) for a in (*rcpts, *headers_to)):
        return replace(
            base,
            kind=InboundKind.REPLY,
            message_ids=thread_ids,
            recipients=sender,
            text=reply_text(msg),
        )
    return base
