"""Polling the inbound mailbox: each mail goes through the SMTP listener's own classify and
record (``InboundHandler.receive``, handed in as ``record``), then it is marked.

Never lost: a mail is moved, flagged or deleted only after what it did is committed; a
mail that fails to record stays as it was and is tried again at the next poll. A mail the
mailbox refuses to move or flag (a folder it will not make) stays too, recorded: the
others go on, and a poller that keeps failing to mark says so once (``Outage``) and on
/metrics and /healthz. A stop asked for (SIGTERM) ends a poll between two mails. Never
twice: what a mail did and a receipt keyed on its bytes (SHA-256) are committed in one
transaction, so a mail read again (the poller stopped between recording and marking, or
another worker polls the same mailbox) is recognised and only marked. A mail that names
no mail of ours is recorded as the listener would (kept for review when it is a bounce
or a reply) and then left in the mailbox or moved aside, never deleted. A mail over the
size limit is not read: it is noted for review and left where it is.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from reengage import metrics
from reengage.config import Settings
from reengage.errors import ConfigError, MailboxError, MarkRefused, StoreError
from reengage.logs import get_logger
from reengage.mailbox import Item, Mailbox, MailboxOptions, MailboxUrl, open_mailbox, parse_url
from reengage.outage import Outage
from reengage.responses import Recorded
from reengage.store import Store

log = get_logger(__name__)

# Where a delivering server writes the envelope recipient, and where the sender did.
_DELIVERY_HEADERS = {"delivered-to", "x-original-to", "envelope-to", "x-envelope-to"}
_ADDRESSED_HEADERS = ("To", "Cc")
_MAX_RECIPIENTS = 20


@dataclass
class PollReport:
    """What one poll did."""

    recorded: Counter[str] = field(default_factory=Counter)  # kind/action → mails
    duplicates: int = 0  # recorded before (a poll stopped before marking them)
    not_ours: int = 0  # left in the mailbox or moved aside
    too_large: int = 0
    failed: int = 0  # could not be recorded: left as they were, tried again next poll
    marked: int = 0  # moved, flagged, deleted or set aside
    unmarked: int = 0  # recorded, but the mailbox refused to mark them: read again next poll
    mark_error: str | None = None  # why the last of those was refused
    stopped: bool = False  # a stop was asked for: the rest waits for the next poll
    error: str | None = None  # the mailbox went away mid-poll: the rest waits for the next

    def summary(self) -> str:
        """One line for a person."""
        parts = [f"{sum(self.recorded.values())} recorded"]
        parts += [f"{k} {v}" for k, v in sorted(self.recorded.items())]
        for name in ("duplicates", "not_ours", "too_large", "failed", "unmarked"):
            if getattr(self, name):
                parts.append(f"{name.replace('_', ' ')} {getattr(self, name)}")
        return ", ".join(parts)


class MailboxPoller:
    """Reads a mailbox through ``connect`` and records each mail with ``record``."""

    def __init__(
        self,
        store: Store,
        connect: Callable[[], Mailbox],
        record: Callable[[bytes, Sequence[str]], Recorded],
        clock: Callable[[], datetime],
        *,
        max_bytes: int,
        described: str = "the mailbox",
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store, self.connect, self.record, self.clock = store, connect, record, clock
        self.max_bytes, self.described, self.stopping = max_bytes, described, stopping
        # Mails this process left (POP3 cannot flag them): not read again every poll.
        self._left: set[str] = set()
        self.marking = Outage("mailbox_marking_failed", "mailbox_marking_back")
        self._busy = threading.Lock()

    def poll(self) -> PollReport:
        """Read every mail waiting, record and mark each. A mailbox that cannot be reached
        or refuses the sign-in raises :class:`MailboxError`; one that goes away midway
        ends the poll with ``error`` set; the database going away raises StoreError."""
        with self._busy:
            report = PollReport()
            box = self.connect()
            try:
                for item in box.items():
                    if self.stopping():  # what is recorded is recorded; the rest next time
                        report.stopped = True
                        break
                    if item.uid not in self._left:
                        self._one(box, item, report)
            except MailboxError as exc:
                report.error = str(exc)
                log.warning("mailbox_poll_interrupted", error=str(exc)[:500], **_counts(report))
            finally:
                box.close()
            self._note_marking(report)
        if sum(report.recorded.values()) or report.too_large or report.failed or report.stopped:
            event = "mailbox_poll_stopped" if report.stopped else "mailbox_polled"
            log.info(event, mailbox=self.described, **_counts(report))
        return report

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a poll under way to end; whether it did."""
        if not self._busy.acquire(timeout=max(timeout, 0)):
            return False
        self._busy.release()
        return True

    def _note_marking(self, report: PollReport) -> None:
        """A mailbox refusing to mark is one event per outage, and a gauge while it lasts."""
        metrics.MAILBOX_UNMARKED.set(report.unmarked)
        if report.unmarked:
            self.marking.down(
                MarkRefused(f"{report.unmarked} mail(s) recorded but left: {report.mark_error}")
            )
        elif report.marked:
            self.marking.up()

    def _mark(self, mark: Callable[[Item], None], item: Item, report: PollReport) -> bool:
        """Mark one recorded mail; a refusal leaves it (its receipt is found next time)."""
        try:
            mark(item)
        except MarkRefused as exc:
            report.unmarked += 1
            report.mark_error = str(exc)
            log.debug("mailbox_mail_not_marked", mail=item.uid, error=str(exc)[:300])
            return False
        report.marked += 1
        return True

    def _one(self, box: Mailbox, item: Item, report: PollReport) -> None:
        if item.size > self.max_bytes:
            self._too_large(box, item, item.size, report)
            return
        raw = box.fetch(item)
        if raw is None:  # another client removed it meanwhile
            return
        if len(raw) > self.max_bytes:  # the server's size was wrong
            self._too_large(box, item, len(raw), report)
            return
        key = "sha256:" + hashlib.sha256(raw).hexdigest()
        try:
            ours = self._record_once(raw, key, box.source, report)
        except StoreError as exc:  # the database is away: nothing more can be recorded now
            raise StoreError(
                f"the database could not record mail {item.uid} ({_first_line(exc)}): it "
                "stays in the mailbox for the next poll"
            ) from exc
        except Exception as exc:  # one mail's failure never stops the others; it stays
            report.failed += 1
            log.exception("mailbox_mail_not_recorded", mail=item.uid, error=repr(exc)[:300])
            return
        if ours:
            self._mark(box.done, item, report)
        else:
            report.not_ours += 1
            if self._mark(box.leave, item, report):
                self._left.add(item.uid)

    def _record_once(self, raw: bytes, key: str, source: str, report: PollReport) -> bool:
        """Record a mail and its receipt together; whether it named a mail of ours."""
        with self.store.atomic():
            if not self.store.responses.claim_mail(key, self.clock(), source):
                report.duplicates += 1
                return bool(self.store.responses.mail_was_ours(key))
            done = self.record(raw, recipients_of(raw))
            ours = done.message is not None
            outcome = f"{done.kind}/{done.action}"
            self.store.responses.mail_outcome(key, outcome, ours=ours)
        report.recorded[outcome] += 1
        return ours

    def _too_large(self, box: Mailbox, item: Item, size: int, report: PollReport) -> None:
        """Not read, so not classified: noted once for review, and left in the mailbox."""
        now = self.clock()
        with self.store.atomic():
            if self.store.responses.claim_mail(f"big:{item.uid}", now, box.source):
                self.store.responses.add_unmatched(
                    now,
                    source="mail",
                    kind="unknown",
                    reason="too_large",
                    detail=f"{size} bytes in {self.described}, over REENGAGE_INBOUND_MAX_BYTES "
                    f"({self.max_bytes}): left there unread",
                )
                self.store.responses.mail_outcome(f"big:{item.uid}", "too_large", ours=False)
                report.too_large += 1
                log.warning("mailbox_mail_too_large", mail=item.uid, size=size)
        if self._mark(box.keep, item, report):  # never moved: where the unmatched list says
            self._left.add(item.uid)


