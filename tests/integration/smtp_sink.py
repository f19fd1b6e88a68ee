"""A real SMTP server for tests: aiosmtpd on loopback, recording what it accepts."""

from __future__ import annotations

import asyncio
import email
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    """Records accepted mail; can answer with scripted errors, drop, refuse or go slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[dict[str, Any]] = []
        self.script: list[str] = []  # responses for the next DATA commands, then "250 OK"
        self.refuse: dict[str, str] = {}  # recipient -> RCPT response
        self.drop_next = 0  # the next connections drop at RCPT: nothing was handed over
        self.keep_then_drop = 0  # the next DATAs are kept, then the line drops before the 250
        self.delay = delay
        # A misbehaving server: with these chances, per command (see :meth:`misbehave`).
        self.chaos: random.Random | None = None
        self.kept_then_dropped = 0
        self.rcpt_delay = 0.0  # seconds before each RCPT is answered (nothing handed over yet)

    def misbehave(self, seed: int) -> None:
        """From now on: 421/451 now and then, a 550 for some recipients, a line dropped
        before the mail (at RCPT) or after keeping it (before the 250), 20-120 ms a reply."""
        self.chaos = random.Random(seed)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        if self.chaos is not None:
            roll = self.chaos.random()
            if roll < 0.04:
                server.transport.close()
                return "421 gone"
            if roll < 0.10:
                return "451 busy, try later"
            if roll < 0.13:
                return "550 no such user"
        if self.drop_next:
            self.drop_next -= 1
            server.transport.close()  # the line drops before the mail is handed over
            return "421 gone"
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            return self.script.pop(0)
        dropping = self.keep_then_drop > 0
        self.keep_then_drop -= dropping
        if self.chaos is not None:
            await asyncio.sleep(self.chaos.uniform(0.02, 0.12))
            roll = self.chaos.random()
            if roll < 0.05:
                return "421 try again later"
            dropping = dropping or roll < 0.10
        self.kept_then_dropped += dropping
        self.received.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": email.message_from_bytes(envelope.content, policy=policy.default),
                "raw": envelope.content,  # as it arrived: what a receiver checks DKIM on
            }
        )
        if dropping:  # the mail is kept, but its sender never hears so
            server.transport.close()
            return "421 gone"
        return "250 OK queued"

    def message_ids(self) -> list[str]:
        return [str(m["message"]["Message-ID"]) for m in self.received]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_sink(delay: float = 0.0) -> Iterator[tuple[Sink, int]]:
    """Start a sink on a free loopback port; stop it afterwards."""
    port = free_port()
    handler = Sink(delay)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
