"""The detection pass looks only at who is due, and enrolls exactly whom scoring everyone
would (issue 19).

Two stores get the same generated world: customers with every kind of rhythm (weekly,
monthly, erratic, one-time buyers, lapsed long ago), shrinking orders, segments, tags,
consent withdrawn and given back, pauses; campaigns with every kind of audience (silence
ranges, scores, declines, filters on silence, ratio, score and priority; running alone
or in parallel; re-entry windows); the rhythm prior and fitted models. Then weeks of
passes, at uneven moments, with orders, record changes, endings and a refit in between.
One store's passes look only at who is due; the other's look at everyone every time.
After every pass both hold the same enrollments.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from reengage import enroll
from reengage.campaigns import Campaign, parse_campaign
from reengage.enroll import detect_and_enroll
from reengage.horizon import named_horizon
from reengage.lapse_model import LapseModel
from reengage.store import Store
from reengage.store.activities import NewActivity
from reengage.store.tables import CUSTOMERS, ENROLLMENTS

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

AUDIENCES = [
    "lapsed: {factor: 2.0, min_days_silent: 21, max_days_silent: 365, min_score: 0.5}",
    "lapsed: {factor: 1.5, min_days_silent: 7}",
    "lapsed: {factor: 3.0, min_days_silent: 30, max_days_silent: 120}\n  where: ['orders >= 3']",
    "declining: {aov_below: 0.7, margin_below: 0.7}\n  where: ['orders >= 4']",
    "lapsed: {factor: 1.2, min_days_silent: 10}\n"
    "  where: ['days_silent < 60', 'lapse_ratio > 1.8']",
    "lapsed: {factor: 1.0, min_days_silent: 5}\n  where: ['lapse_score >= 0.6', \"'vip' in tags\"]",
    "lapsed: {factor: 1.0, min_days_silent: 5}\n  where: ['priority > 50', 'days_silent >= 20']",
    "lapsed: {factor: 2.0, min_days_silent: 14}\n  where: [\"segment in ['retail']\"]",
]


def campaign(n: int, audience: str, rng: random.Random) -> Campaign:
    text = (
        f"id: c{n}\nname: C{n}\npriority: {rng.randint(0, 3)}\n"
        f"allow_parallel: {str(rng.random() < 0.3).lower()}\n"
        f"not_enrolled_within_days: {rng.choice([5, 20, 90])}\n"
        f"holdout_percent: {rng.choice([0, 10, 50])}\n"
        f"audience:\n  {audience}\n"
        'from: "Acme <hello@acme.example>"\n'
        "steps:\n  - {key: first, after: 0d, subject: Hi, template: tips/tip-1.html.j2}\n"
    )
    parsed, problems = parse_campaign(text, f"c{n}.yaml")
    assert parsed is not None, problems
    return parsed


def orders_of(rng: random.Random, cid: int, key: str) -> list[NewActivity]:
    """A purchase history ending somewhere in the past, in one of several rhythms."""
    kind = rng.choice(["weekly", "monthly", "erratic", "once", "shrinking", "long_gone"])
    gap = {"weekly": 7, "monthly": 30, "erratic": 20, "once": 0, "shrinking": 14}.get(kind, 45)
    count = 1 if kind == "once" else rng.randint(2, 12)
    last = START - timedelta(days=rng.uniform(0, 200 if kind == "long_gone" else 90))
    rows = []
    for i in range(count):
        jitter = rng.uniform(0.3, 2.5) if kind == "erratic" else rng.uniform(0.9, 1.1)
        when = last - timedelta(days=i * gap * jitter)
        amount = 100.0 * (0.3 if kind == "shrinking" and i < 3 else 1.0) * rng.uniform(0.5, 2)
        rows.append(NewActivity(f"{key}-o{i}", cid, "order", when, amount, amount * 0.3))
    return rows


def world(rng: random.Random, customers: int) -> tuple[list[dict[str, Any]], int]:
    rows = [
        {
            "external_id": f"k{i}",
            "email": f"k{i}@example.com",
            "segment": rng.choice(["retail", "wholesale", None]),
            "tags": ["vip"] if rng.random() < 0.3 else [],
            "consent": rng.random() > 0.1,
        }
        for i in range(customers)
    ]
    return rows, customers


class Twin:
    """The same changes, made to both stores."""

    def __init__(self, looking: Store, everyone: Store) -> None:
        self.stores = (looking, everyone)

    def customers(self, rows: list[dict[str, Any]], now: datetime) -> None:
        for store in self.stores:
            store.customers.upsert_customers(rows, now)

    def orders(self, rows: list[NewActivity], now: datetime) -> None:
        for store in self.stores:
            store.customers.add_activities(rows, now)

    def model(self, weights: tuple[float, ...], now: datetime) -> None:
        for store in self.stores:
            store.lapse_models.save(
                LapseModel(90.0, weights, now, 500),
                horizon=named_horizon(90.0),
                auc=None,
                auc_recency=None,
                now=now,
            )

    def pause(self, external_id: str, until: datetime) -> None:
        for store in self.stores:  # as the footer's pause link writes it
            with store.engine.begin() as conn:
                conn.execute(
                    CUSTOMERS.update()
                    .where(CUSTOMERS.c.external_id == external_id)
                    .values(paused_until=until)
                )

    def end_one(self, rng: random.Random, now: datetime) -> None:
        running = sorted(
            (e.customer_id, e.campaign_id) for e in self.stores[0].sending.running_enrollments()
        )
        if not running:
            return
        customer_id, campaign_id = rng.choice(running)
        for store in self.stores:
            [ended] = [
                e.enrollment_id
                for e in store.sending.running_enrollments()
                if (e.customer_id, e.campaign_id) == (customer_id, campaign_id)
            ]
            store.sending.end_enrollment(ended, "replied", now)


def enrolled(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        query = sa.select(
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.enrolled_at,
        ).order_by(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.campaign_id, ENROLLMENTS.c.id)
        return [tuple(row) for row in conn.execute(query)]


def test_looking_only_at_who_is_due_enrolls_exactly_whom_scoring_everyone_would(
    database_url: str, tmp_path: Any
) -> None:
    twin_worlds(database_url, tmp_path, seed=1)


@pytest.mark.parametrize("seed", [2, 3])
def test_more_generated_worlds_on_sqlite(tmp_path: Any, seed: int) -> None:
    twin_worlds(f"sqlite:///{tmp_path / 'looking.db'}", tmp_path, seed=seed)


def twin_worlds(database_url: str, tmp_path: Any, seed: int) -> None:
    """Passes that look only at who is due against passes that look at everyone, over one
    generated world (see the module's docstring)."""
    rng = random.Random(seed)
    other = f"sqlite:///{tmp_path / 'everyone.db'}"
    looking, everyone = Store.open(database_url, upgrade=True), Store.open(other, upgrade=True)
    twin = Twin(looking, everyone)
    campaigns = [campaign(n, a, rng) for n, a in enumerate(AUDIENCES)]
    rows, count = world(rng, 160)
    twin.customers(rows, START)
    ids = looking.customers.customer_ids(r["external_id"] for r in rows)
    assert ids == everyone.customers.customer_ids(r["external_id"] for r in rows)
    twin.orders(
        [o for r in rows for o in orders_of(rng, ids[r["external_id"]], r["external_id"])], START
    )
    now = START
    looked = []
    for step in range(45):
        now += timedelta(hours=rng.choice([1, 7, 20, 30, 72]))
        change = rng.random()
        key = f"k{rng.randrange(count)}"
        if change < 0.25:  # someone orders
            twin.orders([NewActivity(f"{key}-n{step}", ids[key], "order", now, 80.0, 20.0)], now)
        elif change < 0.35:
            twin.customers([{"external_id": key, "consent": rng.random() < 0.7}], now)
        elif change < 0.45:
            twin.customers([{"external_id": key, "tags": rng.choice([[], ["vip"]])}], now)
        elif change < 0.55:
            twin.pause(key, now + timedelta(days=rng.choice([1, 10, 40])))
        elif change < 0.7:
            twin.end_one(rng, now)
        if step == 25:  # a refit: a model whose score does not only grow with silence
            twin.model(tuple(rng.uniform(-1.5, 1.5) for _ in range(7)), now)
        before = len(enrolled(everyone))
        report = detect_and_enroll(looking, campaigns, now)
        whole = detect_and_enroll(everyone, campaigns, now, whole=True)
        assert enrolled(looking) == enrolled(everyone), f"after pass {step} at {now}"
        made = len(enrolled(everyone)) - before  # what each pass says it did, it did
        for said in (report, whole):
            assert sum(said.entered.values()) + sum(said.held_out.values()) == made
        looked.append(report.looked_at)
    assert sum(e[2] in ("active", "holdout") for e in enrolled(looking)) > 20
    # Between changes, a pass looks at a few customers, not everyone.
    assert min(looked) < count / 4, looked
    looking.close()
    everyone.close()


def test_an_order_that_lands_while_a_pass_decides_is_not_overwritten_by_its_answer(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass reads a customer, an order lands, the pass writes "look again in a month":
    the order wins, and the next pass looks at them."""
    rng = random.Random(7)
    c = campaign(0, "lapsed: {factor: 2.0, min_days_silent: 21}", rng)
    store.customers.upsert_customers([{"external_id": "k1", "email": "k1@example.com"}], START)
    cid = store.customers.customer_ids(["k1"])["k1"]
    days = (60, 50, 40, 30)  # a habit every 10 days, silent for 30: looks again in ~days
    orders = [
        NewActivity(f"o{d}", cid, "order", START - timedelta(days=d), 50.0, 10.0) for d in days
    ]
    store.customers.add_activities(orders, START)
    detect_and_enroll(store, [c], START)  # the whole first pass
    read = store.customers.contactable  # what the pass reads after the customers' stats

    def order_lands_meanwhile(ids: Any, now: datetime | None, **options: Any) -> dict[int, Any]:
        store.customers.add_activities(
            [NewActivity("late", cid, "order", START + timedelta(hours=1), 50.0, 10.0)], START
        )
        return read(ids, now, **options)

    monkeypatch.setattr(store.customers, "contactable", order_lands_meanwhile)
    store.customers.upsert_customers([{"external_id": "k1", "tags": ["x"]}], START)
    report = detect_and_enroll(store, [c], START + timedelta(hours=2))
    assert report.looked_at == 1
    monkeypatch.undo()
    assert store.detection.due_ids(START + timedelta(hours=2), after=0, limit=10) == [cid]


def test_a_customer_whose_pause_has_ended_enters_again(store: Store) -> None:
    """Paused from a mail's footer: nothing before the pause ends, then the audience takes
    them as anyone else, on a pass that looks only at who is due."""
    rng = random.Random(9)
    c = campaign(0, "lapsed: {factor: 2.0, min_days_silent: 21}", rng)
    store.customers.upsert_customers([{"external_id": "k1", "email": "k1@example.com"}], START)
    cid = store.customers.customer_ids(["k1"])["k1"]
    orders = [
        NewActivity(f"o{d}", cid, "order", START - timedelta(days=d), 50.0, 10.0)
        for d in (90, 80, 70, 60)
    ]
    store.customers.add_activities(orders, START)
    twin = Twin(store, store)
    twin.stores = (store,)  # one store, paused as the footer's link writes it
    twin.pause("k1", START + timedelta(days=10))
    assert detect_and_enroll(store, [c], START).looked_at == 1  # the first, whole pass
    assert enrolled(store) == []
    assert detect_and_enroll(store, [c], START + timedelta(days=9)).looked_at == 0
    report = detect_and_enroll(store, [c], START + timedelta(days=10, minutes=5))
    assert report.looked_at == 1 and not report.whole
    assert [(e[0], e[1]) for e in enrolled(store)] == [(cid, "c0")]


class Killed(Exception):
    """A worker's process ends here: nothing after it runs, its chunk's lease stays."""


def test_three_workers_share_each_pass_and_enroll_exactly_whom_one_would(
    database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three workers share every pass, chunk by chunk (small chunks, so each takes several),
    over weeks of changes; a fourth starts the first pass and dies in its first chunk. After
    every pass the set enrolled is the one a single worker scoring everyone enrolls. On
    SQLite too: several workers on one machine may share its file."""
    monkeypatch.setattr(enroll, "CHUNK", 25)
    rng = random.Random(11)
    other = f"sqlite:///{tmp_path / 'everyone.db'}"
    workers = [Store.open(database_url, upgrade=True) for _ in range(3)]
    dead, everyone = Store.open(database_url), Store.open(other, upgrade=True)
    twin = Twin(workers[0], everyone)
    campaigns = [campaign(n, a, rng) for n, a in enumerate(AUDIENCES)]
    rows, count = world(rng, 300)
    twin.customers(rows, START)
    ids = workers[0].customers.customer_ids(r["external_id"] for r in rows)
    twin.orders(
        [o for r in rows for o in orders_of(rng, ids[r["external_id"]], r["external_id"])], START
    )
    lease = timedelta(seconds=30)

    def dies(*_: Any, **__: Any) -> dict[int, Any]:
        raise Killed

    dead.customers.contactable = dies  # type: ignore[method-assign]
    now = START
    with pytest.raises(Killed):  # it started the pass and took the first chunk
        detect_and_enroll(dead, campaigns, now, worker="dead", lease=lease)
    assert dead.detection.running_pass() is not None
    for step in range(12):
        if step:
            now += timedelta(hours=rng.choice([7, 20, 30, 72]))
            key = f"k{rng.randrange(count)}"
            change = rng.random()
            if change < 0.4:
                twin.orders(
                    [NewActivity(f"{key}-n{step}", ids[key], "order", now, 80.0, 20.0)], now
                )
            elif change < 0.6:
                twin.customers([{"external_id": key, "consent": rng.random() < 0.7}], now)
            elif change < 0.8:
                twin.end_one(rng, now)
        before = len(enrolled(everyone))
        reports: list[Any] = []

        def work(store: Store, name: str, now: datetime, reports: list[Any]) -> None:
            later = now + 2 * lease  # the dead worker's lease has run out on this clock
            reports.append(
                detect_and_enroll(
                    store, campaigns, now, worker=name, lease=lease, clock=lambda: later
                )
            )

        threads = [
            threading.Thread(target=work, args=(store, f"w{n}", now, reports))
            for n, store in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(reports) == 3, "a worker failed"
        assert workers[0].detection.running_pass() is None, "the pass was left unfinished"
        detect_and_enroll(everyone, campaigns, now, whole=True)
        assert enrolled(workers[0]) == enrolled(everyone), f"after pass {step} at {now}"
        made = len(enrolled(everyone)) - before
        said = sum(sum(r.entered.values()) + sum(r.held_out.values()) for r in reports)
        assert said == made, (said, made)
        if step == 0:  # the first, whole pass was shared: each worker decided some of it
            assert all(r.looked_at for r in reports), [r.looked_at for r in reports]
            assert sum(r.looked_at for r in reports) >= count
    assert sum(e[2] in ("active", "holdout") for e in enrolled(everyone)) > 20
    for store in (*workers, dead, everyone):
        store.close()


def lapsed_customers(store: Store, prefix: str, count: int) -> dict[str, int]:
    """``count`` customers who ordered every ten days until 60 days before START: lapsed
    for a campaign of factor 2. Their ids by external id."""
    rows = [
        {"external_id": f"{prefix}{n}", "email": f"{prefix}{n}@example.com"} for n in range(count)
    ]
    store.customers.upsert_customers(rows, START)
    ids = store.customers.customer_ids([r["external_id"] for r in rows])
    orders = [
        NewActivity(f"{key}-{d}", cid, "order", START - timedelta(days=d), 50.0, 10.0)
        for key, cid in ids.items()
        for d in (90, 80, 70, 60)
    ]
    store.customers.add_activities(orders, START)
    return ids


def test_holdout_members_are_not_looked_at_again_by_the_passes_that_follow(
    store: Store,
) -> None:
    """A holdout enrollment ends as it is made; the pass that made it dated the member's
    next look already. The passes of the next hour look at nobody (they used to look at
    every holdout member again: a tenth of the lapsed base on every pass)."""
    rng = random.Random(3)
    c = campaign(0, "lapsed: {factor: 2.0, min_days_silent: 21}", rng)
    c = c.model_copy(update={"holdout_percent": 50})
    lapsed_customers(store, "h", 40)
    first = detect_and_enroll(store, [c], START)
    assert first.held_out["c0"] > 5 and first.entered["c0"] > 5
    for minutes in (10, 20, 50):
        later = detect_and_enroll(store, [c], START + timedelta(minutes=minutes))
        assert later.looked_at == 0, minutes


def test_a_customer_who_comes_back_leaves_the_sequence_at_the_next_pass(store: Store) -> None:
    """Enrolled, then they order: the next pass, which looks only at who is due, ends their
    enrollment (`reactivated`) and leaves the others running."""
    rng = random.Random(5)
    c = campaign(0, "lapsed: {factor: 2.0, min_days_silent: 21}", rng)
    c = c.model_copy(update={"holdout_percent": 0})
    ids = lapsed_customers(store, "b", 6)
    assert sum(detect_and_enroll(store, [c], START).entered.values()) == 6
    later = START + timedelta(hours=1)
    store.customers.add_activities(
        [NewActivity("back", ids["b2"], "order", later, 80.0, 20.0)], later
    )
    report = detect_and_enroll(store, [c], START + timedelta(hours=2))
    assert (report.whole, report.looked_at, report.exited) == (False, 1, 1)
    with store.engine.connect() as conn:
        rows_now = conn.execute(
            sa.select(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.status, ENROLLMENTS.c.exit_reason)
        ).all()
    ended = {(cid, status, reason) for cid, status, reason in rows_now if status != "active"}
    assert ended == {(ids["b2"], "exited", "reactivated")}

    # An order imported late, dated half an hour before they were enrolled: the decision
    # did not know it, and scoring everyone now would not enroll them. It ends too; an
    # order re-sent (the same one again) or one older than what the decision saw does not.
    at = START + timedelta(hours=3)
    store.customers.add_activities(
        [
            NewActivity("late", ids["b4"], "order", START - timedelta(minutes=30), 60.0, 12.0),
            NewActivity("older", ids["b5"], "order", START - timedelta(days=65), 60.0, 12.0),
            NewActivity("60-again", ids["b3"], "order", START - timedelta(days=60), 50.0, 10.0),
        ],
        at,
    )
    report = detect_and_enroll(store, [c], at + timedelta(minutes=5))
    assert report.exited == 1
    with store.engine.connect() as conn:
        ended_now = conn.execute(
            sa.select(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.exit_reason).where(
                ENROLLMENTS.c.status == "exited"
            )
        ).all()
    assert sorted(ended_now) == sorted([(ids["b2"], "reactivated"), (ids["b4"], "reactivated")])
