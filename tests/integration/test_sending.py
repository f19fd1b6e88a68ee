"""The daemon's sending against a real SMTP server (aiosmtpd on loopback) and real databases."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reengage import authoring, compose, responses
from reengage.config import load_settings
from reengage.ingest import Kind, import_file
from reengage.mailer import SmtpMailer
from reengage.scheduler import Service
from reengage.store import Store
from tests.integration.smtp_sink import Sink, running_sink

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


CAMPAIGN = """\
id: lapsed
name: Lapsed
audience:
  lapsed: {factor: 2.0, min_days_silent: 14}
holdout_percent: 0
exit_on: [activity, reply, unsubscribe, bounce, complaint]
track_opens: true  # the open pixel's tests (test_links.py) send this campaign
send_window: {hours: "09:00-17:00", days: [tue, wed, thu], timezone: recipient}
from: "Acme <hello@acme.example>"
steps:
  - key: first
    after: 0d
    subject: "Hello {{ customer.first_name or 'there' }}"
    template: habit/three-things.html.j2
  - key: second
    after: 7d
    subject: A tip
    template: tips/tip-1.html.j2
  - key: call
    after: 7d
    call: {reason: "No answer to two mails", priority: high}
"""


def setup(store: Store, tmp_path: Path, port: int, customers: str) -> Service:
    (tmp_path / "campaigns").mkdir(exist_ok=True)
    (tmp_path / "campaigns" / "lapsed.yaml").write_text(CAMPAIGN)
    (tmp_path / "customers.csv").write_text(customers)
    orders = ["customer_id,occurred_at,amount"]
    for line in customers.strip().splitlines()[1:]:
        cid = line.split(",")[0]
        orders += [f"{cid},{(START - timedelta(days=60 + 7 * i)).date()},50" for i in range(8)]
    (tmp_path / "orders.csv").write_text("\n".join(orders) + "\n")
    for kind, name in ((Kind.CUSTOMERS, "customers.csv"), (Kind.ACTIVITIES, "orders.csv")):
        report = import_file(store, kind, tmp_path / name, now=START, zone=ZoneInfo("UTC"))
        assert report.ok, report.rejected
    settings = load_settings(
        env_file=None,
        campaigns_dir=tmp_path / "campaigns",
        templates_dir=ROOT / "templates",
        secret_key="s" * 40,
        smtp_port=port,
        max_emails_per_week=2,
    )
    ws = compose.Workspace.from_settings(settings)
    clock = {"now": START}
    service = Service(store, SmtpMailer.from_settings(settings), ws, clock=lambda: clock["now"])
    service.clock_state = clock  # type: ignore[attr-defined]
    return service


def run_days(service: Service, days: int, *, step_hours: int = 6) -> None:
    clock = service.clock_state  # type: ignore[attr-defined]

    async def go() -> None:
        for _ in range(days * 24 // step_hours):
            await service.run_once()
            clock["now"] += timedelta(hours=step_hours)
        await service.mailer.close()

    asyncio.run(go())


def test_a_full_sequence_arrives_in_the_recipients_window_with_the_right_headers(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    service = setup(
        store,
        tmp_path,
        port,
        "customer_id,email,first_name,timezone\nc1,ana@example.com,Ana,America/New_York\n",
    )
    run_days(service, 21)
    assert [m["message"]["Subject"] for m in handler.received] == ["Hello Ana", "A tip"]
    for got in handler.received:
        msg = got["message"]
        local = email.utils.parsedate_to_datetime(msg["Date"]).astimezone(
            ZoneInfo("America/New_York")
        )
        assert local.strftime("%a") in ("Tue", "Wed", "Thu")
        assert 9 <= local.hour < 17
        assert got["to"] == ["ana@example.com"]
        token = msg["Message-ID"].strip("<>").split("@")[0]
        # VERP for the inbound side, signed: the key alone (our Message-ID) is no address
        local = got["from"].partition("@")[0]
        key, dot, signature = local.removeprefix("bounces+").partition(".")
        assert (key, dot, len(signature)) == (token, ".", 26)
        assert got["from"].endswith("@acme.example") and msg["Return-Path"] == f"<{got['from']}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "https" in msg["List-Unsubscribe"] or "http" in msg["List-Unsubscribe"]
        assert msg.get_body(preferencelist=("plain",)) is not None
    assert store.sending.message_counts() == {"sent": 2}
    assert len(store.calls.open_calls()) == 1


def test_temporary_failures_are_retried_and_succeed_once(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    handler.script = ["421 try later", "451 busy"]
    handler.drop_next = 1
    service = setup(store, tmp_path, port, "customer_id,email,first_name\nc1,bo@example.com,Bo\n")
    run_days(service, 5, step_hours=2)
    subjects = [m["message"]["Subject"] for m in handler.received]
    assert subjects == ["Hello Bo"]  # delivered once, after three failed attempts
    assert store.sending.message_counts() == {"sent": 1}


def test_a_permanent_failure_bounces_and_suppresses(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    handler.refuse["gone@example.com"] = "550 no such user"
    service = setup(
        store,
        tmp_path,
        port,
        "customer_id,email,first_name\nc1,gone@example.com,Cy\nc2,ok@example.com,Di\n",
    )
    run_days(service, 3)
    assert [m["to"] for m in handler.received] == [["ok@example.com"]]
    assert store.sending.is_suppressed("gone@example.com")
    assert store.sending.message_counts() == {"bounced": 1, "sent": 1}


def test_dkim_signature_verifies_on_what_the_server_received(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    handler, port = sink
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    service = setup(store, tmp_path, port, "customer_id,email,first_name\nc1,ek@example.com,Ek\n")
    settings = load_settings(
        env_file=None,
        campaigns_dir=tmp_path / "campaigns",
        templates_dir=ROOT / "templates",
        secret_key="s" * 40,
        smtp_port=port,
        dkim_selector="s1",
        dkim_domain="acme.example",
        dkim_private_key_file=tmp_path / "dkim.pem",
    )
    service.ws = compose.Workspace.from_settings(settings)
    service.library = authoring.CampaignLibrary(service.ws)
    run_days(service, 3)
    assert len(handler.received) == 1
    raw = handler.received[0]["raw"]
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.acme.example."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    signed = handler.received[0]["message"]["DKIM-Signature"]
    for header in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post"):
        assert header in signed.lower()


def test_a_long_unsubscribe_url_arrives_whole_and_unencoded(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    service = setup(store, tmp_path, port, "customer_id,email,first_name\nc1,lu@example.com,Lu\n")
    run_days(service, 3)
    msg = handler.received[0]["message"]
    https, mailto = (t.strip().strip("<>") for t in str(msg["List-Unsubscribe"]).split(","))
    assert len(https) > 78  # longer than a folded header line: must still arrive in one piece
    assert https.startswith("http") and "=?" not in https and " " not in https
    assert mailto.startswith("mailto:unsubscribe+")
    assert https in handler.received[0]["raw"].decode("ascii")


def test_a_step_renamed_while_running_ends_its_enrollments_out_loud(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    import os

    from structlog.testing import capture_logs

    handler, port = sink
    service = setup(
        store,
        tmp_path,
        port,
        "customer_id,email,first_name,timezone\nc1,ana@example.com,Ana,Europe/Berlin\n",
    )
    run_days(service, 3)
    assert len(handler.received) == 1  # the first mail went out; "second" is due in a week
    campaign = tmp_path / "campaigns" / "lapsed.yaml"
    campaign.write_text(campaign.read_text().replace("key: second", "key: second-v2"))
    os.utime(campaign, (1, 1))
    with capture_logs() as logs:
        run_days(service, 10)
    assert len(handler.received) == 1  # nothing sent for a step that no longer exists
    reloaded = [e for e in logs if e["event"] == "campaigns_reloaded"]
    assert reloaded[0]["vanished_steps"] == {"lapsed": ["second"]}
    ended = [e for e in logs if e["event"] == "enrollment_ended"]
    assert [(e["reason"], e["step"]) for e in ended] == [("step_removed", "second")]


def test_a_step_condition_follows_what_the_customer_did_with_the_previous_mail(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    service = setup(
        store,
        tmp_path,
        port,
        "customer_id,email,first_name\nc1,ana@example.com,Ana\nc2,bo@example.com,Bo\n",
    )
    conditional = CAMPAIGN.replace(
        "    subject: A tip\n", "    subject: A tip\n    condition: previous_not_clicked\n"
    )
    (tmp_path / "campaigns" / "lapsed.yaml").write_text(conditional)
    run_days(service, 3)
    assert sorted(m["to"][0] for m in handler.received) == ["ana@example.com", "bo@example.com"]
    ana = next(m for m in handler.received if m["to"] == ["ana@example.com"])
    token = ana["message"]["Message-ID"].strip("<>").split("@")[0]
    responses.record_click(store, token, "https://shop.example", service.clock())
    run_days(service, 10)
    tips = [m["to"][0] for m in handler.received if m["message"]["Subject"] == "A tip"]
    assert tips == ["bo@example.com"]  # Ana clicked the first mail: no nudge for her
    assert store.sending.message_counts() == {"sent": 3, "skipped": 1}


def test_a_mail_is_recorded_sent_when_the_server_took_it_not_when_its_pass_began(
    store: Store, tmp_path: Path
) -> None:
    """Against a slow server one connection sends a batch one mail after another: each row
    says when its mail went out (and its next step counts from then), not the moment the
    pass began, so a long pass does not shift every sent time to its start."""
    import sqlalchemy as sa

    from tests.integration.test_chaos import MESSAGES

    with running_sink(delay=0.25) as (_, port):
        rows = "".join(f"c{i},p{i}@example.com,P{i},UTC\n" for i in range(4))
        service = setup(store, tmp_path, port, "customer_id,email,first_name,timezone\n" + rows)
        service.concurrency = 1
        service.clock_state["now"] = START + timedelta(days=1, hours=4)  # type: ignore[attr-defined]
        run_days(service, 1, step_hours=24)
    with store.engine.connect() as conn:
        sent = sorted(
            conn.execute(sa.select(MESSAGES.c.sent_at).where(MESSAGES.c.status == "sent")).scalars()
        )
    assert len(sent) == 4
    gaps = [(b - a).total_seconds() for a, b in pairwise(sent)]
    assert all(gap >= 0.2 for gap in gaps), gaps  # each at least one server reply later
