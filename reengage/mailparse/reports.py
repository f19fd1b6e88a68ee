"""Reports that say what became of our mail: delivery status notifications (RFC 3464) and
feedback reports (ARF, RFC 5965), read before anything else because a DSN carries
``Auto-Submitted: auto-replied`` by rule."""

from __future__ import annotations

from dataclasses import replace
from email.message import Message

from reengage.mailparse.headers import (
    BOUNCE_PREFIX,
    DIAGNOSTIC_LIMIT,
    STATUS,
    addresses_in,
    blocks,
    content_type,
    header,
    msgids,
    one_line,
    token_in,
    walk,
)
from reengage.mailparse.model import Inbound, InboundKind

# --- delivery status notifications (RFC 3464) ----------------------------------------------


def field(block: Message, name: str) -> str:
    """A report field's value on one line."""
    return one_line(header(block, name), 2000)


def typed_address(value: str) -> str:
    """``rfc822; User@Example.com`` → ``user@example.com``."""
    _, _, addr = value.rpartition(";")
    return addr.strip().strip("<>").lower()


def delivery_status(msg: Message, base: Inbound) -> Inbound | None:
    """A bounce read from a delivery status notification, hard before soft; None if none."""
    hard: list[tuple[str, str | None, str | None]] = []
    soft: list[tuple[str, str | None, str | None]] = []
    for part in walk(msg):
        if content_type(part) not in (
            "message/delivery-status",
            "message/global-delivery-status",
            "text/delivery-status",
        ):
            continue
        for block in blocks(part)[1:] or blocks(part):
            # Both names count: a forwarding mailbox reports the final address, and the
            # original one is the address we mailed.
            address = " ".join(
                typed_address(field(block, name))
                for name in ("Final-Recipient", "Original-Recipient")
            ).strip()
            action = field(block, "Action").lower()
            match = STATUS.search(field(block, "Status"))
            status = match.group(0) if match else None
            diagnostic = _diagnostic(field(block, "Diagnostic-Code"))
            # The status class says permanent (5) or transient (4); a "failed" 4.x.x is a
            # message that expired in a queue, not an address that is gone.
            if (status or "").startswith("5") or (status is None and action == "failed"):
                hard.append((address, status, diagnostic))
            elif (status or "").startswith("4") or action == "delayed" or action == "failed":
                soft.append((address, status, diagnostic))
    chosen, kind = (hard, InboundKind.HARD_BOUNCE) if hard else (soft, InboundKind.SOFT_BOUNCE)
    if not chosen:
        return None
    _, status, diagnostic = chosen[0]
    return replace(
        base,
        kind=kind,
        recipients=tuple(
            dict.fromkeys(a for both, _, _ in chosen for a in both.split() if "@" in a)
        ),
        status=status,
        diagnostic=diagnostic,
    )


def _diagnostic(value: str) -> str | None:
    """``smtp; 550-5.1.1 The email account ...`` → the server's words, one bounded line."""
    if not value:
        return None
    kind, semi, text = value.partition(";")
    text = text if semi and len(kind) < 20 else value
    return one_line(text, DIAGNOSTIC_LIMIT) or None


# --- feedback reports (RFC 5965) -----------------------------------------------------------


def feedback(msg: Message, original: Message | None, base: Inbound) -> Inbound | None:
    """A complaint read from a feedback report; None if the mail holds none."""
    for part in walk(msg):
        if content_type(part) != "message/feedback-report":
            continue
        fields = part.get_payload()
        block = (
            fields[0]
            if isinstance(fields, list) and fields and isinstance(fields[0], Message)
            else (blocks(part) or [Message()])[0]
        )
        rcpts = [
            typed_address(v).lower()
            for v in (block.get_all("Original-Rcpt-To") or [])
            if "@" in str(v)
        ]
        if not rcpts:
            rcpts = list(addresses_in(original, "To"))
        mail_from = field(block, "Original-Mail-From").rpartition(";")[2].strip(" <>")
        return replace(
            base,
            kind=InboundKind.COMPLAINT,
            token=base.token or token_in(mail_from, BOUNCE_PREFIX),
            recipients=tuple(dict.fromkeys(rcpts)),
            feedback_type=field(block, "Feedback-Type").lower() or "abuse",
        )
    return None


def arf_ids(msg: Message) -> tuple[str, ...]:
    """Some providers name the original only in the report's Original-Message-ID field."""
    ids: list[str] = []
    for part in walk(msg):
        if content_type(part) == "message/feedback-report":
            for block in blocks(part):
                ids += msgids(header(block, "Original-Message-ID"))
    return tuple(dict.fromkeys(ids))
