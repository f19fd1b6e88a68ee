"""``reengage simulate`` on real databases: at any hour and for any length the plan keeps to
send windows and the cap; it starts from the enrollments the daemon would see; it renders a
sample of each mail; and the command shows local dates and what it assumes."""

from __future__ import annotations

import csv
import itertools
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from hypothesis import strategies as st

from reengage import compose, simulate
from reengage.campaigns import WEEKDAYS, Campaign, parse_campaign
from reengage.config import load_settings
from reengage.ingest import Kind, import_file
from reengage.seed import write_dataset
from reengage.sendtimes import window_zone
from reengage.store import Store
from reengage.store import responses as response_sql
from reengage.store.sending import NewEnrollment
from reengage.workdays import WorkingDays
from tests.integration import inprocess

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # a Tuesday
DAY = timedelta(days=1)
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
HABIT = "habit-lapsed-tips"


def workspace(
    zone: str = "UTC", cap: int = 2, templates: Path = ROOT / "templates"
) -> compose.Workspace:
    settings = load_settings(
        env_file=None,
        templates_dir=templates,
        campaigns_dir=ROOT / "campaigns",
        secret_key="k" * 40,
        timezone=zone,
        max_emails_per_week=cap,
    )
    return compose.Workspace.from_settings(settings)


def parse(text: str, name: str = "c.yaml") -> Campaign:
    campaign, problems = parse_campaign(text, name)
    assert problems == []
    assert campaign is not None
    return campaign


def shipped(campaign_id: str) -> Campaign:
    return parse((ROOT / "campaigns" / f"{campaign_id}.yaml").read_text(), campaign_id)


def seed(
    store: Store,
    folder: Path,
    *,
    now: datetime = NOW,
    customers: int = 300,
    zones: list[str] | None = None,
) -> dict[str, dict[str, str]]:
    """Import a generated customer base as of ``now``; their CSV rows by customer id."""
    data = write_dataset(folder, customers, seed=5, now=now)
    with data.customers.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if zones:
        for i, row in enumerate(rows):
            row["timezone"] = zones[i % len(zones)]
        with data.customers.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    for kind, path in (
        (Kind.REPS, data.reps),
        (Kind.CUSTOMERS, data.customers),
        (Kind.ACTIVITIES, data.activities),
    ):
        assert import_file(store, kind, path, now=now, zone=ZoneInfo("UTC")).ok
    return {row["customer_id"]: row for row in rows}


def mails_by_customer(plan: simulate.Simulation) -> dict[str, list[simulate.PlannedMail]]:
    found: dict[str, list[simulate.PlannedMail]] = defaultdict(list)
    for mail in plan.mails:
        found[mail.customer].append(mail)
    return {k: sorted(v, key=lambda m: m.at) for k, v in found.items()}


def entered_at_once(plan: simulate.Simulation, campaign_id: str) -> list[str]:
    """Customers who enter ``campaign_id`` (not its holdout) the moment the plan starts."""
    return [
        e.customer
        for e in plan.entries
        if e.campaign_id == campaign_id and e.at == plan.start and not e.held_out
    ]


def assert_cap_kept(plan: simulate.Simulation, cap: int) -> None:
    for customer, mails in mails_by_customer(plan).items():
        for first, later in zip(mails, mails[cap:], strict=False):
            assert later.at - first.at >= timedelta(days=7), (
                f"{customer} gets {cap + 1} mails between {first.at} and {later.at}"
            )


# -- any moment, any length ------------------------------------------------------------------