def poll_alone(poller: MailboxPoller, store: Store, worker: str, every_s: int) -> PollReport | None:
    """One poll, unless another worker holds the mailbox's lease (None then): two would
    each move the same mail (a copy too many in the folder); the receipts already keep the
    database from a second record."""
    hold = timedelta(seconds=max(every_s - 5, 5))
    if not store.locks.try_lock("poll_mailbox", worker, poller.clock(), hold):
        return None
    with store.locks.keeping("poll_mailbox", worker, poller.clock, hold):
        return poller.poll()


def mailbox_from_settings(settings: Settings) -> tuple[MailboxUrl, MailboxOptions] | None:
    """The mailbox the settings name and what to do with its mails (None without a URL);
    a malformed URL or option is a :class:`ConfigError` naming its setting."""
    imap, pop3 = settings.inbound_imap_url, settings.inbound_pop3_url
    if imap is not None and pop3 is not None:
        raise ConfigError(
            "REENGAGE_INBOUND_IMAP_URL and REENGAGE_INBOUND_POP3_URL are both set: "
            "reengage reads one mailbox; unset one of them"
        )
    secret, protocol = (imap, "imap") if imap is not None else (pop3, "pop3")
    if secret is None:
        return None
    setting = f"REENGAGE_INBOUND_{protocol.upper()}_URL"
    url = parse_url(secret.get_secret_value(), setting)
    if url.protocol != protocol:
        raise ConfigError(
            f"{setting}: {url.scheme}:// is not {protocol.upper()}; use {protocol}s://"
        )
    options = MailboxOptions(
        done=settings.inbound_mailbox_done.value,
        done_folder=settings.inbound_mailbox_done_folder,
        not_ours_folder=settings.inbound_mailbox_not_ours_folder,
        plaintext=settings.inbound_mailbox_plaintext,
    )
    options.check(url)
    return url, options


