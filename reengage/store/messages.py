"""Message rows and their outcomes: written ``queued`` before SMTP, marked ``sending`` just
before the bytes go out, then finished ``sent``, ``retry``, ``bounced``, ``failed`` or
``unknown``; or ``skipped`` when a step is deliberately not sent.

The unique key ``(enrollment, step)`` decides whether a send may happen at all, so a mail
is never sent twice, whichever worker or pass gets there.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.addresses import normalize_or_keep
from reengage.models import MessageStatus
from reengage.store.claims import Claimed, Started, settle_unknown
from reengage.store.engine import upsert_insert
from reengage.store.enrollments import (
    COMPLETE,
    NEXT_STEP,
    advance,
    due_again,
    end_enrollments,
    hold,
)
from reengage.store.suppressions import suppress
from reengage.store.tables import ENROLLMENTS, MESSAGES


def new_message_key() -> str:
    """A message's opaque key: 22 characters (128 random bits). Keys of 24 characters are
    from before bounce addresses were signed (``compose.bounce_address``): their mail went
    out with an unsigned ``bounces+KEY@``, which still names them."""
    return secrets.token_urlsafe(16)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def start_message(
    conn: Connection, claimed: Claimed, step_key: str, now: datetime, lease: timedelta
) -> Started:
    """Write the ``queued`` row before SMTP. The unique key decides if this send may happen.

    The row names the address the mail goes to (``claimed.email``, the envelope recipient),
    so what comes back about it acts on that address even if the customer's changes later.
    A row left by an earlier attempt is taken over when nothing of it can have gone out (a
    retry, or a queued row whose worker died), with the address this attempt goes to; a
    row whose send was under way when its worker died is settled as ``unknown`` here, once,
    rather than refused on every pass.
    """
    token = new_message_key()
    recipient = normalize_or_keep(claimed.email)
    row = conn.execute(
        _start_statement(conn.dialect.name),
        {
            "b_enrollment": claimed.enrollment_id,
            "b_customer": claimed.customer_id,
            "b_campaign": claimed.campaign_id,
            "b_step": step_key,
            "b_token": token,
            "b_recipient": recipient,
            "b_lease": now + lease,
            "b_now": now,
        },
    ).first()
    if row is not None:
        return Started(row[0], token, lease_until=now + lease)
    existing = conn.execute(
        sa.select(
            MESSAGES.c.id,
            MESSAGES.c.status,
            MESSAGES.c.token,
            MESSAGES.c.lease_until,
            MESSAGES.c.retry_at,
        ).where(MESSAGES.c.enrollment_id == claimed.enrollment_id, MESSAGES.c.step_key == step_key)
    ).one()
    lapsed = existing.lease_until is not None and _aware(existing.lease_until) < now
    if existing.status == MessageStatus.RETRY.value or (
        existing.status == MessageStatus.QUEUED.value and lapsed
    ):
        taken = conn.execute(
            MESSAGES.update()
            .where(MESSAGES.c.id == existing.id, MESSAGES.c.status == existing.status)
            .values(
                status=MessageStatus.QUEUED.value,
                attempts=MESSAGES.c.attempts
                + (1 if existing.status == MessageStatus.RETRY.value else 0),
                lease_until=now + lease,
                recipient=recipient,
            )
        )
        if taken.rowcount:
            return Started(existing.id, existing.token, lease_until=now + lease)
    if existing.status == MessageStatus.SENDING.value and lapsed:
        settle_unknown(conn, [existing.id])
        return Started(None, None, refused=MessageStatus.UNKNOWN.value)
    busy = existing.status in (MessageStatus.SENDING.value, MessageStatus.QUEUED.value)
    if busy and existing.lease_until is not None:
        # Under way elsewhere (or its worker died mid-send and its lease has not run out):
        # nobody claims the enrollment again before that lease ends, so passes meanwhile go
        # to other work instead of claiming this one and being refused every time.
        held = _aware(existing.lease_until)
        conn.execute(
            ENROLLMENTS.update()
            .where(ENROLLMENTS.c.id == claimed.enrollment_id)
            .values(claimed_until=held)
        )
        return Started(None, None, refused=existing.status, lease_until=held)
    return Started(None, None, refused=existing.status)


def start_messages(
    conn: Connection, sends: Sequence[tuple[Claimed, str]], now: datetime, lease: timedelta
) -> list[Started]:
    """:func:`start_message` for a whole batch, in order: the new rows (most of them) in one
    INSERT … ON CONFLICT DO NOTHING RETURNING for all, then each send that met a row of
    its own (a retry, a row a dead worker left) the way :func:`start_message` takes it."""
    if not sends:
        return []
    params: list[dict[str, Any]] = [
        {
            "b_enrollment": claimed.enrollment_id,
            "b_customer": claimed.customer_id,
            "b_campaign": claimed.campaign_id,
            "b_step": step_key,
            "b_token": new_message_key(),
            "b_recipient": normalize_or_keep(claimed.email),
            "b_lease": now + lease,
            "b_now": now,
        }
        for claimed, step_key in sends
    ]
    statement = _start_statement(conn.dialect.name, many=True)
    written = {(row[1], row[2]): row[0] for row in conn.execute(statement, params)}
    started = []
    for (claimed, step_key), values in zip(sends, params, strict=True):
        message_id = written.pop((claimed.enrollment_id, step_key), None)
        if message_id is not None:
            started.append(Started(message_id, values["b_token"], lease_until=now + lease))
        else:  # a row was there before: as start_message decides (its INSERT does nothing)
            started.append(start_message(conn, claimed, step_key, now, lease))
    return started


_START: dict[Any, Any] = {}


def _start_statement(dialect: str, *, many: bool = False) -> Any:
    # INSERT … ON CONFLICT DO NOTHING RETURNING id, once per dialect; for many rows at once
    # (executemany), the key of each row written too.
    if many:
        if (dialect, many) not in _START:
            one = _start_statement(dialect)
            _START[(dialect, many)] = one.returning(MESSAGES.c.enrollment_id, MESSAGES.c.step_key)
        return _START[(dialect, many)]
    if dialect not in _START:
        _START[dialect] = (
            upsert_insert(dialect, MESSAGES)
            .values(
                enrollment_id=sa.bindparam("b_enrollment"),
                customer_id=sa.bindparam("b_customer"),
                campaign_id=sa.bindparam("b_campaign"),
                step_key=sa.bindparam("b_step"),
                token=sa.bindparam("b_token"),
                recipient=sa.bindparam("b_recipient"),
                status=MessageStatus.QUEUED.value,
                attempts=1,
                lease_until=sa.bindparam("b_lease"),
                created_at=sa.bindparam("b_now"),
            )
            .on_conflict_do_nothing(index_elements=["enrollment_id", "step_key"])
            .returning(MESSAGES.c.id)
        )
    return _START[dialect]


def mark_sending_many(
    conn: Connection, started: Sequence[Started], now: datetime, lease: timedelta
) -> list[bool]:
    """These messages' bytes go to the server now: from here a lost worker leaves them
    ``unknown``. For each, whether it is still this worker's (False when its lease ran out
    and another worker took the row over: then this worker must not send). Sends starting
    together share one statement for every lease they hold (a batch's rows share one)."""
    held: dict[datetime, list[int]] = {}
    for one in started:
        if one.message_id is not None and one.lease_until is not None:
            held.setdefault(one.lease_until, []).append(one.message_id)
    marked: set[int] = set()
    for lease_until, ids in held.items():
        rows = conn.execute(
            _MARK_SENDING_MANY, {"b_ids": ids, "b_held": lease_until, "b_lease": now + lease}
        )
        marked.update(row[0] for row in rows)
    return [one.message_id in marked for one in started]


# Run for every group of mails starting: built once (see MARK_SENT below).
_MARK_SENDING_MANY = (
    MESSAGES.update()
    .where(
        MESSAGES.c.id.in_(sa.bindparam("b_ids", expanding=True)),
        MESSAGES.c.status == MessageStatus.QUEUED.value,
        MESSAGES.c.lease_until == sa.bindparam("b_held"),
    )
    .values(status=MessageStatus.SENDING.value, lease_until=sa.bindparam("b_lease"))
    .returning(MESSAGES.c.id)
)

# The statements every send runs, built once: constructing and cache-keying a statement
# per call cost more than executing it (these run once or twice per mail sent).
MARK_SENT = (
    MESSAGES.update()
    .where(MESSAGES.c.id == sa.bindparam("b_id"))
    .values(
        status=MessageStatus.SENT.value,
        smtp_response=sa.bindparam("b_response"),
        message_id=sa.bindparam("b_smtp_id"),
        sent_at=sa.bindparam("b_now"),
        lease_until=None,
    )
)


def finish_sent(
    conn: Connection,
    message_id: int,
    claimed: Claimed,
    *,
    response: str,
    smtp_id: str,
    now: datetime,
    next_step: tuple[int, str, datetime] | None,
) -> None:
    """Mark the message sent and move the enrollment to its next step (or complete it)."""
    conn.execute(
        MARK_SENT,
        {"b_id": message_id, "b_response": response[:500], "b_smtp_id": smtp_id, "b_now": now},
    )
    advance(conn, claimed.enrollment_id, now=now, next_step=next_step)


@dataclass(frozen=True)
class Sent:
    """A message the server accepted, waiting to be recorded with others of its batch."""

    message_id: int
    claimed: Claimed
    response: str
    smtp_id: str
    now: datetime
    next_step: tuple[int, str, datetime] | None


def finish_sent_many(conn: Connection, sent: Sequence[Sent]) -> None:
    """:func:`finish_sent` for many messages: three executemany statements, not 2×N."""
    if not sent:
        return
    conn.execute(
        MARK_SENT,
        [
            {
                "b_id": s.message_id,
                "b_response": s.response[:500],
                "b_smtp_id": s.smtp_id,
                "b_now": s.now,
            }
            for s in sent
        ],
    )
    done = [{"b_id": s.claimed.enrollment_id, "b_now": s.now} for s in sent if not s.next_step]
    if done:
        conn.execute(COMPLETE, done)
    moving = [
        {
            "b_id": s.claimed.enrollment_id,
            "b_now": s.now,
            "b_step": s.next_step[0],
            "b_key": s.next_step[1],
            "b_due": s.next_step[2],
        }
        for s in sent
        if s.next_step
    ]
    if moving:
        conn.execute(NEXT_STEP, moving)


def finish_retry(
    conn: Connection, message_id: int, enrollment_id: int, *, response: str, retry_at: datetime
) -> None:
    """A temporary failure: try again at ``retry_at`` under the same message row."""
    conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.id == message_id)
        .values(
            status=MessageStatus.RETRY.value,
            smtp_response=response[:500],
            retry_at=retry_at,
            lease_until=None,
        )
    )
    due_again(conn, enrollment_id, retry_at)