DATA_NOW = datetime(2026, 9, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def _offset_changes(zone: str) -> list[datetime]:
    # The DST changes of the year the test draws moments from, found rather than typed in.
    z, found = ZoneInfo(zone), []
    moment = DATA_NOW
    while moment < DATA_NOW + YEAR:
        later = moment + timedelta(hours=1)
        if moment.astimezone(z).utcoffset() != later.astimezone(z).utcoffset():
            found.append(later)
        moment = later
    return found


DST_CHANGES = [c for zone in ZONES for c in _offset_changes(zone)]
MOMENTS = st.one_of(
    st.integers(0, int(YEAR.total_seconds()) // 60).map(lambda m: DATA_NOW + timedelta(minutes=m)),
    st.tuples(st.sampled_from(DST_CHANGES), st.integers(-36 * 60, 36 * 60)).map(
        lambda c: c[0] + timedelta(minutes=c[1])
    ),
)
# Windows open at night too, some opening or closing inside an hour a DST change skips or
# repeats (02:30 in Berlin, New York and Sydney), one until the end of the day.
HOURS = [
    "09:00-17:00",
    "07:30-09:00",
    "00:00-06:00",
    "18:00-23:30",
    "02:00-03:30",
    "02:30-05:00",
    "01:15-02:45",
    "09:00-24:00",
]


@st.composite
def generated(draw: st.DrawFn) -> Campaign:
    """A campaign with any window (zone, hours, days, holidays), step gaps and priority."""
    gaps = draw(st.lists(st.sampled_from(["0d", "1h", "1d", "36h", "2d", "7d"]), min_size=1))
    steps: list[dict[str, Any]] = [
        {"key": f"m{i}", "after": gap, "subject": "Hi", "template": "tips/tip-2.html.j2"}
        for i, gap in enumerate(gaps[:4])
    ]
    if draw(st.booleans()):
        steps.insert(
            draw(st.integers(0, len(steps))),
            {"key": "call", "after": "3d", "call": {"reason": "ask"}},
        )
    holidays = draw(st.lists(st.integers(0, 365), max_size=3))
    return Campaign.model_validate(
        {
            "id": "generated",
            "name": "Generated",
            "priority": draw(st.integers(0, 30)),
            "audience": {"lapsed": {"factor": draw(st.sampled_from([0.5, 1.0, 3.0]))}},
            "not_enrolled_within_days": draw(st.sampled_from([0, 7, 90])),
            "allow_parallel": draw(st.booleans()),
            "send_window": {
                "hours": draw(st.sampled_from(HOURS)),
                "days": draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, unique=True)),
                "timezone": draw(st.sampled_from(["recipient", *ZONES])),
                "skip_dates": [(DATA_NOW + timedelta(days=d)).date() for d in holidays],
            },
            "from": "Acme <hello@acme.example>",
            "steps": steps,
        }
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict[str, Any]]]:
    """A customer base in every test zone (and some with none), on SQLite: the plan's timing
    is policy, read from the database once."""
    folder = tmp_path_factory.mktemp("world")
    store = Store.open(f"sqlite:///{folder / 'world.db'}", upgrade=True)
    rows = seed(store, folder / "data", now=DATA_NOW, customers=150, zones=[*ZONES, ""])
    yield store, rows
    store.close()


@pytest.mark.long
@hypothesis.settings(
    max_examples=40,  # with plans up to 60 days: ~0.6 s each, 72 s at 60 examples of 120
    deadline=None,  # each example reads a real database
    derandomize=True,  # the same cases on every run: a failure reproduces
    database=None,
)
@hypothesis.given(
    now=MOMENTS,
    days=st.integers(1, 60),
    zone=st.sampled_from(["UTC", *ZONES]),
    cap=st.integers(1, 3),
    extra=generated(),
)
def test_at_any_moment_every_planned_mail_is_in_the_plan_in_its_window_and_under_the_cap(
    world: tuple[Store, dict[str, Any]],
    now: datetime,
    days: int,
    zone: str,
    cap: int,
    extra: Campaign,
) -> None:
    store, rows = world
    campaigns = [shipped(HABIT), shipped("declining-check-in"), extra]
    local = ZoneInfo(zone)
    plan = simulate.simulate(workspace(zone, cap), store, campaigns, now=now, days=days, sample=0)

    end = now + timedelta(days=days)
    dates = [d.day for d in plan.days]
    assert dates[0] == now.astimezone(local).date()
    assert dates[-1] == (end - timedelta(microseconds=1)).astimezone(local).date()
    assert dates == [dates[0] + timedelta(days=i) for i in range(len(dates))]
    by_id = {c.id: c for c in campaigns}
    counted: Counter[tuple[date, str]] = Counter()
    for mail in plan.mails:
        window = by_id[mail.campaign_id].send_window
        assert now <= mail.at < end
        assert mail.zone == window_zone(window, rows[mail.customer]["timezone"] or None, local)
        there = mail.at.astimezone(mail.zone)
        opening, closing = window.bounds()
        assert opening <= there.time() < closing, f"{mail} at {there}, window {window.hours}"
        assert WEEKDAYS[there.weekday()] in window.days, f"{mail} on a {there:%A}"
        assert there.date() not in window.skip_dates
        counted[(mail.at.astimezone(local).date(), f"{mail.campaign_id}/{mail.step_key}")] += 1
    assert counted == {(d.day, k): n for d in plan.days for k, n in d.mails.items()}
    assert all(now <= e.at < end for e in plan.entries)
    assert_cap_kept(plan, cap)


