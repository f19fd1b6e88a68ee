"""Inbound mail over real SMTP: real-world-shaped bounces, a complaint, replies and an
out-of-office, sent to the listener after a real campaign mail went out, each ending in the
state a marketer and a rep would expect."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reengage.inbound import InboundHandler, Limits, serve
from reengage.scheduler import Service
from reengage.store import Store
from tests.integration.smtp_sink import Sink, free_port, running_sink
from tests.integration.test_sending import run_days, setup

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inbound"
FIXTURE_TOKENS = ("k3Jd9_x-Qa2mZp7LrT0bWc", "Fw2_kLq9Xr-Ty7UoPa3sDf", "Yb7_uN3-mK8jH2gF5dS4aQ")
FIXTURE_ADDRESSES = (
    "Nobody.Here@example.org",
    "maria.full@example.net",
    "Jane.Doe@yahoo.example",
    "Jane.Doe@gmail.example",  # the repliers: a reply counts from the address we mailed
    "jane.doe@gmail.example",
)


@dataclass
class World:
    store: Store
    service: Service
    sink: Sink
    port: int
    token: str  # the message key: in our Message-ID and reply+KEY@
    handler: InboundHandler
    bounce_token: str = ""  # KEY.SIGNATURE of its bounces+ address (the envelope sender)

    def send(self, fixture: str, *, to: str | None = None) -> None:
        """Deliver a fixture, rewritten to answer our real mail, over SMTP."""
        raw = (FIXTURES / fixture).read_bytes()
        for token in FIXTURE_TOKENS:
            raw = raw.replace(token.encode(), self.token.encode())
        for address in FIXTURE_ADDRESSES:
            raw = raw.replace(address.encode(), b"ana@example.com")
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # SMTP lines end in CRLF
        rcpt = to or f"bounces+{self.bounce_token}@acme.example"
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            smtp.sendmail("", [rcpt], raw)

    def kinds(self) -> list[str]:
        since = self.service.clock() - timedelta(days=3650)
        return [r.kind for r in self.store.responses.recent(since)]

    def subjects(self) -> list[str]:
        return [str(m["message"]["Subject"]) for m in self.sink.received]


@contextmanager
def inbound_world(
    store: Store,
    tmp_path: Path,
    customers: str = "customer_id,email,first_name\nc1,ana@example.com,Ana\n",
    limits: Limits | None = None,
    **handler_options: Any,
) -> Iterator[World]:
    """A campaign mail sent to each customer, and the inbound listener running on loopback."""
    with running_sink() as (sink, smtp_port):
        service = setup(store, tmp_path, smtp_port, customers)
        run_days(service, 3)
        assert len(sink.received) == customers.count("\n") - 1
        envelope = sink.received[0]["from"].split("+", 1)[1].split("@", 1)[0]
        clock = service.clock_state  # type: ignore[attr-defined]
        handler = InboundHandler(
            store,
            lambda: clock["now"],
            service.response_policy(),
            domain="acme.example",
            unsubscribe_secrets=[service.ws.secret],
            limits=limits,
            **handler_options,
        )
        port = free_port()
        loop = asyncio.new_event_loop()
        holder: dict[str, Any] = {}

        async def listen() -> None:
            holder["server"] = await serve(handler, "127.0.0.1", port)

        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(listen(), loop).result(timeout=10)
        try:
            key = envelope.partition(".")[0]
            yield World(store, service, sink, port, key, handler, envelope)
        finally:

            async def stop() -> None:  # on the server's own loop: close() is not thread-safe
                holder["server"].close()
                await holder["server"].wait_closed()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    with inbound_world(store, tmp_path) as made:
        yield made


def test_a_hard_bounce_suppresses_the_address_and_ends_the_sequence(world: World) -> None:
    world.send("postfix_hard_bounce.eml")
    assert world.store.sending.is_suppressed("ana@example.com")
    assert world.kinds() == ["bounce"]
    assert world.store.sending.message_counts().get("bounced") == 1
    run_days(world.service, 20)
    assert len(world.sink.received) == 1  # the second mail never goes out


def test_soft_bounces_suppress_only_once_they_repeat(world: World) -> None:
    world.send("postfix_delayed_mailbox_full.eml")
    assert not world.store.sending.is_suppressed("ana@example.com")
    world.send("postfix_delayed_mailbox_full.eml")
    world.send("postfix_delayed_mailbox_full.eml")  # the third within 30 days
    assert world.kinds() == ["soft_bounce"] * 3
    assert world.store.sending.is_suppressed("ana@example.com")


def test_a_feedback_loop_complaint_suppresses(world: World) -> None:
    """At the mail's bounce address (a feedback loop that reports to the Return-Path); at a
    generic address only when a listed provider signed it (test_report_trust.py)."""
    world.send("yahoo_arf_complaint.eml")
    assert world.kinds() == ["complaint"]
    assert world.store.sending.is_suppressed("ana@example.com")
    run_days(world.service, 20)
    assert len(world.sink.received) == 1


def test_a_reply_is_kept_without_its_quote_ends_the_sequence_and_waits_for_the_rep(
    world: World,
) -> None:
    world.send("gmail_reply.eml", to=f"reply+{world.token}@acme.example")
    replies = world.store.responses.replies()
    assert len(replies) == 1
    assert "delivery times got too long" in replies[0]["text"]
    assert "it has been a while" not in replies[0]["text"]
    assert replies[0]["automatic"] is False and replies[0]["campaign_id"] == "lapsed"
    assert world.kinds() == ["reply"]
    assert not world.store.sending.is_suppressed("ana@example.com")  # a reply is not an opt-out
    run_days(world.service, 20)
    assert len(world.sink.received) == 1


def test_an_out_of_office_is_recorded_and_the_sequence_goes_on(world: World) -> None:
    world.send("out_of_office_auto_submitted.eml", to=f"reply+{world.token}@acme.example")
    assert world.kinds() == ["auto_reply"]
    assert world.store.responses.replies()[0]["automatic"] is True
    run_days(world.service, 10)
    assert world.subjects() == ["Hello Ana", "A tip"]


def test_mail_to_the_list_unsubscribe_mailto_unsubscribes(world: World) -> None:
    header = str(world.sink.received[0]["message"]["List-Unsubscribe"])
    world.send("gmail_reply.eml", to=header.split("<mailto:", 1)[1].split(">", 1)[0])
    assert world.store.sending.is_suppressed("ana@example.com")
    assert world.kinds() == ["unsubscribe"]


def test_the_listener_relays_nothing(world: World) -> None:
    with (
        smtplib.SMTP("127.0.0.1", world.port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        smtp.sendmail("x@spam.example", ["victim@elsewhere.example"], b"Subject: hi\r\n\r\nhi")
