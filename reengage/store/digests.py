"""The morning digests in SQL: one row per rep and local day, written before its mail.

A digest row is written (unique on rep and local day) and committed before its mail is
sent, exactly like a campaign message: two workers or two ticks in the same morning can
never both send it, and a process that dies mid-send leaves an ``unknown`` row, never a
second mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import DigestStatus
from reengage.store.engine import upsert_insert
from reengage.store.tables import DIGESTS


@dataclass(frozen=True)
class DigestRow:
    """A digest written for a rep and day."""

    id: int
    rep_external_id: str
    day: date
    status: str
    token: str
    customer_ids: list[int]
    more: int
    attempts: int
    retry_at: datetime | None


def start_digest(
    conn: Connection,
    rep_external_id: str,
    day: date,
    *,
    token: str,
    customer_ids: list[int],
    more: int,
    status: DigestStatus,
    now: datetime,
    lease: timedelta,
) -> int | None:
    """Write the rep's digest for ``day``; None if it was already written (by anyone)."""
    insert = upsert_insert(conn.dialect.name, DIGESTS).values(
        rep_external_id=rep_external_id,
        day=day,
        status=status.value,
        token=token,
        customer_ids=customer_ids,
        more=more,
        attempts=1 if status is DigestStatus.SENDING else 0,
        lease_until=now + lease if status is DigestStatus.SENDING else None,
        created_at=now,
    )
    query = insert.on_conflict_do_nothing(index_elements=["rep_external_id", "day"]).returning(
        DIGESTS.c.id
    )
    row = conn.execute(query).first()
    return None if row is None else int(row[0])


def claim_retry(conn: Connection, now: datetime, lease: timedelta) -> list[DigestRow]:
    """Digests whose last try failed for now and whose retry time came; leased to us."""
    due = conn.execute(
        sa.select(DIGESTS.c.id).where(
            DIGESTS.c.status == DigestStatus.RETRY.value, DIGESTS.c.retry_at <= now
        )
    ).all()
    claimed: list[DigestRow] = []
    for (digest_id,) in due:
        # One conditional UPDATE per row decides who retries it, on any database.
        taken = conn.execute(
            DIGESTS.update()
            .where(DIGESTS.c.id == digest_id, DIGESTS.c.status == DigestStatus.RETRY.value)
            .values(
                status=DigestStatus.SENDING.value,
                lease_until=now + lease,
                attempts=DIGESTS.c.attempts + 1,
            )
        )
        if taken.rowcount == 1:
            found = digest(conn, digest_id)
            if found is not None:
                claimed.append(found)
    return claimed


def digest(conn: Connection, digest_id: int) -> DigestRow | None:
    """One digest row."""
    row = conn.execute(
        sa.select(
            DIGESTS.c.id,
            DIGESTS.c.rep_external_id,
            DIGESTS.c.day,
            DIGESTS.c.status,
            DIGESTS.c.token,
            DIGESTS.c.customer_ids,
            DIGESTS.c.more,
            DIGESTS.c.attempts,
            DIGESTS.c.retry_at,
        ).where(DIGESTS.c.id == digest_id)
    ).first()
    return None if row is None else DigestRow(*row)


def finish_digest(
    conn: Connection,
    digest_id: int,
    status: DigestStatus,
    *,
    response: str,
    now: datetime,
    message_id: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Record how the digest's send went."""
    conn.execute(
        DIGESTS.update()
        .where(DIGESTS.c.id == digest_id)
        .values(
            status=status.value,
            smtp_response=response[:500],
            message_id=message_id,
            sent_at=now if status is DigestStatus.SENT else None,
            retry_at=retry_at,
            lease_until=None,
        )
    )


def reopen_digest(conn: Connection, rep_external_id: str, day: date) -> str | None:
    """Forget a rep's digest for ``day`` that did not arrive (failed, unknown) or was empty,
    so it can be sent again; returns the status it had (None: there was none). A sent or
    sending digest is kept."""
    found = conn.execute(
        sa.select(DIGESTS.c.status).where(
            DIGESTS.c.rep_external_id == rep_external_id, DIGESTS.c.day == day
        )
    ).scalar()
    reopenable = [DigestStatus.FAILED.value, DigestStatus.UNKNOWN.value, DigestStatus.EMPTY.value]
    if found in reopenable:
        conn.execute(
            DIGESTS.delete().where(
                DIGESTS.c.rep_external_id == rep_external_id,
                DIGESTS.c.day == day,
                DIGESTS.c.status.in_(reopenable),
            )
        )
    return None if found is None else str(found)


def expire_digests(conn: Connection, now: datetime) -> int:
    """Digests whose sender died mid-send become ``unknown``: never re-sent blindly."""
    result = conn.execute(
        DIGESTS.update()
        .where(DIGESTS.c.status == DigestStatus.SENDING.value, DIGESTS.c.lease_until < now)
        .values(status=DigestStatus.UNKNOWN.value, lease_until=None)
    )
    return result.rowcount or 0


def digest_counts(conn: Connection) -> dict[str, int]:
    """Digests by status (for ``doctor``)."""
    query = sa.select(DIGESTS.c.status, sa.func.count()).group_by(DIGESTS.c.status)
    return {status: int(count) for status, count in conn.execute(query)}


def digests_on(conn: Connection, day: date) -> dict[str, str]:
    """Rep → digest status for one day."""
    query = sa.select(DIGESTS.c.rep_external_id, DIGESTS.c.status).where(DIGESTS.c.day == day)
    return {str(rep): str(status) for rep, status in conn.execute(query)}


def digest_customers(conn: Connection, rep_external_id: str, day: date) -> list[int]:
    """The customers on a rep's digest for ``day``, in list order (empty: no digest)."""
    query = sa.select(DIGESTS.c.customer_ids).where(
        DIGESTS.c.rep_external_id == rep_external_id, DIGESTS.c.day == day
    )
    found = conn.scalar(query)
    return [int(i) for i in found] if found else []