BURST = """\
id: burst
name: Three mails, a day apart
audience:
  lapsed: {factor: 1.0}
holdout_percent: 0
send_window: {hours: "00:00-23:59", days: [mon, tue, wed, thu, fri, sat, sun]}
from: "Acme <hello@acme.example>"
steps:
  - {key: one, after: 0d, subject: "One", template: tips/tip-2.html.j2}
  - {key: two, after: 1d, subject: "Two", template: tips/tip-2.html.j2}
  - {key: three, after: 1d, subject: "Three", template: tips/tip-2.html.j2}
"""


def test_the_cap_spreads_one_customers_mails_a_week_apart(store: Store, tmp_path: Path) -> None:
    seed(store, tmp_path / "data", customers=60)
    burst = parse(BURST)
    free = mails_by_customer(simulate.simulate(workspace(cap=0), store, [burst], now=NOW, days=30))
    capped_plan = simulate.simulate(workspace(cap=1), store, [burst], now=NOW, days=30)
    capped = mails_by_customer(capped_plan)
    assert free and set(free) == set(capped)
    at_once = entered_at_once(capped_plan, "burst")  # their third mail is due within the plan
    assert at_once
    for customer in at_once:
        mails = free[customer]
        assert [b.at - a.at for a, b in itertools.pairwise(mails)] == [DAY, DAY]
        spaced = capped[customer]
        assert [m.step_key for m in spaced] == ["one", "two", "three"]
        assert [b.at - a.at for a, b in itertools.pairwise(spaced)] == [7 * DAY] * 2
    assert_cap_kept(capped_plan, 1)


def test_the_plan_keeps_windows_holdout_and_consent(store: Store, tmp_path: Path) -> None:
    seed(store, tmp_path / "data")
    csv_file = tmp_path / "dnc.csv"
    csv_file.write_text("customer_id,email,status\nC000001,a@example.com,do_not_contact\n")
    import_file(store, Kind.CUSTOMERS, csv_file, now=NOW, zone=ZoneInfo("UTC"))
    plan = simulate.simulate(workspace(cap=1), store, [shipped(HABIT)], now=NOW, days=60)
    assert plan.mails, "the lapsed customers in the seed should get mail"
    # Tuesday to Thursday in the recipient's own zone, as the campaign says.
    assert {WEEKDAYS[m.at.astimezone(m.zone).weekday()] for m in plan.mails} <= {
        "tue",
        "wed",
        "thu",
    }
    entered = [e for e in plan.entries if not e.held_out]
    assert entered
    assert any(e.held_out for e in plan.entries)
    assert "C000001" not in {e.customer for e in plan.entries}
    assert plan.skipped["never contacted: no consent, do not contact, suppressed or paused"] >= 1
    firsts = [m for m in plan.mails if m.step_key == "we-miss-you"]
    assert {m.customer for m in firsts} <= {e.customer for e in entered}
    assert_cap_kept(plan, 1)


