"""Held out means not contacted: a customer one campaign holds out enters no other campaign
while that holdout's attribution window runs, on the daemon's passes (which still look only
at who is due) and in ``reengage simulate``'s plan; after the window, they are anyone's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from reengage import simulate
from reengage.campaigns import Campaign, parse_campaign
from reengage.enroll import detect_and_enroll
from reengage.store import Store
from reengage.store.activities import NewActivity
from reengage.store.tables import ENROLLMENTS
from tests.integration.test_simulate import workspace

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)  # the store's attribution window (REENGAGE_ATTRIBUTION_DAYS)


def campaign(cid: str, priority: int, holdout: int, min_days_silent: int) -> Campaign:
    text = (
        f"id: {cid}\nname: {cid}\npriority: {priority}\nholdout_percent: {holdout}\n"
        f"audience:\n  lapsed: {{factor: 2.0, min_days_silent: {min_days_silent}}}\n"
        'from: "Acme <hello@acme.example>"\n'
        "steps:\n  - {key: first, after: 0d, subject: Hi, template: tips/tip-1.html.j2}\n"
    )
    parsed, problems = parse_campaign(text, f"{cid}.yaml")
    assert parsed is not None, problems
    return parsed


# "a" holds half its audience out. "b" wants the same customers on the same pass; "c" only
# once they have been silent 75 days (two weeks later). Neither runs beside another.
CAMPAIGNS = [campaign("a", 10, 50, 21), campaign("b", 5, 0, 21), campaign("c", 0, 0, 75)]


def lapsed(store: Store, count: int) -> dict[str, int]:
    """Customers who ordered every ten days until 60 days before START."""
    rows = [{"external_id": f"k{n}", "email": f"k{n}@example.com"} for n in range(count)]
    store.customers.upsert_customers(rows, START)
    ids = store.customers.customer_ids([r["external_id"] for r in rows])
    orders = [
        NewActivity(f"{key}-{d}", cid, "order", START - timedelta(days=d), 50.0, 10.0)
        for key, cid in ids.items()
        for d in (90, 80, 70, 60)
    ]
    store.customers.add_activities(orders, START)
    return ids


def groups(store: Store) -> dict[str, set[int]]:
    """Customers per campaign and status (``a:holdout``, ``b:active``…)."""
    found: dict[str, set[int]] = {}
    with store.engine.connect() as conn:
        query = sa.select(
            ENROLLMENTS.c.customer_id, ENROLLMENTS.c.campaign_id, ENROLLMENTS.c.status
        )
        for cid, campaign_id, status in conn.execute(query):
            found.setdefault(f"{campaign_id}:{status}", set()).add(cid)
    return found


def test_a_held_out_customer_enters_no_other_campaign_until_the_window_ends(
    store: Store,
) -> None:
    ids = lapsed(store, 40)
    first = detect_and_enroll(store, CAMPAIGNS, START)
    held = groups(store)["a:holdout"]
    assert 5 < len(held) < 35 and first.entered["a"] == 40 - len(held)
    # They used to go straight to "b", mailed on the very pass "a" held them out.
    assert groups(store).keys() == {"a:holdout", "a:active"}, groups(store)

    # Two weeks on "c" wants them too; nothing is due (their looks wait for the window).
    for days in (7, 16, 29):
        report = detect_and_enroll(store, CAMPAIGNS, START + timedelta(days=days))
        assert not report.whole and report.looked_at == 0, days
    assert groups(store).keys() == {"a:holdout", "a:active"}

    # The window is over: the pass that looks only at who is due finds every one of them,
    # and the first campaign by priority takes them.
    after = detect_and_enroll(store, CAMPAIGNS, START + WINDOW + timedelta(minutes=1))
    assert not after.whole and after.looked_at == len(held)
    assert groups(store)["b:active"] == held
    assert set(ids.values()) - held == groups(store)["a:active"]


def test_a_customer_held_out_earlier_waits_for_the_window_on_every_pass(store: Store) -> None:
    """Held out at START by a campaign on its own; "c" arrives later (a new file: a whole
    pass) and still leaves them alone until the window ends, a whole pass included."""
    lapsed(store, 40)
    detect_and_enroll(store, CAMPAIGNS[:1], START)
    held = groups(store)["a:holdout"]
    day20 = detect_and_enroll(store, CAMPAIGNS[::2], START + timedelta(days=20), whole=True)
    assert day20.whole and day20.looked_at == 40 and not day20.entered
    after = detect_and_enroll(store, CAMPAIGNS[::2], START + WINDOW)
    assert not after.whole and after.entered["c"] == len(held)
    assert groups(store)["c:active"] == held


def test_simulate_plans_no_mail_to_a_held_out_customer_during_the_window(store: Store) -> None:
    lapsed(store, 40)
    plan = simulate.simulate(workspace(), store, CAMPAIGNS, now=START, days=45, sample=0)
    held = {e.customer for e in plan.entries if e.campaign_id == "a" and e.held_out}
    assert held
    mailed = [m for m in plan.mails if m.customer in held]
    assert mailed and all(m.at >= START + WINDOW for m in mailed), mailed
    # "b" takes them the day the window ends (and "a"'s treated as soon as "a" is done).
    later = {e.customer: e.at for e in plan.entries if e.campaign_id == "b" and e.customer in held}
    assert set(later) == held
    assert all(START + WINDOW <= at < START + WINDOW + timedelta(days=1) for at in later.values())
