"""The sending protocol's SQL: enroll, claim, write the message row first, finish, expire.

Never twice: a message row ``(enrollment, step)`` is unique and is written — and committed
— as ``queued`` before SMTP is touched, and turned ``sending`` (committed) just before its
bytes go to the server. Never lost: a ``queued`` row whose worker died is due again at once
(nothing went out); a ``sending`` one becomes ``unknown``, its enrollment is held for a
person (``reengage sends resolve``), and it is never re-sent blindly.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.addresses import normalize_or_keep
from reengage.models import (
    CallTask,
    Customer,
    CustomerStatus,
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Suppression,
)
from reengage.store.engine import upsert_insert

ENROLLMENTS: sa.Table = Enrollment.__table__  # type: ignore[attr-defined]  # sqlmodel sets it
MESSAGES: sa.Table = Message.__table__  # type: ignore[attr-defined]
SUPPRESSIONS: sa.Table = Suppression.__table__  # type: ignore[attr-defined]
CALLS: sa.Table = CallTask.__table__  # type: ignore[attr-defined]
CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class NewEnrollment:
    """A customer entering a campaign (or its holdout)."""

    customer_id: int
    campaign_id: str
    holdout: bool
    first_step_key: str
    first_due_at: datetime


@dataclass(frozen=True)
class Claimed:
    """An enrollment whose next step is due, claimed by this process for a while."""

    enrollment_id: int
    customer_id: int
    campaign_id: str
    next_step: int
    next_step_key: str | None
    enrolled_at: datetime
    last_step_at: datetime | None
    email: str
    consent: bool
    status: str
    timezone: str | None


def enrollment_history(
    conn: Connection, customer_ids: Sequence[int], since: datetime
) -> list[tuple[int, str, str, datetime]]:
    """``(customer, campaign, status, enrolled_at)`` of active enrollments and recent ones."""
    rows: list[tuple[int, str, str, datetime]] = []
    for start in range(0, len(customer_ids), 10_000):
        chunk = list(customer_ids[start : start + 10_000])
        query = sa.select(
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.enrolled_at,
        ).where(
            ENROLLMENTS.c.customer_id.in_(chunk),
            sa.or_(
                ENROLLMENTS.c.status.in_(
                    [EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ATTENTION.value]
                ),
                ENROLLMENTS.c.enrolled_at >= since,
            ),
        )
        rows.extend((r[0], r[1], r[2], r[3]) for r in conn.execute(query))
    return rows


@dataclass(frozen=True)
class Running:
    """An enrollment still under way (``active``, or ``attention`` waiting for a person),
    with what ``reengage simulate`` needs to carry it on: its next step and its customer."""

    enrollment_id: int
    customer_id: int
    campaign_id: str
    status: str
    next_step_key: str | None
    next_due_at: datetime | None
    enrolled_at: datetime
    external_id: str
    timezone: str | None
    locale: str | None
    reachable: bool  # consent, an active customer, an address not suppressed


def running_enrollments(conn: Connection) -> list[Running]:
    """Every ``active`` or ``attention`` enrollment, oldest due first. Read only."""
    suppressed = (
        sa.exists()
        .where(SUPPRESSIONS.c.email == sa.func.lower(CUSTOMERS.c.email))
        .label("suppressed")
    )
    query = (
        sa.select(
            ENROLLMENTS.c.id,
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.next_step_key,
            ENROLLMENTS.c.next_due_at,
            ENROLLMENTS.c.enrolled_at,
            CUSTOMERS.c.external_id,
            CUSTOMERS.c.timezone,
            CUSTOMERS.c.locale,
            CUSTOMERS.c.consent,
            CUSTOMERS.c.status.label("customer_status"),
            suppressed,
        )
        .join(CUSTOMERS, CUSTOMERS.c.id == ENROLLMENTS.c.customer_id)
        .where(
            ENROLLMENTS.c.status.in_(
                [EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ATTENTION.value]
            )
        )
        .order_by(ENROLLMENTS.c.next_due_at, ENROLLMENTS.c.id)
    )
    return [
        Running(
            row.id,
            row.customer_id,
            row.campaign_id,
            row.status,
            row.next_step_key,
            row.next_due_at,
            row.enrolled_at,
            row.external_id,
            row.timezone,
            row.locale,
            bool(row.consent)
            and row.customer_status == CustomerStatus.ACTIVE.value
            and not row.suppressed,
        )
        for row in conn.execute(query)
    ]


def insert_enrollments(conn: Connection, rows: Iterable[NewEnrollment], now: datetime) -> int:
    """Record new enrollments; holdout members are recorded too (for measuring lift). One
    that would make a second running enrollment of a customer in a campaign is skipped."""
    values = [
        {
            "customer_id": r.customer_id,
            "campaign_id": r.campaign_id,
            "status": (EnrollmentStatus.HOLDOUT if r.holdout else EnrollmentStatus.ACTIVE).value,
            "next_step": 0,
            "next_step_key": None if r.holdout else r.first_step_key,
            "next_due_at": None if r.holdout else r.first_due_at,
            "enrolled_at": now,
            "ended_at": now if r.holdout else None,
        }
        for r in rows
    ]
    if values:
        # A customer already running in the campaign (another pass got there first) is
        # skipped: the unique index on running enrollments decides, not a lock.
        insert = upsert_insert(conn.dialect.name, ENROLLMENTS).on_conflict_do_nothing()
        conn.execute(insert, values)
    return len(values)


def exit_on_activity(conn: Connection, campaign_ids: list[str], now: datetime) -> int:
    """End active enrollments whose customer did something after enrolling."""
    if not campaign_ids:
        return 0
    stats = sa.table("customer_stats", sa.column("customer_id"), sa.column("last_activity_at"))
    acted = sa.exists().where(
        stats.c.customer_id == ENROLLMENTS.c.customer_id,
        stats.c.last_activity_at > ENROLLMENTS.c.enrolled_at,
    )
    result = conn.execute(
        ENROLLMENTS.update()
        .where(ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value)
        .where(ENROLLMENTS.c.campaign_id.in_(campaign_ids))
        .where(acted)
        .values(
            status=EnrollmentStatus.EXITED.value,
            exit_reason="reactivated",
            ended_at=now,
            next_due_at=None,
        )
    )
    return result.rowcount or 0


def claim_due(conn: Connection, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Claim up to ``limit`` enrollments whose next step is due, for ``lease``.

    One UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING id: atomic on SQLite (a single
    writer), and with FOR UPDATE SKIP LOCKED on PostgreSQL so workers on several machines
    take different rows instead of waiting for each other.
    """
    due = (
        sa.select(ENROLLMENTS.c.id)
        .where(
            ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
            ENROLLMENTS.c.next_due_at <= now,
            sa.or_(ENROLLMENTS.c.claimed_until.is_(None), ENROLLMENTS.c.claimed_until < now),
        )
        .order_by(ENROLLMENTS.c.next_due_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed_ids = [
        row[0]
        for row in conn.execute(
            ENROLLMENTS.update()
            .where(ENROLLMENTS.c.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + lease)
            .returning(ENROLLMENTS.c.id)
        )
    ]
    if not claimed_ids:
        return []
    rows = conn.execute(
        sa.select(
            ENROLLMENTS.c.id,
            ENROLLMENTS.c.customer_id,
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.next_step,
            ENROLLMENTS.c.next_step_key,
            ENROLLMENTS.c.enrolled_at,
            ENROLLMENTS.c.last_step_at,
            CUSTOMERS.c.email,
            CUSTOMERS.c.consent,
            CUSTOMERS.c.status,
            CUSTOMERS.c.timezone,
        )
        .join(CUSTOMERS, CUSTOMERS.c.id == ENROLLMENTS.c.customer_id)
        .where(ENROLLMENTS.c.id.in_(claimed_ids))
        .order_by(ENROLLMENTS.c.next_due_at)
    )
    return [Claimed(*row) for row in rows]


def release(conn: Connection, enrollment_id: int, *, next_due_at: datetime | None) -> None:
    """Give a claim back, optionally with a new due time (window closed, cap reached)."""
    values: dict[str, Any] = {"claimed_until": None}
    if next_due_at is not None:
        values["next_due_at"] = next_due_at
    conn.execute(ENROLLMENTS.update().where(ENROLLMENTS.c.id == enrollment_id).values(values))


@dataclass(frozen=True)
class Started:
    """The message row this send will go out under, or why it must not go out."""

    message_id: int | None
    token: str | None
    refused: str | None = None  # "already sent", "in flight elsewhere", "unknown"
    # This worker's lease on the row: only the worker holding it may send (mark_sending).
    lease_until: datetime | None = None


def start_message(
    conn: Connection, claimed: Claimed, step_key: str, now: datetime, lease: timedelta
) -> Started:
    """Write the ``queued`` row before SMTP. The unique key decides if this send may happen.

    A row left by an earlier attempt is taken over when nothing of it can have gone out (a
    retry, or a queued row whose worker died); a row whose send was under way when its
    worker died is settled as ``unknown`` here, once, rather than refused on every pass.
    """
    token = secrets.token_urlsafe(18)
    row = conn.execute(
        _start_statement(conn.dialect.name),
        {
            "b_enrollment": claimed.enrollment_id,
            "b_customer": claimed.customer_id,
            "b_campaign": claimed.campaign_id,
            "b_step": step_key,
            "b_token": token,
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


def put_back(conn: Connection, started: Sequence[Started], now: datetime) -> None:
    """Queued rows this worker will not send after all (it is stopping): due again at once
    for whoever claims them next, and their enrollments' claims given up. Nothing of them
    went out."""
    mine = [s.message_id for s in started if s.message_id is not None]
    if not mine:
        return
    rows = conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.id.in_(mine), MESSAGES.c.status == MessageStatus.QUEUED.value)
        .values(
            status=MessageStatus.RETRY.value,
            retry_at=now,
            lease_until=None,
            attempts=sa.case((MESSAGES.c.attempts > 0, MESSAGES.c.attempts - 1), else_=0),
        )
        .returning(MESSAGES.c.enrollment_id)
    ).all()
    if rows:
        conn.execute(
            ENROLLMENTS.update()
            .where(ENROLLMENTS.c.id.in_([r[0] for r in rows]))
            .values(claimed_until=None)
        )


def unmark_sending(conn: Connection, started: Sequence[Started], now: datetime) -> None:
    """Rows marked ``sending`` whose sends were cancelled before any byte went out: due
    again at once (as :func:`put_back`)."""
    mine = [s.message_id for s in started if s.message_id is not None]
    if mine:
        conn.execute(
            MESSAGES.update()
            .where(MESSAGES.c.id.in_(mine), MESSAGES.c.status == MessageStatus.SENDING.value)
            .values(status=MessageStatus.QUEUED.value)
        )
        put_back(conn, started, now)


def renew_claims(
    conn: Connection,
    queued: dict[datetime, list[int]],
    enrollment_ids: Sequence[int],
    until: datetime,
) -> set[int]:
    """A live worker keeps what it claimed: its ``queued`` rows (by the lease each holds)
    and its running enrollments are held until ``until``. Returns the rows renewed (a row
    taken over meanwhile is not: its send will be refused, as it must)."""
    renewed: set[int] = set()
    for held, ids in queued.items():
        rows = conn.execute(
            MESSAGES.update()
            .where(
                MESSAGES.c.id.in_(ids),
                MESSAGES.c.status == MessageStatus.QUEUED.value,
                MESSAGES.c.lease_until == held,
            )
            .values(lease_until=until)
            .returning(MESSAGES.c.id)
        )
        renewed.update(row[0] for row in rows)
    if enrollment_ids:
        conn.execute(
            ENROLLMENTS.update()
            .where(
                ENROLLMENTS.c.id.in_(list(enrollment_ids)),
                ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
                ENROLLMENTS.c.claimed_until.is_not(None),
            )
            .values(claimed_until=until)
        )
    return renewed


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


# Run for every group of mails starting: built once (see _SENT below).
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


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
        _SENT,
        {"b_id": message_id, "b_response": response[:500], "b_smtp_id": smtp_id, "b_now": now},
    )
    advance(conn, claimed, now=now, next_step=next_step)


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
        _SENT,
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
        conn.execute(_COMPLETE, done)
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
        conn.execute(_NEXT_STEP, moving)


def advance(
    conn: Connection,
    claimed: Claimed,
    *,
    now: datetime,
    next_step: tuple[int, str, datetime] | None,
) -> None:
    """Move an enrollment on: the next step and when, or completed."""
    if next_step is None:
        conn.execute(_COMPLETE, {"b_id": claimed.enrollment_id, "b_now": now})
    else:
        index, key, due = next_step
        conn.execute(
            _NEXT_STEP,
            {
                "b_id": claimed.enrollment_id,
                "b_now": now,
                "b_step": index,
                "b_key": key,
                "b_due": due,
            },
        )


# The statements every send runs, built once: constructing and cache-keying a statement
# per call cost more than executing it (these run once or twice per mail sent).
_SENT = (
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
# An enrollment moves on from a send only while it is running or held for that send: one
# whose lease ran out mid-send (``attention``) goes on when the server's 250 arrives after
# all, and one that ended meanwhile (an unsubscribe) stays ended.
# (Two comparisons, not IN: these statements run as executemany, which IN cannot.)
_MOVABLE = sa.or_(
    ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
    ENROLLMENTS.c.status == EnrollmentStatus.ATTENTION.value,
)
_COMPLETE = (
    ENROLLMENTS.update()
    .where(ENROLLMENTS.c.id == sa.bindparam("b_id"), _MOVABLE)
    .values(
        status=EnrollmentStatus.COMPLETED.value,
        ended_at=sa.bindparam("b_now"),
        next_due_at=None,
        next_step_key=None,
        exit_reason="completed",
        claimed_until=None,
        last_step_at=sa.bindparam("b_now"),
    )
)
_NEXT_STEP = (
    ENROLLMENTS.update()
    .where(ENROLLMENTS.c.id == sa.bindparam("b_id"), _MOVABLE)
    .values(
        status=EnrollmentStatus.ACTIVE.value,
        exit_reason=None,
        next_step=sa.bindparam("b_step"),
        next_step_key=sa.bindparam("b_key"),
        next_due_at=sa.bindparam("b_due"),
        claimed_until=None,
        last_step_at=sa.bindparam("b_now"),
    )
)
_START: dict[str, Any] = {}


def _start_statement(dialect: str) -> Any:
    # INSERT … ON CONFLICT DO NOTHING RETURNING id, once per dialect.
    if dialect not in _START:
        _START[dialect] = (
            upsert_insert(dialect, MESSAGES)
            .values(
                enrollment_id=sa.bindparam("b_enrollment"),
                customer_id=sa.bindparam("b_customer"),
                campaign_id=sa.bindparam("b_campaign"),
                step_key=sa.bindparam("b_step"),
                token=sa.bindparam("b_token"),
                status=MessageStatus.QUEUED.value,
                attempts=1,
                lease_until=sa.bindparam("b_lease"),
                created_at=sa.bindparam("b_now"),
            )
            .on_conflict_do_nothing(index_elements=["enrollment_id", "step_key"])
            .returning(MESSAGES.c.id)
        )
    return _START[dialect]


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
    conn.execute(
        ENROLLMENTS.update()
        .where(ENROLLMENTS.c.id == enrollment_id, _MOVABLE)
        .values(
            status=EnrollmentStatus.ACTIVE.value,
            exit_reason=None,
            next_due_at=retry_at,
            claimed_until=None,
        )
    )


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
    end_enrollment(conn, claimed.enrollment_id, "bounce", now)


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
    conn.execute(  # unless it ended meanwhile (a reply, a call): then it stays ended
        ENROLLMENTS.update()
        .where(ENROLLMENTS.c.id == enrollment_id, _MOVABLE)
        .values(
            status=EnrollmentStatus.ATTENTION.value,
            exit_reason=exit_reason,
            claimed_until=None,
        )
    )


@dataclass(frozen=True)
class HeldMessage:
    """A message a person must look at: it failed, or its outcome is unknown."""

    message_id: int
    status: str
    customer: str  # external id
    email: str
    campaign_id: str
    step_key: str
    created_at: datetime
    reason: str | None


def held_messages(
    conn: Connection, statuses: Sequence[str], campaign_id: str | None, limit: int
) -> list[HeldMessage]:
    """Messages in ``statuses`` (``failed``, ``unknown``), newest first."""
    query = (
        sa.select(
            MESSAGES.c.id,
            MESSAGES.c.status,
            CUSTOMERS.c.external_id,
            CUSTOMERS.c.email,
            MESSAGES.c.campaign_id,
            MESSAGES.c.step_key,
            MESSAGES.c.created_at,
            MESSAGES.c.smtp_response,
        )
        .join(CUSTOMERS, CUSTOMERS.c.id == MESSAGES.c.customer_id)
        .where(MESSAGES.c.status.in_(list(statuses)))
        .order_by(MESSAGES.c.created_at.desc(), MESSAGES.c.id.desc())
        .limit(limit)
    )
    if campaign_id is not None:
        query = query.where(MESSAGES.c.campaign_id == campaign_id)
    return [HeldMessage(*row) for row in conn.execute(query)]


@dataclass(frozen=True)
class Held:
    """A failed or unknown message, with what settling it needs."""

    message_id: int
    enrollment_id: int
    campaign_id: str
    step_key: str
    created_at: datetime


def held(
    conn: Connection,
    statuses: Sequence[str],
    message_ids: Sequence[int] | None,
    campaign_id: str | None,
) -> list[Held]:
    """Messages in ``statuses`` (all, or these ids, or this campaign's), oldest first."""
    query = (
        sa.select(
            MESSAGES.c.id,
            MESSAGES.c.enrollment_id,
            MESSAGES.c.campaign_id,
            MESSAGES.c.step_key,
            MESSAGES.c.created_at,
        )
        .where(MESSAGES.c.status.in_(list(statuses)))
        .order_by(MESSAGES.c.id)
    )
    if message_ids is not None:
        query = query.where(MESSAGES.c.id.in_(list(message_ids)))
    if campaign_id is not None:
        query = query.where(MESSAGES.c.campaign_id == campaign_id)
    return [Held(*row) for row in conn.execute(query)]


def settle(
    conn: Connection,
    message: Held,
    status: MessageStatus,
    *,
    note: str,
    now: datetime,
    next_step: tuple[int, str, datetime] | None,
) -> None:
    """A person decided what became of a held message: it was ``sent`` (the customer got
    it) or is ``skipped`` (never to be sent); either way its enrollment moves on to
    ``next_step`` (or completes). Only a message still failed or unknown is settled."""
    result = conn.execute(
        MESSAGES.update()
        .where(
            MESSAGES.c.id == message.message_id,
            MESSAGES.c.status.in_([MessageStatus.UNKNOWN.value, MessageStatus.FAILED.value]),
        )
        .values(
            status=status.value,
            smtp_response=note[:500],
            sent_at=message.created_at if status is MessageStatus.SENT else None,
            lease_until=None,
            retry_at=None,
        )
    )
    if not result.rowcount:
        return
    if next_step is None:
        conn.execute(_COMPLETE, {"b_id": message.enrollment_id, "b_now": now})
    else:
        index, key, due = next_step
        conn.execute(
            _NEXT_STEP,
            {
                "b_id": message.enrollment_id,
                "b_now": now,
                "b_step": index,
                "b_key": key,
                "b_due": due,
            },
        )


def resend(conn: Connection, messages: Sequence[Held], now: datetime) -> tuple[int, int]:
    """Send held messages again at the next pass, each under its own row (at most once
    more): for a failed one after its template was fixed, for an unknown one when a person
    has checked that it did not arrive. One whose sequence ended meanwhile (the customer
    paused, replied, unsubscribed) is not sent: it is ``skipped``, saying why. Returns how
    many will be sent, and how many were skipped."""
    if not messages:
        return 0, 0
    going = {
        row[0]
        for row in conn.execute(
            ENROLLMENTS.update()
            .where(
                ENROLLMENTS.c.id.in_(sorted({m.enrollment_id for m in messages})),
                _MOVABLE,
            )
            .values(
                status=EnrollmentStatus.ACTIVE.value,
                exit_reason=None,
                next_due_at=now,
                claimed_until=None,
            )
            .returning(ENROLLMENTS.c.id)
        )
    }
    held = [MessageStatus.UNKNOWN.value, MessageStatus.FAILED.value]
    again = [m.message_id for m in messages if m.enrollment_id in going]
    ended = [m.message_id for m in messages if m.enrollment_id not in going]
    for ids, values in (
        (again, {"status": MessageStatus.RETRY.value, "retry_at": now}),
        (
            ended,
            {
                "status": MessageStatus.SKIPPED.value,
                "retry_at": None,
                "smtp_response": "not sent again: its sequence had ended",
            },
        ),
    ):
        if ids:
            conn.execute(
                MESSAGES.update()
                .where(MESSAGES.c.id.in_(ids), MESSAGES.c.status.in_(held))
                .values(lease_until=None, **values)
            )
    return len(again), len(ended)


@dataclass(frozen=True)
class EnrollmentLine:
    """One of a customer's enrollments, for a person reading their file."""

    campaign_id: str
    status: str
    enrolled_at: datetime
    next_step_key: str | None
    next_due_at: datetime | None
    exit_reason: str | None


@dataclass(frozen=True)
class MessageLine:
    """One of a customer's mails, for a person reading their file."""

    message_id: int
    campaign_id: str
    step_key: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    detail: str | None


def customer_sending(
    conn: Connection, customer_id: int, limit: int = 50
) -> tuple[list[EnrollmentLine], list[MessageLine]]:
    """A customer's enrollments and mails, newest first."""
    enrollments = conn.execute(
        sa.select(
            ENROLLMENTS.c.campaign_id,
            ENROLLMENTS.c.status,
            ENROLLMENTS.c.enrolled_at,
            ENROLLMENTS.c.next_step_key,
            ENROLLMENTS.c.next_due_at,
            ENROLLMENTS.c.exit_reason,
        )
        .where(ENROLLMENTS.c.customer_id == customer_id)
        .order_by(ENROLLMENTS.c.enrolled_at.desc(), ENROLLMENTS.c.id.desc())
        .limit(limit)
    ).all()
    messages = conn.execute(
        sa.select(
            MESSAGES.c.id,
            MESSAGES.c.campaign_id,
            MESSAGES.c.step_key,
            MESSAGES.c.status,
            MESSAGES.c.created_at,
            MESSAGES.c.sent_at,
            MESSAGES.c.smtp_response,
        )
        .where(MESSAGES.c.customer_id == customer_id)
        .order_by(MESSAGES.c.created_at.desc(), MESSAGES.c.id.desc())
        .limit(limit)
    ).all()
    return [EnrollmentLine(*row) for row in enrollments], [MessageLine(*row) for row in messages]


def retry_failed(
    conn: Connection, message_ids: Sequence[int] | None, campaign_id: str | None, now: datetime
) -> int:
    """Send ``failed`` messages again at the next pass (after their template was fixed):
    each goes out under its own row, at most once. ``None`` means every failed message."""
    again, _ = resend(conn, held(conn, [MessageStatus.FAILED.value], message_ids, campaign_id), now)
    return again


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
            token=secrets.token_urlsafe(18),
            status=MessageStatus.SKIPPED.value,
            smtp_response=reason,
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["enrollment_id", "step_key"])
    )