# -- starting from the real enrollments ------------------------------------------------------


def test_someone_enrolled_ten_days_ago_enters_again_only_after_not_enrolled_within_days(
    store: Store, tmp_path: Path
) -> None:
    seed(store, tmp_path / "data")
    habit = shipped(HABIT)  # not_enrolled_within_days: 90
    ws = workspace()
    before = simulate.simulate(ws, store, [habit], now=NOW, days=60)
    customer = entered_at_once(before, HABIT)[0]
    cid = store.customers.customer_ids([customer])[customer]
    store.sending.enroll(
        [NewEnrollment(cid, HABIT, False, "we-miss-you", NOW - 10 * DAY)], NOW - 10 * DAY
    )
    (enrollment,) = [r for r in store.sending.running_enrollments() if r.customer_id == cid]
    store.sending.end_enrollment(enrollment.enrollment_id, "reply", NOW - 8 * DAY)

    after = simulate.simulate(ws, store, [habit], now=NOW, days=60)
    assert customer not in {e.customer for e in after.entries}
    assert customer not in {m.customer for m in after.mails}
    assert after.skipped[f"{HABIT}: enrolled in it within the last 90 days"] >= 1
    # the others still enter as before
    assert set(entered_at_once(after, HABIT)) == set(entered_at_once(before, HABIT)) - {customer}

    longer = simulate.simulate(ws, store, [habit], now=NOW, days=120)
    (again,) = [e for e in longer.entries if e.customer == customer]
    assert NOW + 80 * DAY < again.at <= NOW + 81 * DAY  # the first daily check past 90 days


RUNNING = """\
id: running-tips
name: Tips already under way
holdout_percent: 0
send_window: {hours: "09:00-17:00", days: [mon, tue, wed, thu, fri], timezone: recipient}
from: "Acme <hello@acme.example>"
steps:
  - {key: hello, after: 0d, subject: "Hello", template: tips/tip-2.html.j2}
  - {key: follow-up, after: 7d, subject: "Again", template: tips/tip-2.html.j2}
  - {key: call, after: 7d, call: {reason: "No answer to two mails"}}
"""


def test_a_running_enrollment_sends_its_rest_and_keeps_its_customer_until_it_ends(
    store: Store, tmp_path: Path
) -> None:
    seed(store, tmp_path / "data")
    habit, running = shipped(HABIT), parse(RUNNING)
    ws = workspace()
    before = simulate.simulate(ws, store, [habit, running], now=NOW, days=60)
    customer = entered_at_once(before, HABIT)[0]
    cid = store.customers.customer_ids([customer])[customer]
    enrolled = NOW - 5 * DAY
    store.sending.enroll(
        [NewEnrollment(cid, running.id, False, "follow-up", NOW + 2 * DAY)], enrolled
    )

    plan = simulate.simulate(ws, store, [habit, running], now=NOW, days=60)
    assert plan.running == {running.id: 1}
    theirs = mails_by_customer(plan)[customer]
    follow_up = theirs[0]
    assert (follow_up.campaign_id, follow_up.step_key) == (running.id, "follow-up")
    assert follow_up.at >= NOW + 2 * DAY
    finished = follow_up.at + 7 * DAY  # the call, the last step: the enrollment completes
    assert plan.day(finished).calls[running.id] == 1
    assert plan.day(finished).exits[f"{running.id}: completed"] == 1
    (entry,) = [e for e in plan.entries if e.customer == customer]
    assert entry.campaign_id == HABIT
    assert finished <= entry.at < finished + DAY  # the first daily check after it ended
    assert all(m.at > entry.at for m in theirs if m.campaign_id == HABIT)


CALLS = """
id: calls-soon
name: A mail, then a call the next day
from: "Acme <hello@acme.example>"
steps:
  - {key: hello, after: 0d, subject: "Hello", template: tips/tip-2.html.j2}
  - {key: call, after: 1d, call: {reason: "Worth a call"}}
"""


