"""One rep's list reads that rep's rows through indexes, never a scan of a whole table.

On a base of 30,000 customers shared by 60 reps (with their stats, a call task or two
each, replies and call outcomes, and fresh planner statistics on PostgreSQL), every query
a rep's list makes is explained by the database itself: no sequential scan of customers,
their stats, call tasks, replies or call outcomes. Correct answers are the exactness
test's business (``test_call_lists_indexed``); this one catches a plan that would read the
whole base for each of a hundred reps once the tables are large.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from reengage.store import Store
from reengage.store.rep_calls import of_rep, rep_signals
from reengage.store.rep_stats import rep_valued, valued_query
from reengage.store.tables import CALLS, CUSTOMERS, OUTCOMES, REPLIES, STATS
from tests.integration.plans import postgres_scans, recording, sqlite_scans

NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
CUSTOMERS_N = 30_000
REPS_N = 60
WHOLE = {"customers", "customer_stats", "call_tasks", "replies", "call_outcomes", "activities"}


def _fill(store: Store) -> None:
    customers, stats, calls, replies, outcomes = [], [], [], [], []
    for n in range(1, CUSTOMERS_N + 1):
        customers.append(
            {
                "id": n,
                "external_id": f"c{n}",
                "email": f"c{n}@client.example",
                "rep_external_id": f"R{n % REPS_N:02d}",
                "status": "do_not_contact" if n % 23 == 0 else "active",
                "paused_until": NOW + timedelta(days=5) if n % 17 == 0 else None,
                "locale": "en",
                "consent": True,
                "contacts": [],
                "interests": [],
                "important_dates": [],
                "tags": [],
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        last = NOW - timedelta(days=n % 400)
        stats.append(
            {
                "customer_id": n,
                "activity_count": 4,
                "order_count": 4,
                "first_order_at": last - timedelta(days=120),
                "last_order_at": last,
                "last_activity_at": last,
                "total_value": float(n % 7) * 100,
                "total_margin": 0.0,
                "recent_orders": [],
                "typical_gap_days": 30.0,
                "updated_at": NOW,
                "look_version": 0,
            }
        )
        for k in range(n % 3):  # most calls are done: the open ones are few of many
            calls.append(
                {
                    "customer_id": n,
                    "reason": "Call step",
                    "priority": "normal",
                    "due_at": NOW - timedelta(days=(n + k) % 30),
                    "status": "open" if (n + k) % 10 == 0 else "done",
                    "created_at": NOW - timedelta(days=40),
                }
            )
        if n % 5 == 0:
            replies.append(
                {
                    "customer_id": n,
                    "sender": f"c{n}@client.example",
                    "subject": "Re: hello",
                    "text": "Call me",
                    "automatic": n % 2 == 0,
                    "status": "new" if n % 3 else "answered",
                    "received_at": NOW - timedelta(days=n % 60),
                }
            )
        if n % 4 == 0:
            outcomes.append(
                {
                    "customer_id": n,
                    "called_at": NOW - timedelta(days=n % 300),
                    "reached": "nobody",
                    "worth": "yes",
                    "next_step": "nothing",
                    "source": "cli",
                    "created_at": NOW,
                }
            )
    with store.engine.begin() as conn:
        for table, rows in (
            (CUSTOMERS, customers),
            (STATS, stats),
            (CALLS, calls),
            (REPLIES, replies),
            (OUTCOMES, outcomes),
        ):
            for start in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[start : start + 5000])
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


def _statements(store: Store) -> list[tuple[str, Any]]:
    """Every statement one rep's list inputs run, with its parameters. On PostgreSQL the
    stats are read by a binary COPY of :func:`valued_query`, which no SELECT hook sees:
    the same query is run as a plain SELECT to be explained."""
    with recording(store) as seen, store.engine.connect() as conn:
        rep_signals(conn, "R07", NOW, NOW - timedelta(days=30))
        if store.dialect == "postgresql":
            conn.execute(valued_query(conn, ["retail"], of_rep(conn, STATS.c.customer_id, "R07")))
        else:
            rep_valued(conn, "R07", ["retail"])
    return seen


def test_one_reps_list_uses_indexes_only(store: Store) -> None:
    _fill(store)
    statements = _statements(store)
    assert len(statements) == 5  # calls, replies, last calls, pauses, stats
    for statement, parameters in statements:
        if store.dialect == "postgresql":
            scanned = postgres_scans(store, statement, parameters, "force_custom_plan", WHOLE)
        else:
            scanned = sqlite_scans(store, statement, parameters, WHOLE)
        assert not scanned, (statement, scanned)
