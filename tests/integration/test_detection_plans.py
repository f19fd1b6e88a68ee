"""The detection pass's chunk reads use indexes on a filled database, also under a generic
plan (issue 19).

A pass reads each chunk of customers with a handful of statements: the chunk itself (ids
and look versions), the profiles, the contact facts, the enrollment history. Each selects
the chunk's id range (and, between whole passes, who is due), never a list of ids. Here the
tables are filled (30,000 customers, most with stats, two thirds with two enrollments each, one in
a hundred due), analysed, and every statement a chunk's reads send is explained: on SQLite
with ``EXPLAIN QUERY PLAN``, on PostgreSQL as a prepared statement with the planner's
custom plan and with a generic one forced (``plan_cache_mode = force_generic_plan``: the
issue saw a generic plan, cached while ``enrollments`` was empty, stick as a sequential
scan and make the second pass 12 times slower). None may scan customers, their stats,
enrollments or activities from end to end.

The due are one in a hundred so that a chunk of them is a small part of each table, as a
chunk of 5,000 is of a base of millions: with 2% due here (600 customers), PostgreSQL reads
the 40,000 enrollments whole (a hashed ``= ANY``, 20 ms), rightly at that size.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from reengage.store import Store
from reengage.store.looks import Chunk
from reengage.store.tables import CUSTOMERS, ENROLLMENTS, STATS, SUPPRESSIONS
from tests.integration.plans import postgres_scans, recording, sqlite_scans

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
CUSTOMERS_N = 30_000
WATCHED = {"customers", "customer_stats", "enrollments", "activities"}


def fill(store: Store) -> None:
    """30,000 customers in a few multi-row inserts; stats for all but every fiftieth, one in
    a hundred due now (spread over the whole table: a chunk of them spans every id), the rest
    due in weeks; two thirds in two campaigns (running or ended)."""
    long_ago = NOW - timedelta(days=400)
    customers = [
        {
            "id": i,
            "external_id": f"c{i}",
            "email": f"c{i}@example.com",
            "segment": ("retail", "wholesale", None)[i % 3],
            "locale": "en",
            "consent": i % 11 != 0,
            "status": "active",
            "contacts": [],
            "interests": [],
            "important_dates": [],
            "tags": ["vip"] if i % 7 == 0 else [],
            "created_at": long_ago,
            "updated_at": long_ago,
        }
        for i in range(1, CUSTOMERS_N + 1)
    ]
    stats = [
        {
            "customer_id": i,
            "segment": ("retail", "wholesale", None)[i % 3],
            "activity_count": 4,
            "order_count": 4,
            "first_activity_at": long_ago,
            "last_activity_at": NOW - timedelta(days=i % 90),
            "first_order_at": long_ago,
            "last_order_at": NOW - timedelta(days=i % 90),
            "total_value": 400.0,
            "total_margin": 100.0,
            "recent_orders": [],
            "typical_gap_days": 30.0,
            "updated_at": long_ago,
            "look_again_at": (
                None if i % 400 == 1 else NOW - timedelta(hours=1) if i % 400 == 201 else NOW
            )
            if i % 200 in (1, 2)
            else NOW + timedelta(days=i % 60 + 1),
            "look_version": 0,
        }
        for i in range(1, CUSTOMERS_N + 1)
        if i % 50 != 0
    ]
    enrollments = [
        {
            "customer_id": i,
            "campaign_id": campaign,
            "status": ("active", "completed", "exited", "holdout")[(i + n) % 4],
            "next_step": 1,
            "enrolled_at": NOW - timedelta(days=(i + 50 * n) % 200),
            "ended_at": None if (i + n) % 4 == 0 else NOW - timedelta(days=i % 100),
        }
        for i in range(1, CUSTOMERS_N + 1)
        if i % 3
        for n, campaign in enumerate(("winback", "tips"))
    ]
    suppressed = [
        {"email": f"c{i}@example.com", "reason": "bounce", "created_at": NOW}
        for i in range(1, CUSTOMERS_N + 1, 97)
    ]
    with store.engine.begin() as conn:
        for table, rows in (
            (CUSTOMERS, customers),
            (STATS, stats),
            (ENROLLMENTS, enrollments),
            (SUPPRESSIONS, suppressed),
        ):
            for start in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[start : start + 5000])
    with store.engine.connect() as conn:  # statistics, as autovacuum would gather them
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


def chunk_reads(store: Store, due_at: datetime | None) -> list[tuple[str, Any]]:
    """The statements one chunk of a pass sends (whole when ``due_at`` is None): as
    ``enroll._decide`` reads them, in its order."""
    with recording(store) as sent:
        chunk = store.detection.next_chunk(after=0, limit=5000, due_at=due_at)
        assert chunk is not None and len(chunk.versions) >= 300
        profiles = list(store.detection.profiles(chunk=chunk))
        info = store.customers.contactable(chunk, NOW, whatever_their_pause=True, lists=True)
        history = store.detection.enrollment_history(chunk, NOW - timedelta(days=90))
    assert len(profiles) == len(chunk.versions) and info and history  # each read finds rows
    assert len(sent) == 4, [s for s, _ in sent]  # one statement each, whatever the chunk
    for statement, parameters in sent:  # a few bound values each, never one per customer
        assert len(parameters) <= 8, statement
    return sent


@pytest.mark.parametrize("due", [False, True], ids=["whole", "due"])
def test_a_chunks_reads_use_indexes_on_a_filled_database(store: Store, due: bool) -> None:
    fill(store)
    reads = chunk_reads(store, NOW if due else None)
    problems = []
    for statement, parameters in reads:
        if store.dialect == "sqlite":
            scans = sqlite_scans(store, statement, parameters, WATCHED)
            problems += [f"{scan}\n  in {statement}" for scan in scans]
            continue
        for mode in ("force_custom_plan", "force_generic_plan"):
            scans = postgres_scans(store, statement, parameters, mode, WATCHED)
            problems += [f"{mode}: {scan}\n  in {statement}" for scan in scans]
    assert not problems, "\n".join(problems)


def test_a_chunk_is_a_range_of_ids_with_the_versions_read_before_the_data(store: Store) -> None:
    """The chunk says which range its reads select; due chunks hold only who is due."""
    fill(store)
    whole = store.detection.next_chunk(after=0, limit=5000, due_at=None)
    assert isinstance(whole, Chunk)
    assert whole.ids == [i for i in range(1, 6000) if i % 50 != 0][:5000]
    assert (whole.after, whole.last) == (0, whole.ids[-1])
    due = store.detection.next_chunk(after=0, limit=5000, due_at=NOW)
    assert due is not None
    assert due.ids == [i for i in range(1, CUSTOMERS_N + 1) if i % 200 in (1, 2)][:5000]
    assert {p.customer_id for p in store.detection.profiles(chunk=due)} == set(due.ids)
    nothing = store.detection.next_chunk(after=CUSTOMERS_N, limit=5000, due_at=None)
    assert nothing is None
