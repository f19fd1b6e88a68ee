"""Reading a mail's headers and MIME parts: decoded, one line, bounded, never raising.

Also our addresses in them: the token of a VERP address (``bounces+TOKEN@``, ``reply+TOKEN@``)
and an address as a report writes it, spelled as we store it.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr

from reengage.addresses import normalize_or_keep

BOUNCE_PREFIX = "bounces"
REPLY_PREFIX = "reply"

SUBJECT_LIMIT = 300
DIAGNOSTIC_LIMIT = 500
SCAN_LIMIT = 200_000  # what is handed to regex-heavy parsers, so a huge body stays cheap
_BREAKS = re.compile(r"[\s\x00-\x1f\x7f\x85\u2028\u2029]+")
_MSGID = re.compile(r"<([^<>\s]{1,400})>")
STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def token_in(address: str, prefix: str) -> str | None:
    """The token of a VERP address: ``token_in("bounces+AbC_-9@acme.example", "bounces")``."""
    _, addr = parseaddr(address) if "<" in address else ("", address)
    local, at, _ = addr.strip().strip("<>").rpartition("@")
    if not at:
        return None
    head, plus, token = local.partition("+")
    if not plus or head.lower() != prefix.lower():
        return None
    token = token.strip()
    return token if re.fullmatch(r"[A-Za-z0-9_\-.=]{1,128}", token) else None


def normal_address(address: str) -> str:
    """An address as stored and compared (:func:`reengage.addresses.normalize`), from how
    a report writes it: ``<Ana@BÜCHER.example.>`` with a line end and
    ``ana@xn--bcher-kva.example`` are one address. A domain IDNA cannot spell stays as
    written: it never matches one of ours."""
    text = address.strip().strip("<>").strip()
    local, at, domain = text.rpartition("@")
    if at:
        text = f"{local.strip()}@{domain.strip().rstrip('.')}"
    return normalize_or_keep(text)


# --- headers -------------------------------------------------------------------------------


def header(msg: Message | None, name: str) -> str:
    """A header decoded from RFC 2047 and any charset, "" when absent or undecodable."""
    if msg is None:
        return ""
    try:
        values = msg.get_all(name) or []
    except Exception:
        return ""
    if not values:
        return ""
    value = values[0]
    try:
        parts = decode_header(value)
    except Exception:
        return str(value)
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode(chunk, charset))
    return "".join(out)


def decode(data: bytes, charset: str | None) -> str:
    """Bytes as text: the declared charset if it works, else UTF-8, else Windows-1252."""
    for candidate in (charset, "utf-8"):
        if not candidate or candidate == "unknown-8bit":
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


def one_line(text: str, limit: int) -> str:
    """Text on one line (breaks and control characters to spaces), cut to ``limit``."""
    return _BREAKS.sub(" ", text).strip()[:limit]


def addresses_in(msg: Message | None, *names: str, lower: bool = True) -> tuple[str, ...]:
    """The addresses in the named headers, in order, each once."""
    found: list[str] = []
    for name in names:
        value = one_line(header(msg, name), 2000)
        for _, addr in getaddresses([value]) if value else ():
            addr = addr.strip().lower() if lower else addr.strip()
            if "@" in addr and addr not in found:
                found.append(addr)
    return tuple(found)


def msgids(text: str) -> tuple[str, ...]:
    """The Message-IDs (without brackets) written in a header such as References, each once."""
    found: list[str] = []
    for mid in _MSGID.findall(text):
        if mid not in found:
            found.append(mid)
    return tuple(found)


def our_token(
    header_addresses: tuple[str, ...], rcpts: tuple[str, ...], original: Message | None = None
) -> str | None:
    """The token from the envelope first, then our address in the headers, then the original."""
    candidates = [*rcpts, *header_addresses]
    if original is not None:
        candidates += addresses_in(original, "Return-Path", "Reply-To", "Sender", lower=False)
    for address in candidates:
        for prefix in (BOUNCE_PREFIX, REPLY_PREFIX):
            token = token_in(address, prefix)
            if token is not None:
                return token
    return None


# --- MIME structure ------------------------------------------------------------------------


def content_type(part: Message) -> str:
    """The content type; a header the email package cannot read counts as text/plain (RFC 2045)."""
    try:
        return part.get_content_type()
    except Exception:  # compat32 hands back a Header object for 8-bit bytes, and then trips on it
        return "text/plain"


def report_type(msg: Message) -> str:
    """The ``report-type`` parameter of a multipart/report, lowercased; "" if unreadable."""
    try:
        return str(msg.get_param("report-type", header="content-type") or "").lower()
    except Exception:
        return ""


def walk(msg: Message) -> Iterator[Message]:
    """Every part, without descending into attached messages (a forward is not our content)."""
    yield msg
    if content_type(msg).partition("/")[0] == "message":
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for part in payload:
            if isinstance(part, Message):
                yield from walk(part)


def text_of(part: Message) -> str:
    """A part's decoded text, bounded so a huge part stays cheap to scan."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:  # a Content-Type with raw 8-bit bytes in it
        charset = None
    return decode(payload[: SCAN_LIMIT * 4], charset)


def blocks(part: Message) -> list[Message]:
    """Field blocks of a report part: parsed by the email package, or by us when it didn't."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = text_of(part).replace("\r\n", "\n")
    return [email.message_from_string(b) for b in re.split(r"\n\s*\n", text) if b.strip()]


def returned_original(msg: Message) -> Message | None:
    """The copy of our mail that a bounce or complaint carries: whole or headers only."""
    for part in walk(msg):
        ctype = content_type(part)
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            return email.message_from_string(text_of(part))
    return None
