"""What one inbound mail is: a bounce, a complaint, an auto-reply, a reply, or nothing we know.

Pure: raw bytes and the envelope recipients in, an :class:`Inbound` out; no I/O, never raises.
The order of the checks is the point: a DSN (RFC 3464) carries ``Auto-Submitted:
auto-replied`` by rule, so delivery reports and feedback reports (ARF, RFC 5965) are
recognised before auto-reply headers; bounces that are not DSNs go to flufl.bounce
(Mailman's detectors). Reply text is cut from its quoted history by mail-parser-reply, and
both libraries live behind this module only.
"""

from __future__ import annotations

import email
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum

from flufl.bounce import all_failures
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from mailparser_reply import EmailMessage as _ReplyText

from reengage.addresses import normalize_or_keep
from reengage.logs import get_logger

log = get_logger(__name__)
# flufl.bounce narrates every detector it tries at INFO; only its failures are worth a line.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

BOUNCE_PREFIX = "bounces"
REPLY_PREFIX = "reply"

_SUBJECT_LIMIT = 300
_DIAGNOSTIC_LIMIT = 500
_TEXT_LIMIT = 20_000  # what is kept of a reply: a person's answer, not an attachment
_SCAN_LIMIT = 200_000  # what is handed to regex-heavy parsers, so a huge body stays cheap
_BREAKS = re.compile(r"[\s\x00-\x1f\x7f\x85\u2028\u2029]+")
_MSGID = re.compile(r"<([^<>\s]{1,400})>")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_INLINE_MSGID = re.compile(r"^\s*Message-ID:\s*(<[^>\n]+>)", re.IGNORECASE | re.MULTILINE)
_LONG_LINE = re.compile(r"^[^\n]{200,}$", re.MULTILINE)
_PARKED = re.compile(r"\ue000(\d+)\ue001")
_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -]")
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mail.daemon"}
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status notification|failure|has failed|problem)|"
    r"mail delivery (?:failed|failure|system|subsystem)|returned mail|failure notice|"
    r"could not be delivered|delivery notification|nondeliverable|non-delivery|"
    r"unzustellbar|nicht zustellbar|non remis|no entregado|退信",
    re.IGNORECASE,
)
# Subjects that out-of-office and vacation responders use, in the languages our customers write.
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:auto|automatisch|autom\.?)\s*:|"
    r"out of (?:the )?office|automatic reply|auto[- ]?reply|autoresponse|auto[- ]?response|"
    r"vacation (?:reply|message|notice)|away from (?:the |my )?office|"
    r"abwesenheitsnotiz|automatische antwort|abwesenheit|nicht im b[üu]ro|"
    r"r[ée]ponse automatique|absence du bureau|absent du bureau|"
    r"respuesta autom[áa]tica|fuera de (?:la )?oficina|"
    r"risposta automatica|fuori ufficio|automatisch antwoord|afwezig|"
    r"resposta autom[áa]tica|automatiskt svar|autosvar|odpowied[źz] automatyczna|"
    r"自动回复|自動回覆|自動回信|自動返信|自動応答|不在のお知らせ",
    re.IGNORECASE,
)
# Languages whose quote headers and signature lines mail-parser-reply knows; the Danish and
# Swedish lists treat any line starting with "Tak"/"Mvh" as a signature, too eager for English.
_REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "zh", "ja")


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


UNREADABLE = "the mail could not be read"  # the diagnostic of a mail that did not parse


def classify(raw: bytes, recipients: Sequence[str] = ()) -> Inbound:
    """Say what one received mail is; malformed input gives UNKNOWN rather than an error."""
    try:
        msg = email.message_from_bytes(raw)
        return _classify(msg, tuple(recipients))
    except Exception as exc:  # a mail is data from anyone: no shape of it may stop the listener
        log.warning("inbound_unparsable", error=repr(exc)[:300], size=len(raw))
        unreadable = _unknown(token=_token((), tuple(recipients)))
        return replace(unreadable, diagnostic=f"{UNREADABLE}: {type(exc).__name__}")


def _unknown(token: str | None = None, subject: str = "", sender: str = "") -> Inbound:
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