def poller_from_settings(
    settings: Settings,
    store: Store,
    record: Callable[[bytes, Sequence[str]], Recorded],
    clock: Callable[[], datetime],
    stopping: Callable[[], bool] = lambda: False,
) -> MailboxPoller | None:
    """The poller the settings describe (None without a mailbox URL), checked before
    anything connects; a poll ends between two mails once ``stopping()`` is true."""
    found = mailbox_from_settings(settings)
    if found is None:
        return None
    url, options = found
    return MailboxPoller(
        store,
        lambda: open_mailbox(url, options),
        record,
        clock,
        max_bytes=settings.inbound_max_bytes,
        described=str(url),
        stopping=stopping,
    )


def check_mailbox(settings: Settings) -> str | None:
    """Sign in to the configured mailbox and count what waits (``reengage doctor``); None
    without one. Raises what a poll would: ConfigError or MailboxError."""
    found = mailbox_from_settings(settings)
    if found is None:
        return None
    url, options = found
    box = open_mailbox(url, options)
    try:
        if box.problems:  # signed in, but what it reads could not be moved where it should
            raise MailboxError("; ".join(box.problems))
        waiting = len(box.items())
    finally:
        box.close()
    return f"{url}: signed in, {waiting} mail(s) waiting"


def recipients_of(raw: bytes) -> list[str]:
    """The addresses a mail was delivered to, as far as its headers say (a mailbox keeps
    no envelope): what the listener would have had as its RCPT TO.

    Only the delivering server's own trace headers count: the ``Delivered-To`` /
    ``X-Original-To`` (``Envelope-To``, ``X-Envelope-To``) it put at the top of the mail,
    above everything the sender wrote (after a ``Return-Path`` at most), each once. A
    sender can write such a header too, but only below the server's, so a lower
    ``Delivered-To: bounces+KEY.SIG@…`` does not make a mail a bounce. A server that puts
    its header below another one: the topmost counts. Only a mail with none of these
    headers at all falls back to its ``To`` and ``Cc``."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        values = _delivered_to(headers.items())
        if values is None:
            values = [str(v) for name in _ADDRESSED_HEADERS for v in headers.get_all(name) or ()]
        found = [address for _, address in getaddresses(values) if "@" in address]
    except Exception:  # headers from anyone: the classifier copes with none
        return []
    return list(dict.fromkeys(found))[:_MAX_RECIPIENTS]


def _delivered_to(headers: list[tuple[str, str]]) -> list[str] | None:
    """The delivering server's trace headers' values (see :func:`recipients_of`), or None
    when the mail has no trace header at all."""
    names = [name.strip().lower() for name, _ in headers]
    top = 0
    while top < len(names) and names[top] == "return-path":
        top += 1
    group: dict[str, str] = {}  # the server writes each of them once
    while top < len(names) and names[top] in _DELIVERY_HEADERS and names[top] not in group:
        group[names[top]] = str(headers[top][1])
        top += 1
    if group:
        return list(group.values())
    lower = [str(value) for name, value in headers if name.strip().lower() in _DELIVERY_HEADERS]
    return lower[:1] or None


def _first_line(exc: BaseException) -> str:
    """The driver's own words (``database is locked``), without the SQL and parameters."""
    cause = exc.__cause__ or exc
    text = str(getattr(cause, "orig", None) or cause).strip()
    return text.splitlines()[0][:200] if text else type(cause).__name__


def _counts(report: PollReport) -> dict[str, int]:
    return {
        "recorded": sum(report.recorded.values()),
        "duplicates": report.duplicates,
        "not_ours": report.not_ours,
        "too_large": report.too_large,
        "failed": report.failed,
        "unmarked": report.unmarked,
    }
