"""SMTP, and only here: a pool of persistent aiosmtplib connections with a rate limit.

Each send has one of five outcomes: sent (with the server's reply), transient (a 4xx, or a
connection lost before the message was handed over: try again later), permanent (a 5xx to
the recipient: the address bounced), refused (a 5xx to the mail itself — too large, its
content — which says nothing about the address) or unknown (the connection was lost or
timed out once the message was on its way: the server may have kept it, so it is never
sent again by itself). Retrying is the
caller's job — the database decides when — under the same message row.
"""

from __future__ import annotations

import asyncio
import email
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from enum import StrEnum
from typing import Protocol

import aiosmtplib

from reengage.config import Settings
from reengage.outbound_settings import SmtpSecurity


class Outcome(StrEnum):
    """What became of one send."""

    SENT = "sent"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"  # lost after the message went out: it may have arrived
    REFUSED = "refused"  # 5xx to the mail itself (its size, its content), not the address
    WITHDRAWN = "withdrawn"  # the caller's ``ready`` said no: nothing was sent


@dataclass(frozen=True)
class SendResult:
    """The outcome and the server's words."""

    outcome: Outcome
    response: str


class Mailer(Protocol):
    """What the dispatcher needs: send one message, close when done."""

    async def send(
        self,
        message: EmailMessage | bytes,
        *,
        sender: str,
        recipient: str,
        paced: bool = False,
        ready: Callable[[], Awaitable[bool]] | None = None,
        going_out: Callable[[], None] | None = None,
    ) -> SendResult:
        """Deliver ``message`` (or its bytes) from the envelope ``sender`` to ``recipient``
        (after waiting for the rate limits, unless ``paced`` says :meth:`pace` did).
        ``ready`` is awaited once a connection is this send's, just before anything of the
        mail goes to the server; if it says False, nothing is sent (``WITHDRAWN``).
        ``going_out`` is called when the mail itself starts to go (DATA): before that, a
        send cut short handed nothing over; from then on, the server may have kept it."""
        ...

    async def pace(self, recipient: str) -> None:
        """Wait until the rate limits let a mail to ``recipient`` go, and take that turn."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...


class SmtpMailer:
    """Up to ``pool_size`` connections kept open and reused; at most ``rate`` sends a second."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: SmtpSecurity = SmtpSecurity.NONE,
        username: str | None = None,
        password: str | None = None,
        pool_size: int = 4,
        rate_per_second: float = 0.0,
        rate_per_domain: float = 0.0,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout = timeout
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(pool_size)
        self._interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self._domain_interval = 1.0 / rate_per_domain if rate_per_domain > 0 else 0.0
        self._next_start = 0.0
        self._next_for_domain: dict[str, float] = {}
        self._rate_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        """A mailer for the configured server."""
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            pool_size=settings.smtp_connections,
            rate_per_second=settings.smtp_rate_per_second,
            rate_per_domain=settings.smtp_rate_per_domain,
        )

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            use_tls=self.security is SmtpSecurity.TLS,
            start_tls=self.security is SmtpSecurity.STARTTLS,
            tls_context=ssl.create_default_context()
            if self.security is not SmtpSecurity.NONE
            else None,
        )
        await client.connect()
        if self.username and self.password:
            await client.login(self.username, self.password)
        return client

    async def pace(self, recipient: str) -> None:
        """Wait for this recipient's turn under the rate limits (see :meth:`send`)."""
        await self._pace(recipient.rpartition("@")[2].lower())

    async def _pace(self, domain: str) -> None:
        # Reserve the next slot under both limits, then sleep until it comes.
        if not self._interval and not self._domain_interval:
            return
        async with self._rate_lock:
            now = time.monotonic()
            start = max(now, self._next_start, self._next_for_domain.get(domain, 0.0))
            if self._interval:
                self._next_start = start + self._interval
            if self._domain_interval:
                self._next_for_domain[domain] = start + self._domain_interval
        if start > now:
            await asyncio.sleep(start - now)

    async def send(
        self,
        message: EmailMessage | bytes,
        *,
        sender: str,
        recipient: str,
        paced: bool = False,
        ready: Callable[[], Awaitable[bool]] | None = None,
        going_out: Callable[[], None] | None = None,
    ) -> SendResult:
        """Send over a pooled connection; classify what happened.

        Bytes go out as they are (the caller serialized them once, cheaply); a message
        object is serialized by aiosmtplib, which also handles non-ASCII addresses.
        """
        if not paced:
            await self.pace(recipient)
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            handed_over = False  # from DATA on, a lost connection may have kept the mail
            stage = "connect"
            try:
                client = self._idle.get_nowait() if not self._idle.empty() else None
                if client is None or not client.is_connected:
                    client = await self._connect()
                if ready is not None and not await ready():
                    self._idle.put_nowait(client)  # unused: it stays good for the next
                    client = None
                    return SendResult(Outcome.WITHDRAWN, "not this worker's to send any more")
                if f"{sender}{recipient}".isascii():
                    # MAIL, RCPT and DATA one by one, to know when the message went out.
                    content = message if isinstance(message, bytes) else message.as_bytes()
                    stage = "mail"
                    await client.mail(sender)
                    stage = "rcpt"
                    await client.rcpt(recipient)
                    stage, handed_over = "data", True
                    if going_out is not None:
                        going_out()
                    response = await client.data(content)
                    reply = f"{response.code} {response.message}"
                else:  # non-ASCII addresses: aiosmtplib negotiates SMTPUTF8 and re-encodes
                    parsed = (
                        email.message_from_bytes(message, policy=SMTP)
                        if isinstance(message, bytes)
                        else message
                    )
                    handed_over = True  # it does not say how far it got: assume the worst
                    if going_out is not None:
                        going_out()
                    _, reply = await client.send_message(
                        parsed, sender=sender, recipients=[recipient]
                    )
                self._idle.put_nowait(client)
                client = None
                return SendResult(Outcome.SENT, reply)
            except aiosmtplib.SMTPResponseException as exc:
                # The server answered: it did not take the mail (4xx later, 5xx never). A 5xx
                # to RCPT is about the address (a bounce); to MAIL or DATA, about this mail —
                # unless its enhanced status code says the mailbox does not exist or is
                # disabled (servers that check recipients only after DATA say so there).
                if 500 <= exc.code < 600 and stage in ("mail", "data"):
                    if stage == "data" and _NO_SUCH_MAILBOX.match(exc.message):
                        return SendResult(Outcome.PERMANENT, f"{exc.code} {exc.message}")
                    return SendResult(Outcome.REFUSED, f"{exc.code} {exc.message}")
                return _classify(exc.code, exc.message)
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                if handed_over:
                    return SendResult(
                        Outcome.UNKNOWN, f"connection lost after the message went out: {exc}"
                    )
                return SendResult(Outcome.TRANSIENT, f"connection problem: {exc}")
            finally:
                if client is not None:  # a connection in an unknown state is not reused
                    client.close()

    async def close(self) -> None:
        """Say goodbye on every idle connection."""
        while not self._idle.empty():
            client = self._idle.get_nowait()
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def check(self) -> str:
        """Connect and greet, for ``reengage doctor``; returns the server's greeting."""
        client = await self._connect()
        try:
            response = await client.noop()
            return f"{response.code} {response.message}"
        finally:
            await client.quit()


# RFC 3463 enhanced status codes about the recipient's mailbox itself: bad destination
# mailbox (5.1.1), system (5.1.2), address syntax (5.1.3), moved (5.1.6), a domain that
# takes no mail (5.1.10, RFC 7505), disabled (5.2.1).
_NO_SUCH_MAILBOX = re.compile(r"\s*5\.(?:1\.(?:[1236]|10)|2\.1)(?!\d)")


def _classify(code: int, text: str) -> SendResult:
    outcome = Outcome.PERMANENT if 500 <= code < 600 else Outcome.TRANSIENT
    return SendResult(outcome, f"{code} {text}")
