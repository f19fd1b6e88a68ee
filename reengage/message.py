"""Putting a rendered mail in its envelope: a standards-conforming MIME message.

multipart/alternative (text, then HTML), Message-ID, Date, From, To, Reply-To, Subject,
List-Unsubscribe (https and mailto) with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058) and List-Id. Names and subjects from customer data go through the ``email``
package's header encoding (RFC 2047), and line breaks are removed first, so nothing a
customer record holds can add a header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

import dkim

_BREAKS = re.compile(r"[\r\n\t\x0b\x0c\x85\u2028\u2029]+")


@dataclass(frozen=True)
class Envelope:
    """Everything about a mail that is not its content."""

    sender: str  # "Acme <hello@acme.example>"
    to_name: str
    to_address: str
    message_id: str  # without angle brackets: "abc123@acme.example"
    date: datetime
    reply_to: str | None = None
    list_id: str | None = None  # "habit-lapsed-tips.acme.example"
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    return_path: str | None = None


def one_line(text: str, limit: int = 200) -> str:
    """A value safe for a header: no line breaks, bounded length."""
    return _BREAKS.sub(" ", text).strip()[:limit]


def address(text: str) -> Address:
    """Parse ``Name <user@host>`` into an Address the email package will encode safely."""
    name, addr = parseaddr(one_line(text, 400))
    user, _, domain = addr.partition("@")
    return Address(display_name=one_line(name), username=user, domain=domain)


DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-id",
    b"reply-to",
)


@dataclass(frozen=True)
class DkimKey:
    """A DKIM signing key: ``selector._domainkey.domain`` publishes its public half."""

    selector: str
    domain: str
    private_key: bytes  # PEM


def dkim_sign(message: EmailMessage, key: DkimKey) -> EmailMessage:
    """Add a DKIM-Signature over From, Subject, List-Unsubscribe(-Post) and friends."""
    raw = message.as_bytes(policy=SMTP)
    signature = dkim.sign(
        raw,
        key.selector.encode(),
        key.domain.encode(),
        key.private_key,
        include_headers=[h for h in DKIM_HEADERS if message.get(h.decode()) is not None],
    )
    name, _, value = signature.decode().partition(":")
    message[name] = value.strip().replace("\r\n", "").replace("\n", "")
    return message


def compose(subject: str, text: str, html: str, envelope: Envelope) -> EmailMessage:
    """The full message, ready for SMTP or to be written as a ``.eml`` file."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = address(envelope.sender)
    to_user, _, to_domain = envelope.to_address.partition("@")
    msg["To"] = Address(display_name=one_line(envelope.to_name), username=to_user, domain=to_domain)
    if envelope.reply_to:
        msg["Reply-To"] = address(envelope.reply_to)
    msg["Subject"] = one_line(subject, 300)
    msg["Date"] = format_datetime(envelope.date)
    msg["Message-ID"] = f"<{envelope.message_id}>"
    if envelope.list_id:
        msg["List-Id"] = f"<{envelope.list_id}>"
    targets = []
    if envelope.unsubscribe_url:
        targets.append(f"<{envelope.unsubscribe_url}>")
    if envelope.unsubscribe_mailto:
        targets.append(f"<mailto:{envelope.unsubscribe_mailto}>")
    if targets:
        msg["List-Unsubscribe"] = ", ".join(targets)
        if envelope.unsubscribe_url:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if envelope.return_path:
        msg["Return-Path"] = f"<{envelope.return_path}>"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg
