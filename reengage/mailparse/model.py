"""What a classified inbound mail is: its kind and what was read from it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class InboundKind(StrEnum):
    """What an inbound mail is, as far as the customer's enrollment is concerned."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    REPLY = "reply"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Inbound:
    """One classified inbound mail; every string is decoded, header values are one line."""

    kind: InboundKind
    token: str | None  # our per-message token from a bounces+TOKEN / reply+TOKEN address
    message_ids: tuple[str, ...]  # Message-IDs (no brackets) of our mail this refers to
    recipients: tuple[str, ...]  # failed/complaining addresses, or the replier's address
    status: str | None  # DSN status like "5.1.1"
    diagnostic: str | None  # remote server's reply text, one line
    feedback_type: str | None  # ARF Feedback-Type: abuse, fraud, ...
    subject: str
    sender: str  # From address, lowercased
    text: str | None  # reply text without quoted history and signature
    auto_reason: str | None  # why it was judged automatic
    original_subject: str | None = None  # subject of our mail that bounced or was reported
    # The token of the bounces+TOKEN address the mail was delivered to (the envelope, never
    # a header a sender writes): where a report arrived, which decides whether it may act.
    bounce_token: str | None = None


def unknown(token: str | None = None, subject: str = "", sender: str = "") -> Inbound:
    """A mail we cannot say anything about; the start every classification refines."""
    return Inbound(
        kind=InboundKind.UNKNOWN,
        token=token,
        message_ids=(),
        recipients=(),
        status=None,
        diagnostic=None,
        feedback_type=None,
        subject=subject,
        sender=sender,
        text=None,
        auto_reason=None,
    )
