"""The SMTP client against a real server: pooling and rate limits."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage

from reengage.mailer import Outcome, SmtpMailer
from tests.integration.smtp_sink import running_sink


def note(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@acme.example", to, "hi"
    msg.set_content("hello")
    return msg


def test_rate_limits_space_sends_globally_and_per_recipient_domain() -> None:
    with running_sink() as (sink, port):

        async def go(mailer: SmtpMailer, recipients: list[str]) -> float:
            started = time.perf_counter()
            results = await asyncio.gather(
                *(mailer.send(note(r), sender="a@acme.example", recipient=r) for r in recipients)
            )
            await mailer.close()
            assert {r.outcome for r in results} == {Outcome.SENT}
            return time.perf_counter() - started

        per_domain = SmtpMailer("127.0.0.1", port, pool_size=4, rate_per_domain=10)
        same = asyncio.run(go(per_domain, [f"u{i}@big.example" for i in range(6)]))
        spread = asyncio.run(
            go(
                SmtpMailer("127.0.0.1", port, pool_size=4, rate_per_domain=10),
                [f"u@d{i}.example" for i in range(6)],
            )
        )
        assert same >= 0.45  # six to one domain at 10/s: at least five gaps of 0.1 s
        assert spread < same
        assert len(sink.received) == 12


def test_connections_are_reused_across_messages() -> None:
    with running_sink() as (sink, port):

        async def go() -> SmtpMailer:
            mailer = SmtpMailer("127.0.0.1", port, pool_size=2)
            for i in range(5):
                result = await mailer.send(
                    note(f"x{i}@example.com"),
                    sender="a@acme.example",
                    recipient=f"x{i}@example.com",
                )
                assert result.outcome is Outcome.SENT
            assert mailer._idle.qsize() == 1  # one connection did all five, sequentially
            await mailer.close()
            return mailer

        asyncio.run(go())
        assert len(sink.received) == 5