def _classify(msg: Message, rcpts: tuple[str, ...]) -> Inbound:
    subject = _one_line(_header(msg, "Subject"), _SUBJECT_LIMIT)
    sender = _addresses(msg, "From")[:1]
    original = _returned_original(msg)
    headers_to = _addresses(msg, "To", "Cc", "Delivered-To", "X-Original-To", lower=False)
    base = replace(
        _unknown(_token(headers_to, rcpts, original), subject, sender[0] if sender else ""),
        original_subject=_one_line(_header(original, "Subject"), _SUBJECT_LIMIT)
        if original is not None
        else None,
    )
    original_ids = _ids(_header(original, "Message-ID"))

    if _ctype(msg) == "multipart/report" and "feedback" in _report_type(msg):
        found = _feedback(msg, original, base)
        if found is not None:
            return replace(found, message_ids=original_ids or _arf_ids(msg))
    dsn = _delivery_status(msg, base)
    if dsn is not None:
        return replace(dsn, message_ids=original_ids)

    reason = _auto_reason(msg, subject, base.token is not None)
    to_bounce_address = any(token_in(a, BOUNCE_PREFIX) for a in (*rcpts, *headers_to))
    if _looks_like_bounce(msg, base, reason, to_bounce_address):
        bounce = _heuristic_bounce(msg, base)
        if bounce is not None:
            return replace(bounce, message_ids=original_ids or bounce.message_ids)

    thread_ids = _ids(_header(msg, "In-Reply-To") + " " + _header(msg, "References"))
    if reason is not None:
        return replace(
            base,
            kind=InboundKind.AUTO_REPLY,
            auto_reason=reason,
            message_ids=thread_ids,
            recipients=sender,
            text=_reply_text(msg),
        )
    if thread_ids or any(token_in(a, REPLY_PREFIX) for a in (*rcpts, *headers_to)):
        return replace(
            base,
            kind=InboundKind.REPLY,
            message_ids=thread_ids,
            recipients=sender,
            text=_reply_text(msg),
        )
    return base


# --- headers -------------------------------------------------------------------------------


def _header(msg: Message | None, name: str) -> str:
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
            out.append(_decode(chunk, charset))
    return "".join(out)


def _decode(data: bytes, charset: str | None) -> str:
    """Bytes as text: the declared charset if it works, else UTF-8, else Windows-1252."""
    for candidate in (charset, "utf-8"):
        if not candidate or candidate == "unknown-8bit":
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


def _one_line(text: str, limit: int) -> str:
    return _BREAKS.sub(" ", text).strip()[:limit]


def _addresses(msg: Message | None, *names: str, lower: bool = True) -> tuple[str, ...]:
    found: list[str] = []
    for name in names:
        value = _one_line(_header(msg, name), 2000)
        for _, addr in getaddresses([value]) if value else ():
            addr = addr.strip().lower() if lower else addr.strip()
            if "@" in addr and addr not in found:
                found.append(addr)
    return tuple(found)


