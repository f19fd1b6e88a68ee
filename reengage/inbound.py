"""Inbound mail: an SMTP listener (aiosmtpd) for bounces, complaints, replies and mailto
unsubscribes, pointed at by the MX of ``REENGAGE_INBOUND_DOMAIN``.

Each mail is classified (``mailparse``) and recorded (``responses``) before the listener
answers 250, so an accepted mail is never lost: when the database cannot take it, the
listener answers 451 and the sending server tries again later. Mail to
``unsubscribe+TOKEN@`` (the mailto in List-Unsubscribe) unsubscribes at once. Nothing is
ever relayed: recipients outside the inbound domain are refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import SMTP

from reengage import responses
from reengage.errors import ReengageError
from reengage.logs import get_logger
from reengage.mailparse import classify, token_in
from reengage.responses import Policy, Recorded
from reengage.store import Store

log = get_logger(__name__)

MAX_SIZE = 10 * 1024 * 1024  # bounces quote the original; nothing we expect is bigger


class InboundHandler:
    """aiosmtpd hooks: accept our addresses, record each mail before saying 250."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        policy: Policy | None = None,
        domain: str | None = None,
    ) -> None:
        self.store, self.clock, self.domain = store, clock, domain
        self.policy = policy or Policy()
        self.recorded: list[Recorded] = []  # the latest outcomes, for the demo and tests

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.domain and not address.lower().endswith("@" + self.domain.lower()):
            return "550 5.7.1 this server only receives mail for its own domain"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        try:
            done = await asyncio.to_thread(self.receive, raw, list(envelope.rcpt_tos))
        except ReengageError as exc:
            log.error("inbound_not_recorded", error=str(exc))
            return "451 4.3.0 cannot record this mail right now; please try again later"
        self.recorded = [*self.recorded[-99:], done]
        return "250 OK recorded"

    def receive(self, raw: bytes, recipients: Sequence[str]) -> Recorded:
        """Classify and record one mail (runs in a worker thread)."""
        now = self.clock()
        for rcpt in recipients:
            token = token_in(rcpt, "unsubscribe")
            ref = responses.message(self.store, token) if token else None
            if ref is not None:
                responses.unsubscribe(self.store, ref, now, source="mailto")
                return Recorded("unsubscribe", "suppressed", ref)
        mail = classify(raw, recipients)
        done = responses.record_inbound(self.store, mail, now, self.policy)
        log.info(
            "inbound_recorded",
            kind=done.kind,
            action=done.action,
            matched=done.message is not None,
            sender=mail.sender,
        )
        return done


async def serve(
    handler: InboundHandler, host: str, port: int, *, hostname: str | None = None
) -> asyncio.Server:
    """Start listening on the running loop; close the returned server to stop."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(
            handler,
            hostname=hostname or handler.domain or host,
            data_size_limit=MAX_SIZE,
            enable_SMTPUTF8=True,
            timeout=60,
        ),
        host=host,
        port=port,
    )
