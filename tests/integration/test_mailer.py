"""The SMTP client against a real server: pooling and rate limits."""

from __future__ import annotations

import asyncio
import types
from email.message import EmailMessage

import pytest

from reengage import mailer as mailer_module
from reengage.mailer import Outcome, SmtpMailer
from tests.integration.smtp_sink import running_sink


def note(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@acme.example", to, "hi"
    msg.set_content("hello")
    return msg


class DrivenClock:
    """The mailer's clock, driven by the test: reading it never moves it, and a pause returns
    at once, noting when (seconds after the start) the send it holds back may go."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.holds: list[float] = []

    def monotonic(self) -> float:
        """What ``time.monotonic`` says to the mailer."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """What ``asyncio.sleep`` does for the mailer: note the moment, yield, go on."""
        self.holds.append(round(self.now + seconds - 1000.0, 6))
        await asyncio.sleep(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> DrivenClock:
    driven = DrivenClock()
    monkeypatch.setattr(mailer_module, "time", driven)
    paced = types.ModuleType("asyncio")  # the mailer's asyncio, with the driven clock's sleep
    paced.__dict__.update(vars(asyncio))
    paced.sleep = driven.sleep  # type: ignore[attr-defined]
    monkeypatch.setattr(mailer_module, "asyncio", paced)
    return driven


def test_rate_limits_space_sends_per_recipient_domain(clock: DrivenClock) -> None:
    with running_sink() as (sink, port):

        async def go(recipients: list[str]) -> list[float]:
            clock.holds.clear()
            mailer = SmtpMailer("127.0.0.1", port, pool_size=4, rate_per_domain=10)
            results = await asyncio.gather(
                *(mailer.send(note(r), sender="a@acme.example", recipient=r) for r in recipients)
            )
            await mailer.close()
            assert {r.outcome for r in results} == {Outcome.SENT}
            return sorted(clock.holds)

        # Six to one domain at 10/s: the first goes at once, each next one 0.1 s after it.
        same = asyncio.run(go([f"u{i}@big.example" for i in range(6)]))
        assert same == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
        # Six to six domains: nothing waits.
        assert asyncio.run(go([f"u@d{i}.example" for i in range(6)])) == []
        assert len(sink.received) == 12


def test_a_global_rate_spaces_sends_to_any_domain(clock: DrivenClock) -> None:
    with running_sink() as (sink, port):

        async def go() -> list[float]:
            mailer = SmtpMailer("127.0.0.1", port, pool_size=4, rate_per_second=4)
            recipients = [f"u@d{i}.example" for i in range(4)]
            await asyncio.gather(
                *(mailer.send(note(r), sender="a@acme.example", recipient=r) for r in recipients)
            )
            await mailer.close()
            return sorted(clock.holds)

        assert asyncio.run(go()) == pytest.approx([0.25, 0.5, 0.75])
        assert len(sink.received) == 4


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


def test_a_mail_is_ready_to_go_only_once_a_connection_is_its_own() -> None:
    """The caller marks a mail as going out (``ready``) only when a connection is free for
    it, not while it waits behind a slow one; a mail withdrawn then is not sent at all."""
    with running_sink(delay=0.5) as (sink, port):
        marked: list[str] = []

        def ready_for(name: str, answer: bool = True) -> object:
            async def ready() -> bool:
                marked.append(name)
                return answer

            return ready

        async def go() -> list[Outcome]:
            mailer = SmtpMailer("127.0.0.1", port, pool_size=1)
            sends = [
                asyncio.create_task(
                    mailer.send(
                        note(f"{name}@example.com"),
                        sender="a@acme.example",
                        recipient=f"{name}@example.com",
                        ready=ready_for(name, name != "withdrawn"),  # type: ignore[arg-type]
                    )
                )
                for name in ("first", "second", "withdrawn")
            ]
            await asyncio.sleep(0.3)
            assert marked == ["first"]  # the others wait for the one connection, unmarked
            outcomes = [result.outcome for result in await asyncio.gather(*sends)]
            await mailer.close()
            return outcomes

        assert asyncio.run(go()) == [Outcome.SENT, Outcome.SENT, Outcome.WITHDRAWN]
        assert marked == ["first", "second", "withdrawn"]
        assert [m["to"] for m in sink.received] == [["first@example.com"], ["second@example.com"]]