def finish_bounced(
    conn: Connection, message_id: int, claimed: Claimed, *, response: str, now: datetime
) -> None:
    """A permanent failure: suppress the address everywhere and end the enrollment."""
    conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.id == message_id)
        .values(
            status=MessageStatus.BOUNCED.value,
            smtp_response=response[:500],
            lease_until=None,
        )
    )
    suppress(conn, claimed.email, "bounce", response, now)
    end_enrollments(conn, "bounce", now, enrollment_id=claimed.enrollment_id)


def finish_unknown(conn: Connection, message_id: int, enrollment_id: int, *, response: str) -> None:
    """The connection was lost after the message went out: the server may have kept it. The
    message is ``unknown`` and is never sent again by itself; its enrollment waits for a
    person (``reengage sends list``, ``reengage sends resolve``)."""
    _hold(conn, message_id, enrollment_id, MessageStatus.UNKNOWN, response, "send_unknown")


def finish_failed(
    conn: Connection, message_id: int, enrollment_id: int, *, reason: str, now: datetime
) -> None:
    """The mail could not be made for this customer (a template failed for them), or the
    server refused the mail itself: the message is ``failed`` with the reason; its
    enrollment waits for a person (``reengage sends list``, then ``sends retry``)."""
    _hold(conn, message_id, enrollment_id, MessageStatus.FAILED, reason, "send_failed")


