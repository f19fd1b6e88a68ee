"""Never twice: a mail whose fate is uncertain is never sent again by itself.

A server that keeps a mail and then loses the line before its 250 reaches us has the mail;
sending it again would be a duplicate. reengage marks such a send ``unknown``, holds its
enrollment for a person, and lists it in ``reengage sends list``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from reengage.mailer import Outcome, SmtpMailer
from reengage.store import Store
from tests.integration.smtp_sink import Sink, running_sink
from tests.integration.test_sending import run_days, setup


def note(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@acme.example", to, "hi"
    msg.set_content("hello")
    return msg


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


def test_the_mailer_tells_a_line_lost_before_the_mail_from_one_lost_after(
    sink: tuple[Sink, int],
) -> None:
    handler, port = sink

    async def one() -> Outcome:
        mailer = SmtpMailer("127.0.0.1", port)
        result = await mailer.send(
            note("a@b.example"), sender="s@acme.example", recipient="a@b.example"
        )
        await mailer.close()
        return result.outcome

    handler.drop_next = 1  # lost at RCPT: nothing handed over, safe to try again
    assert asyncio.run(one()) is Outcome.TRANSIENT
    assert handler.received == []
    handler.keep_then_drop = 1  # kept, then lost before the 250: it arrived
    assert asyncio.run(one()) is Outcome.UNKNOWN
    assert len(handler.received) == 1
    handler.script = ["451 busy"]  # the server said no: safe to try again
    assert asyncio.run(one()) is Outcome.TRANSIENT
    assert asyncio.run(one()) is Outcome.SENT
    assert len(handler.received) == 2


def test_a_lost_250_never_sends_a_mail_twice(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    rows = "".join(f"c{i},u{i}@example.com,U{i}\n" for i in range(20))
    service = setup(store, tmp_path, port, "customer_id,email,first_name\n" + rows)
    handler.keep_then_drop = 6  # six of the first mails are kept, their replies lost
    run_days(service, 21, step_hours=6)
    per_customer = Counter((m["to"][0], str(m["message"]["Subject"])) for m in handler.received)
    assert max(per_customer.values()) == 1, "a customer got the same mail twice"
    counts = store.message_counts()
    assert counts["unknown"] == 6
    held = store.held_messages(["unknown"])
    assert len(held) == 6
    assert all("connection lost after the message went out" in (h.reason or "") for h in held)
    # The twenty first mails all arrived, once; the fourteen sure ones went on to step two.
    firsts = [m for m in handler.received if str(m["message"]["Subject"]).startswith("Hello")]
    assert len(firsts) == 20
    assert counts["sent"] == 20 - 6 + 14
