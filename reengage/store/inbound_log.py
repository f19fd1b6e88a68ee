"""What came in that reengage keeps for a person rather than acts on, in SQL: inbound mail
and webhook events that name no message of ours (``inbound_unmatched``), and the mailbox
mails already recorded (``inbound_mails``, so a mail read again is not recorded twice)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.store.engine import insert_once, upsert_insert
from reengage.store.responses import MessageRef
from reengage.store.tables import INBOUND_MAILS, UNMATCHED
from reengage.timeutil import as_utc


@dataclass(frozen=True)
class Unmatched:
    """One inbound mail or webhook event kept for review instead of acted on."""

    id: int
    received_at: datetime
    source: str
    kind: str
    reason: str
    message_id: int | None
    sender: str
    subject: str
    addresses: str
    detail: str | None


def add_unmatched(
    conn: Connection,
    now: datetime,
    *,
    source: str,
    kind: str,
    reason: str,
    ref: MessageRef | None = None,
    sender: str = "",
    subject: str = "",
    addresses: Sequence[str] = (),
    detail: str | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Keep what could not be matched to our mail and its address, for a person to read;
    False when ``dedupe_key`` says it was kept already."""
    named = ", ".join(addresses[:20]) + (
        f" (+{len(addresses) - 20} more)" if len(addresses) > 20 else ""
    )
    values = {
        "received_at": now,
        "source": source[:16],
        "kind": kind[:16],
        "reason": reason[:32],
        "message_id": ref.id if ref else None,
        "sender": sender[:320],
        "subject": subject[:300],
        "addresses": named[:500],
        "detail": detail[:500] if detail else None,
        "dedupe_key": dedupe_key,
    }
    return insert_once(conn, UNMATCHED, values)


def claim_mail(conn: Connection, key: str, now: datetime, source: str) -> bool:
    """Note a mailbox's mail as recorded; False when it was already. In the transaction
    that records it, so the note and what the mail did are committed together (a second
    poller inserting the same key waits for the first one's commit, then finds it)."""
    insert = upsert_insert(conn.dialect.name, INBOUND_MAILS).values(
        key=key[:200], received_at=now, source=source[:16], outcome="", ours=False
    )
    query = insert.on_conflict_do_nothing(index_elements=["key"]).returning(INBOUND_MAILS.c.id)
    return conn.execute(query).first() is not None


def mail_outcome(conn: Connection, key: str, outcome: str, ours: bool) -> None:
    """What a claimed mail did (kind/action) and whether it named a mail of ours."""
    conn.execute(
        INBOUND_MAILS.update()
        .where(INBOUND_MAILS.c.key == key[:200])
        .values(outcome=outcome[:48], ours=ours)
    )


def mail_was_ours(conn: Connection, key: str) -> bool | None:
    """Whether a mail recorded before named a mail of ours; None when it was never recorded."""
    found = conn.scalar(sa.select(INBOUND_MAILS.c.ours).where(INBOUND_MAILS.c.key == key[:200]))
    return None if found is None else bool(found)


def unmatched(conn: Connection, limit: int) -> tuple[list[Unmatched], int]:
    """The newest ``limit`` unmatched records, newest first, and how many there are."""
    query = sa.select(UNMATCHED).order_by(UNMATCHED.c.received_at.desc(), UNMATCHED.c.id.desc())
    rows = [
        Unmatched(
            **{k: v for k, v in row._mapping.items() if k not in ("dedupe_key", "received_at")},
            received_at=as_utc(row.received_at),
        )
        for row in conn.execute(query.limit(limit))
    ]
    total = int(conn.scalar(sa.select(sa.func.count()).select_from(UNMATCHED)) or 0)
    return rows, total
