"""Bounces that are not DSNs: old-style and odd bounce mails, read by flufl.bounce (Mailman's
detectors), only once a mail looks like a bounce, since the detectors guess."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from email.message import Message

from flufl.bounce import all_failures

from reengage.logs import get_logger
from reengage.mailparse.headers import (
    DIAGNOSTIC_LIMIT,
    SCAN_LIMIT,
    STATUS,
    content_type,
    header,
    msgids,
    one_line,
    text_of,
    walk,
)
from reengage.mailparse.model import Inbound, InboundKind

log = get_logger(__name__)
# flufl.bounce narrates every detector it tries at INFO; only its failures are worth a line.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

_INLINE_MSGID = re.compile(r"^\s*Message-ID:\s*(<[^>\n]+>)", re.IGNORECASE | re.MULTILINE)
_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -]")
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mail.daemon"}
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status notification|failure|has failed|problem)|"
    r"mail delivery (?:failed|failure|system|subsystem)|returned mail|failure notice|"
    r"could not be delivered|delivery notification|nondeliverable|non-delivery|"
    r"unzustellbar|nicht zustellbar|non remis|no entregado|退信",
    re.IGNORECASE,
)


def looks_like_bounce(
    msg: Message, base: Inbound, auto_reason: str | None, to_bounce_address: bool
) -> bool:
    """Only mail that looks like a bounce goes to the heuristic detectors: they guess."""
    local = base.sender.partition("@")[0]
    return (
        local in _DAEMONS
        or bool(_BOUNCE_SUBJECT.search(base.subject))
        or header(msg, "Return-Path").strip() == "<>"
        or content_type(msg) == "multipart/report"
        # What reaches the Return-Path without an auto-reply mark is most likely a bounce.
        or (to_bounce_address and auto_reason is None)
    )


def heuristic_bounce(msg: Message, base: Inbound) -> Inbound | None:
    """What flufl.bounce finds in a mail that looks like a bounce; None when it names no address."""
    if not str(msg.get("From") or "").strip():
        # flufl.bounce's Yale detector indexes the From addresses and raises on none, which
        # would stop every detector after it.
        del msg["From"]
        msg["From"] = "<>"
    try:
        temporary, permanent = all_failures(msg)
    except Exception as exc:  # a detector tripping over odd input: "not a bounce we know"
        log.info("bounce_detector_failed", error=repr(exc)[:300])
        return None
    kind = InboundKind.HARD_BOUNCE if permanent else InboundKind.SOFT_BOUNCE
    failed = permanent or temporary
    addresses = sorted(
        {a.decode("ascii", errors="replace").strip().strip("<>").lower() for a in failed}
    )
    addresses = [a for a in addresses if "@" in a]
    if not addresses:
        return None
    status, diagnostic = _status_in_text(msg)
    return replace(
        base,
        kind=kind,
        recipients=tuple(addresses),
        status=status,
        diagnostic=diagnostic,
        message_ids=_inline_original_ids(msg),
    )


def _inline_original_ids(msg: Message) -> tuple[str, ...]:
    """Old-style bounces quote our mail as text; its Message-ID line still names it."""
    own = set(msgids(header(msg, "Message-ID")))
    found: list[str] = []
    for part in walk(msg):
        if content_type(part).partition("/")[0] == "text":
            for line in _INLINE_MSGID.findall(text_of(part)[:SCAN_LIMIT]):
                found += [i for i in msgids(line) if i not in own]
    return tuple(dict.fromkeys(found))


def _status_in_text(msg: Message) -> tuple[str | None, str | None]:
    """The first enhanced status code and SMTP reply line in the bounce's own text."""
    for part in walk(msg):
        if content_type(part) != "text/plain":
            continue
        for line in text_of(part)[:SCAN_LIMIT].splitlines():
            match = STATUS.search(line)
            if match or _SMTP_REPLY.search(line):
                status = match.group(0) if match and match.group(1) in "45" else None
                return status, one_line(line, DIAGNOSTIC_LIMIT) or None
        break
    return None, None