def _hold(
    conn: Connection,
    message_id: int,
    enrollment_id: int,
    status: MessageStatus,
    why: str,
    exit_reason: str,
) -> None:
    # One state change: a message a person must settle, and its enrollment waiting on it.
    conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.id == message_id)
        .values(status=status.value, smtp_response=why[:500], lease_until=None, retry_at=None)
    )
    hold(conn, enrollment_id, exit_reason)


def skip_message(
    conn: Connection, claimed: Claimed, step_key: str, reason: str, now: datetime
) -> None:
    """Record that a step was deliberately not sent (so it is never sent later either)."""
    insert = upsert_insert(conn.dialect.name, MESSAGES)
    conn.execute(
        insert.values(
            enrollment_id=claimed.enrollment_id,
            customer_id=claimed.customer_id,
            campaign_id=claimed.campaign_id,
            step_key=step_key,
            token=new_message_key(),
            status=MessageStatus.SKIPPED.value,
            smtp_response=reason,
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["enrollment_id", "step_key"])
    )


def message_counts(conn: Connection) -> dict[str, int]:
    """Messages by status (for doctor and metrics)."""
    rows = conn.execute(sa.select(MESSAGES.c.status, sa.func.count()).group_by(MESSAGES.c.status))
    return {status: int(count) for status, count in rows}
