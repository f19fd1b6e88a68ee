"""Putting a rendered mail in its envelope: a standards-conforming MIME message.

multipart/alternative (text, then HTML), Message-ID, Date, From, To, Reply-To, Subject,
List-Unsubscribe (https and mailto) with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058) and List-Id. Subjects from customer data go through the ``email`` package's
header encoding (RFC 2047); display names are quoted or encoded by :func:`_mailbox`, so no
name can become another address; line breaks are removed first, so nothing a customer
record holds can add a header.

Speed matters here (every mail the daemon sends is composed and serialized once): values
that are plain ASCII and short — most of them — are stored ready to send, the sender's
address is parsed once per campaign, the bodies are encoded once, and :func:`wire` writes
the bytes itself instead of running ``email.generator`` (which parses every header again).
Anything unusual takes the ``email`` package's own path; a test holds :func:`wire` to
byte-for-byte the same output as ``as_bytes(policy=SMTP)``.
"""

from __future__ import annotations

import binascii
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from typing import Any

import dkim

_BREAKS = re.compile(r"[\r\n\t\x0b\x0c\x85\u2028\u2029]+")
# What may go into a header as it is: printable ASCII, no line breaks, short enough not to
# need folding. Display names must also be plain atoms (no quotes, commas, brackets…).
_PLAIN = re.compile(r"[\x20-\x7e]{0,900}")
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_ADDR_SPEC = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_BOUNDARY = re.compile(r'^multipart/[a-z]+;\s+boundary="([^"]+)"$')
_NEWLINE = re.compile(r"\r\n|\r|\n")  # what `email.generator` counts as a line break
_FOLD_AT = 78  # RFC 5322's recommended line length; longer values are folded by `email`
# A header value stored ready to send: printable ASCII lines of at most 998 characters,
# continuation lines starting with a space.
_READY = re.compile(r"[\x20-\x7e]{0,980}(?:\r\n [\x20-\x7e]{0,997})*")


class _Policy(EmailPolicy):
    """``email.policy.SMTP``, except that a value stored ready to send stays as it is.

    ``SMTP`` re-encodes any line over 78 characters as RFC 2047 words, which would turn a
    long unsubscribe URL into ``=?utf-8?q?=3Chttps=3A…`` that no mail client can follow.
    RFC 5322 allows lines up to 998 characters; :func:`compose` only stores such values
    when they are printable ASCII.
    """

    def fold(self, name: str, value: str) -> str:
        """The header line(s) as sent."""
        if not hasattr(value, "name") and _READY.fullmatch(value):
            return f"{name}: {value}\r\n"
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        """As :meth:`fold`, for ``BytesGenerator``."""
        if not hasattr(value, "name") and _READY.fullmatch(value):
            return f"{name}: {value}\r\n".encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy(linesep="\r\n")
# The metadata name under which a provider (SendGrid custom args, Mailgun user variables,
# Postmark metadata) carries our Message-ID back in its webhook events.
PROVIDER_METADATA_KEY = "reengage_message_id"


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
    # Headers an email provider reads and strips (its metadata), as (name, ASCII value).
    provider_headers: tuple[tuple[str, str], ...] = ()


def provider_headers(provider: str, message_id: str) -> tuple[tuple[str, str], ...]:
    """The header through which ``provider`` reports our Message-ID back in its webhook
    events (as metadata ``reengage_message_id``); the provider strips it before delivery."""
    value = json.dumps({PROVIDER_METADATA_KEY: message_id})
    if provider == "sendgrid":
        return (("X-SMTPAPI", json.dumps({"unique_args": {PROVIDER_METADATA_KEY: message_id}})),)
    if provider == "mailgun":
        return (("X-Mailgun-Variables", value),)
    if provider == "postmark":
        return ((f"X-PM-Metadata-{PROVIDER_METADATA_KEY}", message_id),)
    return ()


def one_line(text: str, limit: int = 200) -> str:
    """A value safe for a header: no line breaks, bounded length."""
    return _BREAKS.sub(" ", text).strip()[:limit]