def test_a_call_step_due_on_a_day_off_is_planned_on_the_next_working_day(
    store: Store, tmp_path: Path
) -> None:
    """As the reps' lists place it: a call due on Saturday is on Monday's list, and on
    Tuesday's when Monday is a skip date; one the rep sees only after the plan is said."""
    seed(store, tmp_path / "data")
    calls = parse(CALLS)
    ids = store.customers.customer_ids(["C000001", "C000002"])
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    monday = saturday + 2 * DAY
    store.sending.enroll(
        [
            NewEnrollment(ids["C000001"], calls.id, False, "call", saturday),
            NewEnrollment(ids["C000002"], calls.id, False, "call", monday),
        ],
        NOW - DAY,
    )

    def calls_on(plan: simulate.Simulation) -> dict[str, int]:
        return {f"{d.day:%a %d}": d.calls[calls.id] for d in plan.days if d.calls}

    plan = simulate.simulate(workspace(), store, [calls], now=NOW, days=14, sample=0)
    assert calls_on(plan) == {"Mon 30": 2}  # not "Sat 28": 1
    assert plan.day(saturday).exits[f"{calls.id}: completed"] == 1  # its last step is done
    holiday = WorkingDays(skip=frozenset({monday.date()}))
    plan = simulate.simulate(
        workspace(), store, [calls], now=NOW, days=14, sample=0, working_days=holiday
    )
    assert calls_on(plan) == {"Tue 01": 2}
    assert any("the next working day (mon-fri, not 2026-11-30" in a for a in plan.assumptions)
    short = simulate.simulate(workspace(), store, [calls], now=NOW, days=5, sample=0)
    assert calls_on(short) == {}
    assert short.calls_after == {calls.id: 1}  # Saturday's, on Monday's list after the plan


def test_an_enrollment_held_for_a_person_keeps_its_customer_and_sends_nothing(
    store: Store, tmp_path: Path
) -> None:
    seed(store, tmp_path / "data")
    habit, running = shipped(HABIT), parse(RUNNING)
    ws = workspace()
    before = simulate.simulate(ws, store, [habit, running], now=NOW, days=60)
    customer = entered_at_once(before, HABIT)[0]
    cid = store.customers.customer_ids([customer])[customer]
    # A send began a day ago and its worker died: its outcome is unknown until a person says.
    started = NOW - DAY
    store.sending.enroll([NewEnrollment(cid, running.id, False, "hello", started)], started)
    (claimed,) = store.sending.claim_due(started, 10, timedelta(minutes=10))
    begun = store.sending.start_message(claimed, "hello", started, timedelta(minutes=10))
    assert store.sending.mark_sending_many([begun], started, timedelta(minutes=10)) == [True]
    assert store.sending.expire_leases(started + timedelta(hours=1)) == 1

    plan = simulate.simulate(ws, store, [habit, running], now=NOW, days=60)
    assert plan.waiting == {running.id: 1}
    assert plan.running == {}
    assert customer not in {e.customer for e in plan.entries}
    assert customer not in {m.customer for m in plan.mails}
    assert plan.skipped[f"{HABIT}: still in another campaign when the plan ends"] >= 1


def test_a_paused_customer_enters_only_after_the_pause(store: Store, tmp_path: Path) -> None:
    seed(store, tmp_path / "data")
    habit = shipped(HABIT)
    ws = workspace()
    before = simulate.simulate(ws, store, [habit], now=NOW, days=20)
    paused, pause_over = entered_at_once(before, HABIT)[:2]
    ids = store.customers.customer_ids([paused, pause_over])
    with store.engine.begin() as conn:
        response_sql.pause(conn, ids[paused], NOW + 30 * DAY)
        response_sql.pause(conn, ids[pause_over], NOW - DAY)  # it ended yesterday

    short = simulate.simulate(ws, store, [habit], now=NOW, days=20)
    assert paused not in {e.customer for e in short.entries}
    assert paused not in {m.customer for m in short.mails}
    assert pause_over in entered_at_once(short, HABIT)

    longer = simulate.simulate(ws, store, [habit], now=NOW, days=60)
    (entry,) = [e for e in longer.entries if e.customer == paused]
    assert NOW + 30 * DAY <= entry.at < NOW + 31 * DAY


