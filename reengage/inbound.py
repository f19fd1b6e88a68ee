"""Inbound mail: an SMTP listener (aiosmtpd) for bounces, complaints, replies and mailto
unsubscribes, pointed at by the MX of ``REENGAGE_INBOUND_DOMAIN``.

Each mail is classified (``mailparse``) and recorded (``mail_responses``) before the listener
answers 250, so an accepted mail is never lost: when the database cannot take it, the
listener answers 451 and the sending server tries again later. What a mail says is believed
only as far as it is about mail we sent (see ``mail_responses``). Mail to a signed
``unsubscribe+KEY.SIGNATURE@`` (the mailto in List-Unsubscribe) unsubscribes at once; an
unsigned one acts on nobody. A bounce acts only when delivered to its message's signed
``bounces+KEY.SIGNATURE@`` (the envelope sender, which replies and forwards do not show);
a complaint there too, or elsewhere when DKIM-signed by a feedback-loop provider listed in
``REENGAGE_COMPLAINT_REPORTERS``. Nothing is ever relayed: recipients outside the inbound domain
are refused. Anyone can connect, so everything is bounded: a mail's size, its recipients,
the connections at once and the time one mail may take (its database work is a few short
transactions in a worker thread, never on the event loop).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import SMTP

from reengage import mail_responses, responses
from reengage.compose import UNSIGNED_BOUNCE_KEY_CHARS, signed_unsubscribe_key
from reengage.config import Settings
from reengage.dnscheck.lookup import LookupFailed, dkim_txt
from reengage.errors import ReengageError
from reengage.logs import get_logger
from reengage.mail_responses import Arrival
from reengage.mailparse import Inbound, InboundKind, classify, token_in
from reengage.responses import Policy, Recorded
from reengage.store import Store

log = get_logger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one sender may ask of the listener (the ``REENGAGE_INBOUND_*`` settings)."""

    max_bytes: int = 4 * 1024 * 1024  # a bounce quoting one of our mails (≤ 1 MB) fits
    max_recipients: int = 20  # a real bounce or reply goes to one of our addresses
    max_connections: int = 20
    processing_seconds: float = 30.0
    max_per_client: int = 5  # connections at once from one address

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits the settings give."""
        return cls(
            settings.inbound_max_bytes,
            settings.inbound_max_recipients,
            settings.inbound_max_connections,
            settings.inbound_processing_seconds,
            settings.inbound_max_connections_per_client,
        )


class TooSlow(ReengageError):
    """One inbound mail took longer than its time to classify and record."""


class InboundHandler:
    """aiosmtpd hooks: accept our addresses, record each mail before saying 250."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        policy: Policy | None = None,
        domain: str | None = None,
        *,
        unsubscribe_secrets: Sequence[str] = (),
        limits: Limits | None = None,
        complaint_reporters: Sequence[str] = (),
        dkim_dns: DnsTxt | None = None,
    ) -> None:
        self.store, self.clock, self.domain = store, clock, domain
        self.policy = policy or Policy()
        # The secret key first, then the previous ones: they verify mailto unsubscribes.
        self.unsubscribe_secrets = tuple(unsubscribe_secrets)
        self.limits = limits or Limits()
        # Feedback-loop providers whose DKIM-signed reports act wherever they arrive.
        self.complaint_reporters = tuple(
            d.strip().strip(".").lower() for d in complaint_reporters if d.strip()
        )
        # Where the keys of reports' DKIM signatures are looked up: the configured resolver
        # (from_settings), the system's when none is given (tests hand in their own).
        self.dkim_dns = dkim_dns or dkim_txt(None, DNS_TIMEOUT)
        self.recorded: list[Recorded] = []  # the latest outcomes, for the demo and tests

    @classmethod
    def from_settings(
        cls, store: Store, clock: Callable[[], datetime], policy: Policy, settings: Settings
    ) -> InboundHandler:
        """The handler the daemon's listener and the mailbox poller share."""
        return cls(
            store,
            clock,
            policy,
            settings.inbound_domain,
            # The key the mail's mailto: unsubscribe was signed with, or one it rotated out of.
            unsubscribe_secrets=[settings.require_secret_key(), *settings.previous_secrets()],
            limits=Limits.from_settings(settings),
            complaint_reporters=(settings.complaint_reporters or "").split(","),
            dkim_dns=dkim_txt(settings.dns_address(), settings.dns_timeout_seconds),
        )

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.domain and not address.lower().endswith("@" + self.domain.lower()):
            return "550 5.7.1 this server only receives mail for its own domain"
        if len(envelope.rcpt_tos) >= self.limits.max_recipients:
            # RFC 5321 4.5.3.1.10: a limit on recipients is answered 452; the sender sends
            # the rest in another transaction.
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        deadline = time.monotonic() + self.limits.processing_seconds
        work = asyncio.to_thread(self.receive, raw, list(envelope.rcpt_tos), deadline)
        try:
            # A little past the deadline: the thread stops itself at it between steps.
            done = await asyncio.wait_for(work, self.limits.processing_seconds + 5)
        except (ReengageError, TimeoutError) as exc:
            log.error("inbound_not_recorded", error=str(exc) or type(exc).__name__)
            return "451 4.3.0 cannot record this mail right now; please try again later"
        self.recorded = [*self.recorded[-99:], done]
        return "250 OK recorded"

    def receive(
        self, raw: bytes, recipients: Sequence[str], deadline: float | None = None
    ) -> Recorded:
        """Classify and record one mail (runs in a worker thread); each database step is
        its own short transaction (or all one, inside ``Store.atomic``: the mailbox poller),
        and none starts after ``deadline`` (monotonic). Also the mailbox poller's record."""
        now = self.clock()
        for rcpt in recipients:
            token = token_in(rcpt, "unsubscribe")
            if token is not None:
                return self._unsubscribe(token, rcpt, now)
        mail = classify(raw, recipients)
        if deadline is not None and time.monotonic() > deadline:
            raise TooSlow(f"classifying took over {self.limits.processing_seconds:g} s")
        arrival = self._arrival(raw, mail)
        if deadline is not None and time.monotonic() > deadline:
            raise TooSlow(f"checking the report took over {self.limits.processing_seconds:g} s")
        done = mail_responses.record_inbound(self.store, mail, now, self.policy, arrival)
        log.info(
            "inbound_recorded",
            kind=done.kind,
            action=done.action,
            matched=done.message is not None,
            sender=mail.sender,
        )
        return done

    def _arrival(self, raw: bytes, mail: Inbound) -> Arrival:
        """Where a bounce or complaint arrived, and whether a listed feedback loop signed it."""
        if mail.kind not in _REPORTS:
            return Arrival()
        if mail.bounce_token is not None:
            return self._bounce_address(mail.bounce_token)
        if mail.kind is InboundKind.COMPLAINT and self.complaint_reporters:
            return Arrival(
                reporter=reporter_signature(raw, self.complaint_reporters, self.dkim_dns)
            )
        return Arrival()

    def _bounce_address(self, token: str) -> Arrival:
        """The message a ``bounces+`` address names: signed (``KEY.SIGNATURE``), or the bare
        key of mail sent before bounce addresses were signed (a 24-character key)."""
        if "." not in token:
            ref = responses.message(self.store, token)
            if ref is None:
                return Arrival(problem="no_message")
            if len(ref.token) != UNSIGNED_BOUNCE_KEY_CHARS:
                return Arrival(problem="bad_signature")  # its mail carried a signed address
            return Arrival(verp=ref)
        key = signed_unsubscribe_key(token, self.unsubscribe_secrets, "bounce")
        if key is None:
            return Arrival(problem="bad_signature")
        ref = responses.message(self.store, key)
        if ref is None:  # an MTA lower-cased the address; the signature is over the key folded
            found = self.store.responses.messages_by_folded_token(key)
            ref = found[0] if len(found) == 1 else None
        return Arrival(verp=ref) if ref is not None else Arrival(problem="no_message")

    def _unsubscribe(self, token: str, address: str, now: datetime) -> Recorded:
        """A mail to our List-Unsubscribe mailto: it acts only when its signature is ours."""
        key = signed_unsubscribe_key(token, self.unsubscribe_secrets)
        if key is None:
            return mail_responses.unmatched_unsubscribe(self.store, now, "bad_signature", address)
        ref = responses.message(self.store, key)
        if ref is None:  # an MTA lower-cased the address; the signature is over the key folded
            found = self.store.responses.messages_by_folded_token(key)
            ref = found[0] if len(found) == 1 else None
        if ref is None:
            return mail_responses.unmatched_unsubscribe(self.store, now, "no_message", address)
        responses.unsubscribe(self.store, ref, now, source="mailto")
        return Recorded("unsubscribe", "suppressed", ref)


