"""Reps and clients for the digest tests, imported through the real importer.

Dana (Berlin) looks after a lapsed bakery, a shrinking wholesale account, a client with a
hostile name, one marked do-not-contact, one still buying happily, and one who replied to
a mail. Sam (New York) has one lapsed client. Orders are generated so detection sees what
each client is meant to be.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from reengage import compose, responses
from reengage.compose import Workspace
from reengage.config import Settings, load_settings
from reengage.digest import CallContext, CallReport, DigestConfig, ListPolicy, record_outcome
from reengage.ingest import Kind, import_items
from reengage.models import CauseScope, NextStep, Reached, StopReason, WorthIt
from reengage.store import Store
from reengage.store import responses as response_sql
from reengage.store.sending import NewEnrollment

ROOT = Path(__file__).resolve().parents[2]
# Monday 23 Nov 2026, 07:30 in Berlin: Dana's morning has come; Sam's (New York) has not.
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
SECRET = "s" * 40
HOSTILE = '<img src=x onerror=alert(1)> "Zoë" O\'Brien'
HOSTILE_COMPANY = "</p><script>alert('co')</script> & Sons"

REPS = [
    {
        "rep_id": "R1",
        "name": "Dana Reyes",
        "email": "dana@acme.example",
        "timezone": "Europe/Berlin",
    },
    {
        "rep_id": "R2",
        "name": "Sam Ortiz",
        "email": "sam@acme.example",
        "timezone": "America/New_York",
    },
]


def _orders(
    cid: str, every: float, count: int, last_days_ago: float, amount: Any, now: datetime
) -> list[dict[str, Any]]:
    """``count`` orders ``every`` days apart, the last one ``last_days_ago`` days before ``now``."""
    amounts = amount if isinstance(amount, list) else [amount] * count
    return [
        {
            "customer_id": cid,
            "occurred_at": (
                now - timedelta(days=last_days_ago + every * (count - 1 - i))
            ).isoformat(),
            "amount": amounts[i],
        }
        for i in range(count)
    ]


def customers(today: date) -> list[dict[str, Any]]:
    soon = today + timedelta(days=5)
    return [
        {
            "customer_id": "bakery",
            "email": "ana@bakery.example",
            "first_name": "Ana",
            "last_name": "Li",
            "company": "Ana's Bakery",
            "phone": "+49 30 1234567",
            "rep_id": "R1",
            "decision_maker": "Maria Li",
            "decision_maker_role": "Owner",
            "contacts": [
                {"name": "Maria Li", "role": "Owner", "phone": "+49 170 555 0101"},
                {"name": "Tom Berg", "role": "Office Manager", "email": "tom@bakery.example"},
            ],
            "interests": ["espresso", "pastry"],
            "important_dates": [
                {"label": "contract anniversary", "date": soon.replace(year=2019).isoformat()}
            ],
            "last_product": "Espresso beans 5kg",
        },
        {
            "customer_id": "wholesale",
            "email": "buy@wholesale.example",
            "first_name": "Bo",
            "last_name": "Chen",
            "company": "Chen Wholesale",
            "rep_id": "R1",
            "contacts": [
                {"name": "Lee Park", "role": "Office Manager"},
                {"name": "Kim Chen", "role": "Purchasing Manager", "phone": "+49 40 555 0199"},
            ],
        },
        {
            "customer_id": "hostile",
            "email": "zoe@hostile.example",
            "first_name": HOSTILE,
            "company": HOSTILE_COMPANY,
            "rep_id": "R1",
        },
        {
            "customer_id": "dnc",
            "email": "no@dnc.example",
            "first_name": "Nora",
            "rep_id": "R1",
            "status": "do_not_contact",
        },
        {"customer_id": "happy", "email": "hi@happy.example", "first_name": "Hal", "rep_id": "R1"},
        {
            "customer_id": "replied",
            "email": "rita@replied.example",
            "first_name": "Rita",
            "rep_id": "R1",
        },
        {"customer_id": "ny", "email": "ny@client.example", "first_name": "Ned", "rep_id": "R2"},
    ]


def activities(now: datetime) -> list[dict[str, Any]]:
    return [
        *_orders("bakery", 10, 12, 60, 400, now),  # every 10 days, silent 60: lapsed
        # Still ordering weekly, but the last orders are a third of the earlier ones.
        *_orders("wholesale", 7, 12, 5, [900] * 8 + [250] * 4, now),
        *_orders("hostile", 14, 8, 80, 150, now),
        *_orders("dnc", 10, 10, 70, 500, now),
        *_orders("happy", 10, 10, 3, 300, now),
        *_orders("replied", 30, 4, 20, 80, now),
        *_orders("ny", 10, 10, 50, 300, now),
    ]


def fill(store: Store, now: datetime = NOW) -> None:
    """Import the reps, clients and orders, and one reply waiting for an answer."""
    zone = ZoneInfo("UTC")
    for kind, items in (
        (Kind.REPS, REPS),
        (Kind.CUSTOMERS, customers(now.date())),
        (Kind.ACTIVITIES, activities(now)),
    ):
        report = import_items(store, kind, items, now=now, zone=zone)
        assert report.ok, report.rejected
    rita = store.customers.customer_ids(["replied"])["replied"]
    with store.engine.begin() as conn:
        response_sql.add_reply(
            conn,
            None,
            customer_id=rita,
            sender="rita@replied.example",
            subject="Re: three things you may have missed",
            text="We moved to a new shop and lost your catalogue. Can someone call me?",
            automatic=False,
            now=now - timedelta(days=1),
        )


def settings(port: int = 25, **overrides: Any) -> Settings:
    chosen: dict[str, Any] = {
        "campaigns_dir": ROOT / "campaigns",
        "templates_dir": ROOT / "templates",
        "secret_key": SECRET,
        "smtp_port": port,
        **overrides,
    }
    return load_settings(env_file=None, **chosen)


def workspace(tmp_path: Path, port: int = 25, **overrides: Any) -> tuple[Workspace, DigestConfig]:
    chosen = settings(port, **overrides)
    return compose.Workspace.from_settings(chosen), DigestConfig.from_settings(chosen)


def policy(size: int = 10) -> ListPolicy:
    return ListPolicy(size=size, cooldown_days=14)


def mailed_and_called(store: Store) -> None:
    """What reengage already did for the bakery: a mail opened and clicked 9 days ago, and
    a call 20 days ago (past the 14-day cooldown, so they are on today's list again)."""
    ana = store.customers.customer_ids(["bakery"])["bakery"]
    sent_at = NOW - timedelta(days=9)
    store.sending.enroll(
        [NewEnrollment(ana, "habit-lapsed-tips", False, "we-miss-you", sent_at)], sent_at
    )
    claimed = store.sending.claim_due(sent_at, 10, timedelta(minutes=5))
    started = store.sending.start_messages(
        [(claimed[0], "we-miss-you")], sent_at, timedelta(minutes=5)
    )
    store.sending.finish_sent(
        started[0].message_id,
        claimed[0],
        response="250 OK",
        smtp_id="x@acme.example",
        now=sent_at,
        next_step=(1, "tip-1", sent_at + timedelta(days=7)),
    )
    token = started[0].token or ""
    responses.record_open(store, token, sent_at + timedelta(hours=2))
    responses.record_click(
        store, token, "https://shop.example/espresso", sent_at + timedelta(hours=3)
    )
    called = NOW - timedelta(days=20)
    record_outcome(
        store,
        CallContext(ana, "R1", {}, "what-we-changed", "cli"),
        CallReport(
            Reached.DECISION_MAKER,
            WorthIt.YES,
            NextStep.NOTHING,
            contact_name="Maria Li",
            reason=StopReason.PRICE,
            reason_text="Too expensive since the spring price rise",
            scope=CauseScope.SYSTEMIC,
        ),
        called,
        today=called.date(),
    )