def end_enrollment(conn: Connection, enrollment_id: int, reason: str, now: datetime) -> None:
    """End an enrollment early with its reason."""
    conn.execute(
        ENROLLMENTS.update()
        .where(ENROLLMENTS.c.id == enrollment_id)
        .values(
            status=EnrollmentStatus.EXITED.value,
            exit_reason=reason,
            ended_at=now,
            next_due_at=None,
            claimed_until=None,
        )
    )


def suppress(conn: Connection, email: str, reason: str, detail: str | None, now: datetime) -> None:
    """Never mail ``email`` again (idempotent)."""
    insert = upsert_insert(conn.dialect.name, SUPPRESSIONS)
    conn.execute(
        insert.values(
            email=normalize_or_keep(email),
            reason=reason,
            detail=(detail or "")[:500],
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["email"])
    )


def is_suppressed(conn: Connection, email: str) -> bool:
    """Whether an address is on the suppression list."""
    found = conn.scalar(
        sa.select(SUPPRESSIONS.c.email).where(SUPPRESSIONS.c.email == normalize_or_keep(email))
    )
    return found is not None


def add_call_task(
    conn: Connection, claimed: Claimed, step_key: str, reason: str, priority: str, now: datetime
) -> None:
    """Put the customer on their rep's call list (once per enrollment and step)."""
    insert = upsert_insert(conn.dialect.name, CALLS)
    conn.execute(
        insert.values(
            enrollment_id=claimed.enrollment_id,
            customer_id=claimed.customer_id,
            campaign_id=claimed.campaign_id,
            step_key=step_key,
            reason=reason,
            priority=priority,
            due_at=now,
            status="open",
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["enrollment_id", "step_key"])
    )