_REPORTS = (InboundKind.HARD_BOUNCE, InboundKind.SOFT_BOUNCE, InboundKind.COMPLAINT)
# dkimpy's DNS hook: (name, timeout=...) -> the TXT record's bytes, or None.
DnsTxt = Callable[..., bytes | None]
DNS_TIMEOUT = 5.0  # seconds a key lookup waits when no setting says (REENGAGE_DNS_TIMEOUT_SECONDS)
_MAX_SIGNATURES = 5  # a report with more DKIM signatures than this is not checked further


def reporter_signature(
    raw: bytes, reporters: Sequence[str], dns: DnsTxt | None = None
) -> str | None:
    """The listed domain (or a subdomain of one) whose DKIM signature on ``raw`` verifies;
    None when none does. Keys are looked up only under listed domains, so a report cannot
    make the receiver query a name of the sender's choosing."""
    import dkim  # only a complaint at a generic address with reporters configured needs it

    def listed(domain: str) -> bool:
        return any(domain == r or domain.endswith("." + r) for r in reporters)

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        text = name.decode("ascii", "replace").rstrip(".").lower()
        _, found, domain = text.partition("._domainkey.")
        if not found or not listed(domain):
            return None
        return (dns or dkim_txt(None, DNS_TIMEOUT))(name, timeout=timeout)

    try:
        checker = dkim.DKIM(raw)
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
        for index in range(min(count, _MAX_SIGNATURES)):
            try:
                if checker.verify(index, dnsfunc=lookup):
                    domain = (checker.domain or b"").decode("ascii", "replace").lower()
                    if listed(domain):
                        return domain
            except LookupFailed as exc:  # the DNS server failed: the operator must know
                log.warning("report_key_lookup_failed", error=str(exc)[:300])
            except Exception as exc:  # a malformed signature or key: this one does not vouch
                log.info("report_signature_invalid", error=repr(exc)[:200])
    except Exception as exc:  # a mail from anyone: no shape of it may stop the listener
        log.info("report_signature_unreadable", error=repr(exc)[:200])
    return None


