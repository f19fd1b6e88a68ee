"""The indexed per-rep call lists are exactly the lists the full scan built.

``build_lists`` reads each rep's rows through the rep's own queries and scores only that
rep's candidates; ``build_lists_full_scan`` (the path lists took before: every open call
and waiting reply in the base, every customer of the chosen reps assessed) is the
reference. Over seeded populations both must give the same lists: the same people in the
same order with the same cards, the same count left over, for every rep, one rep at a
time, on other days, and at other list sizes.

The populations hold every kind of customer a list meets: reps in four time zones (and one
with nobody); customers with a rep, without one, or with a rep nobody imported; rhythms
from weekly to yearly, one-time buyers, customers who never ordered, orders worth nothing,
shrinking orders, visits after the last order; some marked do-not-contact, paused (until
before or after now), or suppressed. Open call tasks (a campaign's or a "call again", due
weeks ago to days ahead, some done or cancelled), replies (people's and auto-replies, new
or answered, some matched to nobody) and past call outcomes (every way a call can end, two
at the same moment now and then). One seed in three scores with a fitted lapse model of
arbitrary weights instead of the rhythm prior.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reengage.digest.calllist import CallList, ListPolicy, build_lists
from reengage.digest.fullscan import build_lists_full_scan
from reengage.horizon import named_horizon
from reengage.ingest import Kind, import_items
from reengage.lapse_model import LapseModel
from reengage.store import Store
from reengage.store import responses as response_sql
from reengage.store.suppressions import suppress
from reengage.store.tables import CALLS, CUSTOMERS, OUTCOMES

REPS = [
    ("R1", "Europe/Berlin"),
    ("R2", "America/New_York"),
    ("R3", "Pacific/Auckland"),
    ("R4", "UTC"),
    ("R5", "Asia/Kolkata"),  # has no customers
]
OWNERS = ["R1", "R2", "R3", "R4", "R1", "R2", None, "GHOST"]
SEGMENTS = [None, "cafe", "retail", "wholesale"]
RHYTHMS = ["weekly", "monthly", "quarterly", "yearly", "once", "never", "free", "shrinking"]


def _orders(rng: random.Random, cid: str, rhythm: str, now: datetime) -> list[dict[str, Any]]:
    gap = {"weekly": 7, "monthly": 30, "quarterly": 91, "yearly": 365}.get(rhythm, 30)
    gap *= rng.uniform(0.6, 1.5)
    silent = rng.choice([0.5, 3, 10, 25, 45, 80, 150, 300, 500]) * rng.uniform(0.8, 1.2)
    count = 1 if rhythm == "once" else rng.randint(2, 14)
    rows: list[dict[str, Any]] = []
    if rhythm != "never":
        for i in range(count):
            amount = 0 if rhythm == "free" else round(rng.uniform(20, 900), 2)
            if rhythm == "shrinking" and i >= count - 3:
                amount = round(amount * rng.uniform(0.1, 0.5), 2) or 1
            at = now - timedelta(days=silent + gap * (count - 1 - i) * rng.uniform(0.8, 1.2))
            row = {"customer_id": cid, "occurred_at": at.isoformat()}
            if amount:
                row["amount"] = amount
                row["margin"] = round(amount * rng.uniform(0.05, 0.4), 2)
            rows.append(row)
    if rhythm == "never" or rng.random() < 0.2:  # seen since, or only ever seen
        at = now - timedelta(days=rng.uniform(0, silent))
        rows.append({"customer_id": cid, "kind": "visit", "occurred_at": at.isoformat()})
    return rows


def generate(store: Store, seed: int, now: datetime, customers: int = 120) -> None:
    """Fill ``store`` with a population drawn from ``seed``."""
    rng = random.Random(seed)
    zone = ZoneInfo("UTC")
    reps = [
        {"rep_id": r, "name": f"Rep {r}", "email": f"{r.lower()}@acme.example", "timezone": tz}
        for r, tz in REPS
    ]
    people: list[dict[str, Any]] = []
    activities: list[dict[str, Any]] = []
    for n in range(customers):
        cid = f"c{n}"
        person: dict[str, Any] = {"customer_id": cid, "email": f"{cid}@client.example"}
        owner = rng.choice(OWNERS)
        if owner is not None:
            person["rep_id"] = owner
        if (segment := rng.choice(SEGMENTS)) is not None:
            person["segment"] = segment
        if rng.random() < 0.1:
            person["status"] = "do_not_contact"
        people.append(person)
        if rng.random() < 0.93:  # a few have no activity at all
            activities.extend(_orders(rng, cid, rng.choice(RHYTHMS), now))
    for kind, items in ((Kind.REPS, reps), (Kind.CUSTOMERS, people), (Kind.ACTIVITIES, activities)):
        report = import_items(store, kind, items, now=now, zone=zone)
        assert report.ok, report.rejected
    ids = list(store.customers.customer_ids([p["customer_id"] for p in people]).values())
    with store.engine.begin() as conn:
        for cid in ids:
            _signals(conn, rng, cid, now)
    if seed % 3 == 2:  # a fitted model, weights of any sign, instead of the rhythm prior
        weights = tuple(rng.uniform(-1.5, 1.5) for _ in range(7))
        model = LapseModel(90.0, weights, now - timedelta(days=30), 500)
        store.lapse_models.save(
            model, horizon=named_horizon(90.0), auc=0.7, auc_recency=0.6, now=now
        )


def _signals(conn: Any, rng: random.Random, cid: int, now: datetime) -> None:
    if rng.random() < 0.15:
        until = now + timedelta(days=rng.choice([-3, 5, 60]))
        conn.execute(CUSTOMERS.update().where(CUSTOMERS.c.id == cid).values(paused_until=until))
    if rng.random() < 0.08:
        suppress(conn, f"c{cid}@client.example", "unsubscribe", None, now)
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        conn.execute(
            CALLS.insert().values(
                customer_id=cid,
                campaign_id=rng.choice([None, "habit-lapsed-tips"]),
                step_key=rng.choice([None, "call"]),
                reason=rng.choice(["Call them", "They asked", "Lapsed"]),
                priority=rng.choice(["high", "normal", "low"]),
                due_at=now + timedelta(hours=rng.uniform(-40 * 24, 5 * 24)),
                status=rng.choice(["open", "open", "open", "done", "cancelled"]),
                created_at=now - timedelta(hours=rng.uniform(0, 60 * 24)),
            )
        )
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        response_sql.add_reply(
            conn,
            None,
            customer_id=cid if rng.random() < 0.9 else None,
            sender="someone@client.example",
            subject=rng.choice(["Re: hello", "Re: we miss you"]),
            text=rng.choice(["Call me", "Not now", "Out of office"]),
            automatic=rng.random() < 0.2,
            now=now - timedelta(hours=rng.uniform(0, 40 * 24)),
            status=rng.choice(["new", "new", "new", "answered"]),
        )
    called = now - timedelta(days=rng.uniform(0, 400))
    for _ in range(rng.choice([0, 0, 1, 2])):
        if rng.random() < 0.5:
            called = now - timedelta(days=rng.uniform(0, 400))
        conn.execute(
            OUTCOMES.insert().values(
                customer_id=cid,
                rep_external_id=rng.choice(["R1", "R2", None]),
                called_at=called,  # a repeat keeps the moment: two calls at once
                reached=rng.choice(["nobody", "decision_maker", "someone_else"]),
                worth=rng.choice(["yes", "later", "no"]),
                next_step=rng.choice(["nothing", "call_again"]),
                source="cli",
                created_at=now,
            )
        )


NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
POLICIES = [ListPolicy(), ListPolicy(size=3, cooldown_days=30), ListPolicy(size=40)]


def _seen(lists: list[CallList]) -> list[Any]:
    return [
        (
            cl.rep.external_id,
            cl.day,
            cl.more,
            [
                (
                    i.customer.id,
                    i.rank,
                    i.priority,
                    i.value_at_risk,
                    i.value_per_year,
                    i.why,
                    i.person,
                    i.history,
                    i.replies,
                    i.last_call,
                    i.questions,
                    i.dates,
                    i.interests,
                )
                for i in cl.items
            ],
        )
        for cl in lists
    ]


def _same(store: Store, now: datetime, policy: ListPolicy, **kw: Any) -> list[CallList]:
    indexed = build_lists(store, now, policy, **kw)
    reference = build_lists_full_scan(store, now, policy, **kw)
    assert _seen(indexed) == _seen(reference)
    return indexed


@pytest.mark.parametrize("seed", range(6))
def test_indexed_lists_equal_the_full_scan(store: Store, seed: int) -> None:
    generate(store, seed, NOW)
    listed = more = 0
    for policy in POLICIES:
        for now in (NOW, NOW + timedelta(hours=13)):
            everyone = _same(store, now, policy)
            assert [cl.rep.external_id for cl in everyone] == [r for r, _ in REPS]
            listed += sum(len(cl.items) for cl in everyone)
            more += sum(cl.more for cl in everyone)
            for rep, _ in REPS:
                _same(store, now, policy, reps=[rep])
    for shift in (-3, 1, 2):  # `--date`: a list for another day
        _same(store, NOW, POLICIES[0], reps=["R1", "R3"], day=NOW.date() + timedelta(days=shift))
    assert _same(store, NOW, POLICIES[0], reps=["GHOST"]) == []  # not a rep: no list
    assert listed > 20 and more > 0  # the population exercises the lists, not empty ones
