"""What a marketer previews is what the customer gets.

Every mail step of every shipped campaign goes through the real daemon to a real SMTP
server (aiosmtpd on loopback), for customers with full and empty fields, in English and
in Chinese. Each received mail's subject, text and HTML must equal ``reengage preview`` of
that customer and step at the moment it was sent; only the signed link tokens differ.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from reengage import authoring, compose
from reengage.config import load_settings
from reengage.ingest import Kind, import_file
from reengage.mailer import SmtpMailer
from reengage.models import Customer, Message
from reengage.scheduler import Service
from reengage.store import Store
from reengage.store.sending import NewEnrollment
from reengage.timeutil import as_utc
from tests.integration.smtp_sink import Sink, running_sink

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # a Monday, before anyone's window opens
BASE = "http://127.0.0.1:9"
# Links carry a signed token naming the message; a preview's name "preview" instead.
TOKEN = re.compile(re.escape(BASE) + r"/(c|o|u)/[A-Za-z0-9._~%-]+")

REPS = "rep_id,email,name\nR1,kim@acme.example,Kim Lee\n"
CUSTOMERS = """\
customer_id,email,first_name,last_name,company,segment,locale,timezone,rep_id,interests,last_product,important_dates
full,ana@example.com,Ana,Li,Ana's Bakery,retail,en,America/New_York,R1,espresso;pastry,\
espresso beans,birthday=1980-04-12
bare,someone@example.com,,,,,en,,,,,
chinese,wei@example.cn,伟,王,王记茶庄,retail,zh-CN,Asia/Shanghai,R1,乌龙茶,铁观音,
shrinking,mo@example.com,Mo,,Mo's Deli,wholesale,en,Europe/Berlin,R1,,,
later,lee@example.com,Lee,Park,,retail,en,UTC,R1,,,
"""


def orders() -> str:
    rows = ["customer_id,occurred_at,amount,margin"]
    for cid in ("full", "bare", "chinese", "later"):
        # A weekly habit, silent for two months: lapsed.
        rows += [f"{cid},{(START - timedelta(days=60 + 7 * i)).date()},60,20" for i in range(8)]
    # Still buying every week, but the last orders are a third of the size: declining.
    for i in range(10):
        amount = 30 if i < 3 else 100
        rows.append(f"shrinking,{(START - timedelta(days=3 + 7 * i)).date()},{amount},{amount / 3}")
    return "\n".join(rows) + "\n"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


def test_every_shipped_step_the_daemon_sends_equals_its_preview(
    store: Store, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    for kind, name, text in (
        (Kind.REPS, "reps.csv", REPS),
        (Kind.CUSTOMERS, "customers.csv", CUSTOMERS),
        (Kind.ACTIVITIES, "orders.csv", orders()),
    ):
        (tmp_path / name).write_text(text, encoding="utf-8")
        report = import_file(store, kind, tmp_path / name, now=START, zone=ZoneInfo("UTC"))
        assert report.ok, report.rejected
    settings = load_settings(
        env_file=None,
        campaigns_dir=ROOT / "campaigns",
        templates_dir=ROOT / "templates",
        secret_key="s" * 40,
        base_url=BASE,
        smtp_port=port,
        max_emails_per_week=2,
    )
    ws = compose.Workspace.from_settings(settings)
    clock = {"now": START}
    service = Service(store, SmtpMailer.from_settings(settings), ws, clock=lambda: clock["now"])
    # The follow-up campaign has no audience: a rep's call enters customers into it.
    later = store.customers.customer_ids(["later"])["later"]
    store.sending.enroll(
        [NewEnrollment(later, "what-we-changed", False, "what-we-changed", START)], START
    )

    async def run() -> None:
        for _ in range(4 * 28):
            await service.run_once()
            clock["now"] += timedelta(hours=6)
        await service.mailer.close()

    asyncio.run(run())

    campaigns = service.library.campaigns
    shipped = {(c.id, s.key) for c in campaigns.values() for s in c.steps if not s.is_call}
    sent = _sent_messages(store)
    assert {(m["campaign_id"], m["step_key"]) for m in sent.values()} == shipped
    assert len(handler.received) == len(sent)
    for got in handler.received:
        mail = got["message"]
        row = sent[str(mail["Message-ID"]).strip("<>").split("@")[0]]
        preview = authoring.preview(
            ws,
            store,
            campaigns[row["campaign_id"]],
            row["step_key"],
            row["customer"],
            now=row["sent_at"],
            out_dir=tmp_path / "preview",
        )
        shown = preview.message
        where = f"{row['campaign_id']}/{row['step_key']} for {row['customer']}"
        assert mail["Subject"] == shown["Subject"], where
        for part in ("plain", "html"):
            assert _body(mail, part) == _body(shown, part), f"{part} part of {where}"
    texts = " ".join(_body(m["message"], "plain") for m in handler.received)
    # The shipped habit mail tells a steady customer their own rhythm, in both languages…
    assert "about every 7 days" in texts
    assert "大约每" in texts
    assert "None" not in texts
    # …and a Chinese customer gets every mail, subject included, in Chinese.
    chinese = [m["message"] for m in handler.received if m["to"] == ["wei@example.cn"]]
    assert len(chinese) == 3
    for mail in chinese:
        assert re.search(r"[\u4e00-\u9fff]", str(mail["Subject"])), mail["Subject"]
        assert "Hi there" not in _body(mail, "plain")


def _sent_messages(store: Store) -> dict[str, dict[str, Any]]:
    messages: sa.Table = Message.__table__  # type: ignore[attr-defined]
    customers: sa.Table = Customer.__table__  # type: ignore[attr-defined]
    query = (
        sa.select(
            messages.c.token,
            messages.c.campaign_id,
            messages.c.step_key,
            messages.c.sent_at,
            customers.c.external_id,
        )
        .join(customers, customers.c.id == messages.c.customer_id)
        .where(messages.c.status == "sent")
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return {
        token: {
            "campaign_id": campaign,
            "step_key": step,
            "sent_at": as_utc(sent_at),
            "customer": customer,
        }
        for token, campaign, step, sent_at, customer in rows
    }


def _body(message: Any, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None, f"no {kind} part"
    # SMTP carries CRLF line ends; the preview file keeps the text as written.
    return TOKEN.sub(r"\1/TOKEN", str(part.get_content()).replace("\r\n", "\n"))