def expire_leases(conn: Connection, now: datetime) -> int:
    """Rows whose worker died: a ``sending`` one (its bytes were going out) becomes
    ``unknown`` and its enrollment waits for a person; a ``queued`` one (nothing went out)
    is due again at once. Returns how many became unknown."""
    conn.execute(
        MESSAGES.update()
        .where(MESSAGES.c.status == MessageStatus.QUEUED.value, MESSAGES.c.lease_until < now)
        .values(
            status=MessageStatus.RETRY.value,
            retry_at=now,
            lease_until=None,
            # It was never tried: the next start counts the attempt.
            attempts=sa.case((MESSAGES.c.attempts > 0, MESSAGES.c.attempts - 1), else_=0),
        )
    )
    stale = conn.execute(
        sa.select(MESSAGES.c.id).where(
            MESSAGES.c.status == MessageStatus.SENDING.value, MESSAGES.c.lease_until < now
        )
    ).all()
    return settle_unknown(conn, [row[0] for row in stale])


def settle_unknown(conn: Connection, message_ids: Sequence[int]) -> int:
    """``sending`` messages whose worker died become ``unknown``; their enrollments, if still
    going on, wait for a person (``reengage sends resolve``). One that ended meanwhile (a
    reply, a call that started the customer on another sequence) stays ended."""
    if not message_ids:
        return 0
    settled = conn.execute(
        MESSAGES.update()
        .where(
            MESSAGES.c.id.in_(list(message_ids)),
            MESSAGES.c.status == MessageStatus.SENDING.value,
        )
        .values(status=MessageStatus.UNKNOWN.value, lease_until=None)
        .returning(MESSAGES.c.enrollment_id)
    ).all()
    owners = sorted({row[0] for row in settled})
    if owners:
        conn.execute(
            ENROLLMENTS.update()
            .where(
                ENROLLMENTS.c.id.in_(owners),
                ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
            )
            .values(
                status=EnrollmentStatus.ATTENTION.value,
                exit_reason="send_unknown",
                claimed_until=None,
            )
        )
    return len(settled)


def message_counts(conn: Connection) -> dict[str, int]:
    """Messages by status (for doctor and metrics)."""
    rows = conn.execute(sa.select(MESSAGES.c.status, sa.func.count()).group_by(MESSAGES.c.status))
    return {status: int(count) for status, count in rows}


def queue_depth(conn: Connection, now: datetime) -> int:
    """Enrollments with a step due now."""
    return int(
        conn.scalar(
            sa.select(sa.func.count())
            .select_from(ENROLLMENTS)
            .where(
                ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
                ENROLLMENTS.c.next_due_at <= now,
            )
        )
        or 0
    )