# -- rendering a sample ----------------------------------------------------------------------

RETAIL = """\
id: retail-note
name: A note for retail customers
audience:
  lapsed: {factor: 1.0}
holdout_percent: 0
track_opens: true
send_window: {hours: "00:00-23:59", days: [mon, tue, wed, thu, fri, sat, sun]}
from: "Acme <hello@acme.example>"
steps:
  - {key: hello, after: 0d, subject: "Hello", template: notes/retail.html.j2}
  - key: nudge
    after: 2d
    subject: "Still there?"
    template: declining/check-in.html.j2
    condition: previous_opened
"""
BROKEN_FOR_RETAIL = """\
{% extends "layout/base.html.j2" %}
{% block content %}
<p>Hi {{ customer.first_name or "there" }},</p>
{% if customer.segment == "retail" %}
<p>A note for everyone at {{ customer.company }}.</p>
{% endif %}
{% endblock %}
"""


def templates_with_a_note(tmp_path: Path) -> Path:
    """The shipped templates plus one that breaks for retail customers without a company
    (which validate's sample customers do not catch: its retail sample has one)."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "notes").mkdir()
    (templates / "notes" / "retail.html.j2").write_text(BROKEN_FOR_RETAIL)
    return templates


def test_a_mail_that_would_fail_for_some_customers_is_reported_by_customer_and_step(
    store: Store, tmp_path: Path
) -> None:
    rows = seed(store, tmp_path / "data")
    templates = templates_with_a_note(tmp_path)
    (templates / "notes" / "retail.zh-CN.html.j2").write_text("{{ customer.no_such_field }}")
    ws = workspace(templates=templates)
    note = parse(RETAIL)

    plan = simulate.simulate(ws, store, [note], now=NOW, days=7)
    planned = {m.customer for m in plan.mails if m.step_key == "hello"}
    failed = {
        found.group(1): found.group(2)
        for line in plan.render_failures
        if (found := re.fullmatch(r"would fail for (C\d+) \(retail-note/hello\): (.+)", line))
    }
    assert len(failed) == len(plan.render_failures)  # only the broken step, each named
    assert 0 < plan.rendered <= simulate.SAMPLE  # one mail step planned (the other never goes)
    breaks = {
        c
        for c in planned
        if rows[c]["locale"] == "zh-CN"
        or (rows[c]["segment"] == "retail" and not rows[c]["company"])
    }
    assert failed and set(failed) <= breaks
    assert any("customer.company" in reason for reason in failed.values())
    # nobody opens in a simulation: the step for those who opened is never sent
    assert not [m for m in plan.mails if m.step_key == "nudge"]
    due = [m for m in plan.mails if m.step_key == "hello" and m.at + 2 * DAY < plan.end]
    assert plan.not_sent["retail-note/nudge: condition previous_opened not met"] == len(due)

    few = simulate.simulate(ws, store, [note], now=NOW, days=7, sample=3)
    assert few.rendered == 3
    # every language among the planned customers is in even the smallest sample
    assert any(rows[line.split()[3]]["locale"] == "zh-CN" for line in few.render_failures)


# -- the command ------------------------------------------------------------------------------


def cli(*args: str, cwd: Path, env: dict[str, str]) -> inprocess.Result:
    """``reengage *args`` run in this process (``inprocess.py``), 250 columns wide."""
    return inprocess.cli(*args, cwd=cwd, env={**env, "COLUMNS": "250"})


ROW = re.compile(r"│ (Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d{2}-\d{2}) +│")


@pytest.mark.parametrize(
    ("moment", "zone", "days"),
    [
        pytest.param(
            "2026-11-24T23:59:00+00:00", "Europe/Berlin", 1, id="23:59 UTC, tomorrow in Berlin"
        ),
        pytest.param(
            "2026-03-29T00:30:00+01:00", "Europe/Berlin", 30, id="00:30 on Berlin's DST day"
        ),
        pytest.param("2026-11-24T16:00:00+00:00", "Australia/Sydney", 30, id="16:00 UTC, 30 days"),
        pytest.param("2026-11-24T15:10:00+00:00", "UTC", 30, id="15:10 UTC, 30 days"),
        pytest.param(
            "2026-11-01T01:30:00-04:00", "America/New_York", 7, id="01:30 twice in New York"
        ),
        pytest.param(
            "2026-03-28T10:00:00+01:00", "Europe/Berlin", 3, id="3 days over Berlin's DST day"
        ),
        pytest.param(
            "2026-10-24T22:30:00+00:00", "Europe/Berlin", 2, id="2 days over Berlin's fall back"
        ),
    ],
)
def test_the_command_at_a_pinned_moment_shows_local_dates(
    tmp_path: Path, database_url: str, moment: str, zone: str, days: int
) -> None:
    now = datetime.fromisoformat(moment)
    store = Store.open(database_url, upgrade=True)
    try:
        seed(store, tmp_path / "data", now=now, customers=120)
    finally:
        store.close()
    env = {
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_NOW": moment,
        "REENGAGE_TIMEZONE": zone,
        "REENGAGE_CAMPAIGNS_DIR": str(ROOT / "campaigns"),
        "REENGAGE_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    result = cli("simulate", "--days", str(days), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    here = ZoneInfo(zone)
    first = now.astimezone(here).date()
    local = now.astimezone(here)
    end = (local.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=here)
    last = (end - timedelta(microseconds=1)).astimezone(here).date()
    # The plan ends at the same local time, ``days`` calendar days on (23 or 25 hours for
    # a day with a DST change), and says so in its title.
    assert f"to {end:%a %Y-%m-%d} {local:%H:%M} {zone}" in " ".join(result.stdout.split())
    assert f"date ({zone})" in result.stdout
    rows = [(weekday, date.fromisoformat(day)) for weekday, day in ROW.findall(result.stdout)]
    assert rows, result.stdout
    assert all(f"{d:%a}" == weekday for weekday, d in rows)
    shown = [d for _, d in rows]
    assert shown[0] == first  # the lapsed enter at once: the first row is today, locally
    assert shown == sorted(set(shown))
    assert shown[-1] <= last
    assert "This plan assumes:" in result.stdout
    assert "Nobody buys, opens, clicks, replies" in result.stdout
    assert f"Dates are calendar days in {zone}." in result.stdout


def test_the_command_warns_of_mail_that_would_fail_and_shows_one_campaign(
    tmp_path: Path, database_url: str
) -> None:
    store = Store.open(database_url, upgrade=True)
    try:
        seed(store, tmp_path / "data", customers=120)
    finally:
        store.close()
    campaigns = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", campaigns)
    (campaigns / "retail-note.yaml").write_text(RETAIL)
    env = {
        "REENGAGE_DATABASE_URL": database_url,
        "REENGAGE_NOW": NOW.isoformat(),
        "REENGAGE_CAMPAIGNS_DIR": str(campaigns),
        "REENGAGE_TEMPLATES_DIR": str(templates_with_a_note(tmp_path)),
    }
    result = cli("simulate", "--days", "14", "--campaign", "retail-note", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "skipped" not in result.stderr  # validate let it through: only real data breaks it
    assert re.search(r"warning: \d+ of \d+ sample mails would fail to render", result.stdout)
    assert re.search(
        r"would fail for C\d+ \(retail-note/hello\): .*customer\.company", result.stdout
    )
    assert "not sent: retail-note/nudge: condition previous_opened not met" in result.stdout
    assert "previous_opened does not (the step is skipped)" in result.stdout
    assert HABIT not in result.stdout.split("This plan assumes:")[0]  # only the one asked for