@lru_cache(maxsize=256)
def address(text: str) -> Address:
    """Parse ``Name <user@host>`` into an Address the email package will encode safely.

    Cached: a campaign's From and Reply-To are the same for every mail it sends.
    """
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
    signature = dkim.sign(
        wire(message),
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
    return _message(_Parts.of(subject, text, html, envelope))


def compose_wire(subject: str, text: str, html: str, envelope: Envelope) -> tuple[bytes, str]:
    """``wire(compose(...))`` and the message's Message-ID header, without building the
    message: the daemon sends every mail this way, and preview shows ``compose``'s.

    Both are made from the same header values and bodies (:class:`_Parts`), and the bytes
    are folded by the same policy as :func:`wire` folds them; anything the fast writing
    cannot take (a header that folds to non-ASCII) goes through :func:`wire` itself.
    """
    parts = _Parts.of(subject, text, html, envelope)
    out = [POLICY.fold(name, value) for name, value in parts.headers]
    out.append("\r\n")
    for i, (content_type, encoding, body) in enumerate(parts.bodies):
        out.append(f"--{parts.boundary}\r\n" if i == 0 else f"\r\n--{parts.boundary}\r\n")
        out.append(f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n")
        out.append(_crlf(body))
    out.append(f"\r\n--{parts.boundary}--\r\n")
    try:
        data = "".join(out).encode("ascii")
    except UnicodeEncodeError:
        data = wire(_message(parts))
    return data, str(parts.message_id)


@dataclass(frozen=True)
class _Parts:
    """A mail's header values as stored in its message (a ready string, or the email
    package's header object), its two bodies (content type, transfer encoding, encoded
    text) and their boundary: what :func:`compose` and :func:`compose_wire` both write."""

    headers: list[tuple[str, Any]]
    bodies: list[tuple[str, str, str]]
    boundary: str
    message_id: Any

    @classmethod
    def of(cls, subject: str, text: str, html: str, envelope: Envelope) -> _Parts:
        headers: list[tuple[str, Any]] = [("From", _address_value("From", envelope.sender))]
        to_name, to_address = one_line(envelope.to_name), envelope.to_address
        if _ADDR_SPEC.fullmatch(to_address):
            headers.append(("To", _mailbox("To", to_name, to_address)))
        else:  # an internationalized address: the email package knows its rules
            to_user, _, to_domain = to_address.partition("@")
            to = Address(display_name=to_name, username=to_user, domain=to_domain)
            headers.append(POLICY.header_store_parse("To", to))
        if envelope.reply_to:
            headers.append(("Reply-To", _address_value("Reply-To", envelope.reply_to)))
        headers.append(_put("Subject", one_line(subject, 300)))
        headers.append(("Date", _date(envelope.date)))
        message_id = _put("Message-ID", f"<{one_line(envelope.message_id, 900)}>", whole=True)
        headers.append(message_id)
        if envelope.list_id:
            headers.append(_put("List-Id", f"<{one_line(envelope.list_id, 900)}>", whole=True))
        targets = []
        if envelope.unsubscribe_url:
            targets.append(f"<{one_line(envelope.unsubscribe_url, 2000)}>")
        if envelope.unsubscribe_mailto:
            targets.append(f"<mailto:{one_line(envelope.unsubscribe_mailto, 900)}>")
        if targets:
            # One target per line: a URL is never broken or encoded, whatever its length.
            headers.append(_put("List-Unsubscribe", ",\r\n ".join(targets), whole=True))
            if envelope.unsubscribe_url:
                headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        if envelope.return_path:
            path = f"<{one_line(envelope.return_path, 900)}>"
            headers.append(_put("Return-Path", path, whole=True))
        for name, value in envelope.provider_headers:
            headers.append(_put(name, one_line(value, 900), whole=True))
        bodies = [_text_part("plain", text), _text_part("html", html)]
        boundary = _boundary(bodies[0][2], bodies[1][2])
        headers.append(("MIME-Version", "1.0"))
        headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
        return cls(headers, bodies, boundary, message_id[1])


def _message(parts: _Parts) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    for name, value in parts.headers:
        msg.set_raw(name, value)
    payload: list[Any] = []
    for content_type, encoding, body in parts.bodies:
        part = EmailMessage(policy=POLICY)
        part.set_raw("Content-Type", content_type)
        part.set_raw("Content-Transfer-Encoding", encoding)
        part.set_payload(body)
        payload.append(part)
    msg.set_payload(payload)
    return msg


def wire(message: EmailMessage) -> bytes:
    """The message as it goes over SMTP: exactly ``message.as_bytes(policy=SMTP)``, faster.

    Writes the headers and already-encoded bodies :func:`compose` made; any other shape
    (a header that needs refolding, an 8-bit body, a preamble) goes to ``email.generator``.
    """
    out: list[str] = []
    if not _write(message, out):
        return message.as_bytes(policy=SMTP)
    try:
        return "".join(out).encode("ascii")
    except UnicodeEncodeError:
        return message.as_bytes(policy=SMTP)


def _write(part: EmailMessage, out: list[str]) -> bool:
    boundary = None
    for name, value in part.raw_items():
        out.append(POLICY.fold(name, value))
        if name.lower() == "content-type" and not hasattr(value, "name"):
            found = _BOUNDARY.search(value)  # compose's own value: no need to parse it again
            boundary = found.group(1) if found else None
    out.append("\r\n")
    if part.preamble is not None or part.epilogue is not None:
        return False
    # The stored payload as it is: get_payload() parses Content-Transfer-Encoding on every
    # call (a tenth of a millisecond a part) only to ignore it when not decoding.
    payload = getattr(part, "_payload", None)
    if isinstance(payload, list):
        boundary = boundary or part.get_boundary()
        if boundary is None:
            return False
        for i, sub in enumerate(payload):
            out.append(f"--{boundary}\r\n" if i == 0 else f"\r\n--{boundary}\r\n")
            if not isinstance(sub, EmailMessage) or not _write(sub, out):
                return False
        out.append(f"\r\n--{boundary}--\r\n")
        return True
    if not isinstance(payload, str) or not payload.isascii():
        return False
    out.append(_crlf(payload))  # a final newline stays last, so it ends in CRLF
    return True


def raw_header(message: EmailMessage, name: str) -> str | None:
    """A header's text as stored, without parsing it (``message[name]`` parses each time)."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def _put(name: str, value: str, *, whole: bool = False) -> tuple[str, Any]:
    # Plain short ASCII (or, for ``whole`` values — ids and URLs, which must never be folded
    # or encoded — any printable ASCII) is stored as it will be sent; anything else is
    # parsed and encoded (RFC 2047) by the email package, slower but knowing every rule.
    # Returns the header as the message stores it (what ``msg[name] = value`` would).
    if name == "Subject" and "=?" in value:
        # Text that looks like an encoded word (a customer named "=?utf-8?q?The_Boss?=") would
        # be decoded by the reader's mail program into other words: encode the whole value,
        # so it reads as written.
        return name, Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    short = len(name) + len(value) + 2 <= _FOLD_AT and _PLAIN.fullmatch(value)
    if short or (whole and _READY.fullmatch(value)):
        return name, value
    stored: tuple[str, Any] = POLICY.header_store_parse(name, value)
    return stored


def _date(when: datetime) -> str:
    # Every mail of a batch carries the same moment: formatted once. Keyed with the offset
    # too, since 12:00+00:00 equals 13:00+01:00 but is written otherwise.
    return _formatted_date(when, when.utcoffset())


@lru_cache(maxsize=64)
def _formatted_date(when: datetime, _offset: timedelta | None) -> str:
    return format_datetime(when)


@lru_cache(maxsize=256)
def _address_value(name: str, text: str) -> str:
    # A campaign's sender is parsed, encoded and folded once, then reused for every mail.
    parsed = address(text)
    if _ADDR_SPEC.fullmatch(parsed.addr_spec):
        return _mailbox(name, parsed.display_name, parsed.addr_spec)
    folded: str = SMTP.header_factory(name, parsed).fold(policy=SMTP)
    return folded[len(name) + 2 :].removesuffix("\r\n")


def _mailbox(header: str, name: str, addr_spec: str) -> str:
    """``name <addr_spec>`` as a header value that no name can bend into another address
    list: plain words as they are, other printable ASCII as one quoted string when it fits
    a line, anything else as RFC 2047 encoded words (which hold no quote, comma, colon or
    bracket), the address on a line of its own. Never folded by the email package, whose
    folding of a long name full of quotes and colons can turn it into a second address."""
    if not name:
        return addr_spec
    room = _FOLD_AT - len(header) - 2 - len(addr_spec) - 3
    if "=?" in name:  # shaped like an encoded word: encoded whole, so it reads as written
        room = -1
    if _ATOMS.fullmatch(name) and len(name) <= room:
        return f"{name} <{addr_spec}>"
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if _PLAIN.fullmatch(name) and len(quoted) <= room:
        return f"{quoted} <{addr_spec}>"
    phrase = Header(name, "utf-8", header_name=header).encode(linesep="\r\n")
    return f"{phrase}\r\n <{addr_spec}>"


def _text_part(subtype: str, content: str) -> tuple[str, str, str]:
    # 7bit when it can be, else quoted-printable (never 8bit: any SMTP server takes it).
    # Its content type, transfer encoding and encoded body, lines ending in "\n".
    data = content.encode("utf-8")
    if b"\r" in data:  # bytes.splitlines() also ends a line at a lone "\r"
        joined = b"\n".join(data.splitlines())
    else:  # the same, at C speed: only the one final newline goes
        joined = data[:-1] if data.endswith(b"\n") else data
    content_type = f'text/{subtype}; charset="utf-8"'
    if data.isascii() and max(map(len, joined.split(b"\n"))) <= _FOLD_AT:
        return content_type, "7bit", joined.decode("ascii") + "\n"
    body = binascii.b2a_qp(joined + b"\n", istext=True).decode("ascii")
    return content_type, "quoted-printable", body


def _crlf(body: str) -> str:
    # Every line break as CRLF, as `email.generator` writes them.
    if "\r" not in body:
        return body.replace("\n", "\r\n")
    return "\r\n".join(_NEWLINE.split(body))


def _boundary(*bodies: str) -> str:
    # "=_" cannot occur in quoted-printable text and the rest is random, as in `email`.
    while True:
        boundary = f"=_{secrets.token_hex(16)}"
        if not any(boundary in body for body in bodies):
            return boundary
