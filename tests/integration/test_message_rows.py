"""A batch's message rows are written in one statement, and decided as one at a time would.

``start_messages`` inserts every new row of a batch at once; a send that meets a row of its
own (a retry, a row a dead worker left queued or on the wire, a mail already sent, one
under way elsewhere) is decided exactly as ``start_message`` decides it alone. Both are
run here on the same rows, in one transaction each rolled back or kept, and compared.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reengage import jobs
from reengage.campaigns import parse_campaign
from reengage.models import MessageStatus
from reengage.store import Store
from reengage.store import messages as rows
from reengage.store.claims import Started
from reengage.store.tables import ENROLLMENTS, MESSAGES
from tests.integration.test_worker import CAMPAIGN, LEASE, NOW, prepare

# What each claimed enrollment's row is before the batch starts (None: it has none).
BEFORE: list[tuple[str, timedelta] | None] = [
    None,
    (MessageStatus.RETRY.value, -LEASE),  # due again: taken over, one more attempt
    (MessageStatus.SENT.value, -LEASE),  # already sent: refused
    (MessageStatus.QUEUED.value, -LEASE),  # its worker died before sending: taken over
    (MessageStatus.SENDING.value, -LEASE),  # died on the wire: unknown, refused
    (MessageStatus.QUEUED.value, LEASE * 10),  # under way elsewhere: refused, held
    None,
]


def table(conn: sa.Connection) -> list[tuple[Any, ...]]:
    # Without ids: PostgreSQL does not give back the ids a rolled back transaction took.
    messages = conn.execute(
        sa.select(
            MESSAGES.c.enrollment_id,
            MESSAGES.c.step_key,
            MESSAGES.c.status,
            MESSAGES.c.attempts,
            MESSAGES.c.recipient,
            MESSAGES.c.lease_until,
        ).order_by(MESSAGES.c.enrollment_id)
    ).all()
    enrollments = conn.execute(
        sa.select(ENROLLMENTS.c.id, ENROLLMENTS.c.status, ENROLLMENTS.c.claimed_until).order_by(
            ENROLLMENTS.c.id
        )
    ).all()
    return [tuple(r) for r in messages] + [tuple(r) for r in enrollments]


def as_decided(started: list[Started]) -> list[Started]:
    # A new row's token is random and its id the database's: the rest must be the same.
    return [
        Started(None, None, s.refused, s.lease_until) if before is None else s
        for s, before in zip(started, BEFORE, strict=True)
    ]


def test_a_batch_of_rows_is_started_as_one_at_a_time_would(
    database_url: str, tmp_path: Path
) -> None:
    store: Store = prepare(database_url, tmp_path, len(BEFORE))
    try:
        campaign, _ = parse_campaign(CAMPAIGN, "always.yaml")
        assert campaign is not None
        jobs.detect_and_enroll(store, [campaign], NOW)
        claimed = sorted(store.sending.claim_due(NOW, 50, LEASE), key=lambda c: c.customer_id)
        assert len(claimed) == len(BEFORE)
        with store.engine.begin() as conn:
            for item, before in zip(claimed, BEFORE, strict=True):
                if before is not None:
                    status, lease = before
                    conn.execute(
                        MESSAGES.insert().values(
                            enrollment_id=item.enrollment_id,
                            customer_id=item.customer_id,
                            campaign_id=item.campaign_id,
                            step_key="first",
                            token=f"old{item.enrollment_id}",
                            recipient=item.email,
                            status=status,
                            attempts=1,
                            lease_until=NOW + lease,
                            created_at=NOW - LEASE,
                        )
                    )
        sends = [(item, "first") for item in claimed]
        later = NOW + LEASE
        with store.engine.connect() as conn:
            one_by_one = [rows.start_message(conn, c, key, later, LEASE) for c, key in sends]
            expected = table(conn)
            conn.rollback()
        with store.engine.begin() as conn:
            together = rows.start_messages(conn, sends, later, LEASE)
            got = table(conn)
        assert got == expected
        new = {
            s.message_id
            for s, before in zip(together, BEFORE, strict=True)
            if before is None and s.message_id is not None
        }
        assert len(new) == BEFORE.count(None)
        assert as_decided(together) == as_decided(one_by_one)
        assert [s.refused for s in together] == [
            None,
            None,
            MessageStatus.SENT.value,
            None,
            MessageStatus.UNKNOWN.value,
            MessageStatus.QUEUED.value,
            None,
        ]
        assert together[1].token == f"old{claimed[1].enrollment_id}"
        # Every new row carries the token the send was given, and only that one.
        with store.engine.connect() as conn:
            tokens = dict(
                conn.execute(
                    sa.select(MESSAGES.c.id, MESSAGES.c.token).where(MESSAGES.c.id.in_(new))
                ).all()
            )
        assert tokens == {s.message_id: s.token for s in together if s.message_id in new}
    finally:
        store.close()