def _ids(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for mid in _MSGID.findall(text):
        if mid not in found:
            found.append(mid)
    return tuple(found)


def _token(
    header_addresses: tuple[str, ...], rcpts: tuple[str, ...], original: Message | None = None
) -> str | None:
    """The token from the envelope first, then our address in the headers, then the original."""
    candidates = [*rcpts, *header_addresses]
    if original is not None:
        candidates += _addresses(original, "Return-Path", "Reply-To", "Sender", lower=False)
    for address in candidates:
        for prefix in (BOUNCE_PREFIX, REPLY_PREFIX):
            token = token_in(address, prefix)
            if token is not None:
                return token
    return None


# --- MIME structure ------------------------------------------------------------------------


def _ctype(part: Message) -> str:
    """The content type; a header the email package cannot read counts as text/plain (RFC 2045)."""
    try:
        return part.get_content_type()
    except Exception:  # compat32 hands back a Header object for 8-bit bytes, and then trips on it
        return "text/plain"


def _report_type(msg: Message) -> str:
    try:
        return str(msg.get_param("report-type", header="content-type") or "").lower()
    except Exception:
        return ""


def _walk(msg: Message) -> Iterator[Message]:
    """Every part, without descending into attached messages (a forward is not our content)."""
    yield msg
    if _ctype(msg).partition("/")[0] == "message":
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for part in payload:
            if isinstance(part, Message):
                yield from _walk(part)


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:  # a Content-Type with raw 8-bit bytes in it
        charset = None
    return _decode(payload[: _SCAN_LIMIT * 4], charset)


def _blocks(part: Message) -> list[Message]:
    """Field blocks of a report part: parsed by the email package, or by us when it didn't."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = _text_of(part).replace("\r\n", "\n")
    return [email.message_from_string(b) for b in re.split(r"\n\s*\n", text) if b.strip()]


def _returned_original(msg: Message) -> Message | None:
    """The copy of our mail that a bounce or complaint carries: whole or headers only."""
    for part in _walk(msg):
        ctype = _ctype(part)
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            return email.message_from_string(_text_of(part))
    return None


# --- delivery status notifications (RFC 3464) ----------------------------------------------


def _field(block: Message, name: str) -> str:
    return _one_line(_header(block, name), 2000)


def _typed_address(value: str) -> str:
    """``rfc822; User@Example.com`` → ``user@example.com``."""
    _, _, addr = value.rpartition(";")
    return addr.strip().strip("<>").lower()


def _delivery_status(msg: Message, base: Inbound) -> Inbound | None:
    hard: list[tuple[str, str | None, str | None]] = []
    soft: list[tuple[str, str | None, str | None]] = []
    for part in _walk(msg):
        if _ctype(part) not in (
            "message/delivery-status",
            "message/global-delivery-status",
            "text/delivery-status",
        ):
            continue
        for block in _blocks(part)[1:] or _blocks(part):
            # Both names count: a forwarding mailbox reports the final address, and the
            # original one is the address we mailed.
            address = " ".join(
                _typed_address(_field(block, name))
                for name in ("Final-Recipient", "Original-Recipient")
            ).strip()
            action = _field(block, "Action").lower()
            match = _STATUS.search(_field(block, "Status"))
            status = match.group(0) if match else None
            diagnostic = _diagnostic(_field(block, "Diagnostic-Code"))
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
    return _one_line(text, _DIAGNOSTIC_LIMIT) or None


# --- feedback reports (RFC 5965) -----------------------------------------------------------


def _feedback(msg: Message, original: Message | None, base: Inbound) -> Inbound | None:
    for part in _walk(msg):
        if _ctype(part) != "message/feedback-report":
            continue
        fields = part.get_payload()
        block = (
            fields[0]
            if isinstance(fields, list) and fields and isinstance(fields[0], Message)
            else (_blocks(part) or [Message()])[0]
        )
        rcpts = [
            _typed_address(v).lower()
            for v in (block.get_all("Original-Rcpt-To") or [])
            if "@" in str(v)
        ]
        if not rcpts:
            rcpts = list(_addresses(original, "To"))
        mail_from = _field(block, "Original-Mail-From").rpartition(";")[2].strip(" <>")
        return replace(
            base,
            kind=InboundKind.COMPLAINT,
            token=base.token or token_in(mail_from, BOUNCE_PREFIX),
            recipients=tuple(dict.fromkeys(rcpts)),
            feedback_type=_field(block, "Feedback-Type").lower() or "abuse",
        )
    return None


def _arf_ids(msg: Message) -> tuple[str, ...]:
    """Some providers name the original only in the report's Original-Message-ID field."""
    ids: list[str] = []
    for part in _walk(msg):
        if _ctype(part) == "message/feedback-report":
            for block in _blocks(part):
                ids += _ids(_header(block, "Original-Message-ID"))
    return tuple(dict.fromkeys(ids))


# --- bounces that are not DSNs (flufl.bounce) ----------------------------------------------


def _looks_like_bounce(
    msg: Message, base: Inbound, auto_reason: str | None, to_bounce_address: bool
) -> bool:
    """Only mail that looks like a bounce goes to the heuristic detectors: they guess."""
    local = base.sender.partition("@")[0]
    return (
        local in _DAEMONS
        or bool(_BOUNCE_SUBJECT.search(base.subject))
        or _header(msg, "Return-Path").strip() == "<>"
        or _ctype(msg) == "multipart/report"
        # What reaches the Return-Path without an auto-reply mark is most likely a bounce.
        or (to_bounce_address and auto_reason is None)
    )


def _heuristic_bounce(msg: Message, base: Inbound) -> Inbound | None:
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
    own = set(_ids(_header(msg, "Message-ID")))
    found: list[str] = []
    for part in _walk(msg):
        if _ctype(part).partition("/")[0] == "text":
            for line in _INLINE_MSGID.findall(_text_of(part)[:_SCAN_LIMIT]):
                found += [i for i in _ids(line) if i not in own]
    return tuple(dict.fromkeys(found))


def _status_in_text(msg: Message) -> tuple[str | None, str | None]:
    """The first enhanced status code and SMTP reply line in the bounce's own text."""
    for part in _walk(msg):
        if _ctype(part) != "text/plain":
            continue
        for line in _text_of(part)[:_SCAN_LIMIT].splitlines():
            match = _STATUS.search(line)
            if match or _SMTP_REPLY.search(line):
                status = match.group(0) if match and match.group(1) in "45" else None
                return status, _one_line(line, _DIAGNOSTIC_LIMIT) or None
        break
    return None, None


# --- auto-replies (RFC 3834 and what responders really send) -------------------------------


def _auto_reason(msg: Message, subject: str, has_token: bool) -> str | None:
    auto = _one_line(_header(msg, "Auto-Submitted"), 100)
    if auto and auto.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-AutoReply-From"):
        value = _one_line(_header(msg, name), 100)
        if value and value.lower() not in ("no", "false", "0"):
            return f"{name}: {value}"
    suppress = _one_line(_header(msg, "X-Auto-Response-Suppress"), 100)
    if re.search(r"\b(?:oof|all)\b", suppress, re.IGNORECASE):
        return f"X-Auto-Response-Suppress: {suppress}"
    is_reply = has_token or bool(_header(msg, "In-Reply-To") or _header(msg, "References"))
    for name in ("Precedence", "X-Precedence"):
        value = _one_line(_header(msg, name), 100).lower()
        if value == "auto_reply" or (is_reply and value in ("bulk", "junk")):
            return f"{name}: {value}"
    match = _AUTO_SUBJECT.search(subject)
    if match:
        return f"subject: {match.group(0).strip()}"
    return None


# --- reply text ----------------------------------------------------------------------------

_HTML_CONFIG = ParserConfig(
    css={**CSS_PROFILES["strict"], "blockquote": HtmlElement(display=Display.none)}
)


def _reply_text(msg: Message) -> str | None:
    """The words the person just wrote: plain part preferred, HTML as text otherwise."""
    plain = html = None
    for part in _walk(msg):
        if _ctype(part).partition("/")[0] != "text" or _is_attachment(part):
            continue
        if _ctype(part) == "text/plain" and plain is None:
            plain = _text_of(part)
        elif _ctype(part) == "text/html" and html is None:
            html = _text_of(part)
    if plain is None and html is not None:
        try:
            plain = get_text(html[: _SCAN_LIMIT * 2], _HTML_CONFIG)
        except Exception:  # lxml refuses some documents (e.g. an encoding declaration in str)
            plain = re.sub(r"<[^>]*>", " ", html[:_SCAN_LIMIT])
    if plain is None:
        return None
    return _new_text(plain[: _SCAN_LIMIT // 2])


def _is_attachment(part: Message) -> bool:
    return str(part.get("Content-Disposition", "")).strip().lower().startswith("attachment")


def _new_text(body: str) -> str:
    """Cut quoted history and signature; ``>`` lines left between new lines go too."""
    body = body.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    # The parser strips each line itself; doing it first, and collapsing blank runs, keeps
    # its ``\s*^`` signature pattern from going quadratic on a page of empty lines.
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in body.split("\n")))
    # The parser's "On ... wrote:" pattern backtracks badly on long lines (minutes for one
    # 100 kB line). No quote header is that long, so long lines are parked behind a
    # placeholder while it runs and put back afterwards.
    parked: list[str] = []

    def park(match: re.Match[str]) -> str:
        parked.append(match.group(0))
        return f"\ue000{len(parked) - 1}\ue001"

    short = _LONG_LINE.sub(park, body)
    try:
        parsed = _ReplyText(text=short, languages=list(_REPLY_LANGUAGES), keep_hyphen_lists=True)
        replies = parsed.read().replies
        first = replies[0] if replies else None
        # A mail that starts with a quote header has no new text above it.
        text = "" if first is None or first.headers else first.body
    except Exception:  # the parser is regexes over text anyone wrote; keep the words then
        text = short
    text = _PARKED.sub(lambda m: parked[int(m.group(1))].strip(), text)
    kept = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return text[:_TEXT_LIMIT]