class _Listener(SMTP):
    """aiosmtpd's SMTP, refusing a connection beyond the limits with 421 (RFC 5321 3.8):
    all connections at once, and those from one address (so that one sender holding many
    open cannot keep the bounces of everyone else out)."""

    def __init__(self, handler: InboundHandler, open_now: Counter[str], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._open_now, self._client = open_now, ""
        self._refused = False
        self._limits = handler.limits

    def connection_made(self, transport: Any) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        total = self._open_now[ALL]
        if total >= self._limits.max_connections or (
            self._open_now[client] >= self._limits.max_per_client
        ):
            self._refused = True
            transport.write(b"421 4.7.0 too many connections; please try again later\r\n")
            transport.close()
            log.warning("inbound_connection_refused", open=total, client=client)
            return
        self._client = client
        self._open_now[ALL] += 1
        self._open_now[client] += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._open_now[ALL] -= 1
        self._open_now[self._client] -= 1
        if not self._open_now[self._client]:
            del self._open_now[self._client]  # no memory of every address ever seen
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        return False if self._refused else super().eof_received()


ALL = ""  # the key of every connection in the listener's counter


async def serve(
    handler: InboundHandler, host: str, port: int, *, hostname: str | None = None
) -> asyncio.Server:
    """Start listening on the running loop; close the returned server to stop."""
    loop = asyncio.get_running_loop()
    # Connections being served, in all and per address, shared by this server's protocols.
    open_now: Counter[str] = Counter()
    return await loop.create_server(
        lambda: _Listener(
            handler,
            open_now,
            hostname=hostname or handler.domain or host,
            data_size_limit=handler.limits.max_bytes,
            enable_SMTPUTF8=True,
            timeout=60,
        ),
        host=host,
        port=port,
    )
