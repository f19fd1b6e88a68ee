"""The reps' side in SQL: the call list's inputs, call outcomes, and the morning digests.

A digest row is written (unique on rep and local day) and committed before its mail is
sent, exactly like a campaign message: two workers or two ticks in the same morning can
never both send it, and a process that dies mid-send leaves an ``unknown`` row, never a
second mail. Saving a call outcome, closing the calls it answers and re-routing the
customer's enrollments happen in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import (
    CallOutcome,
    CallTask,
    CallTaskStatus,
    Customer,
    CustomerStatus,
    Digest,
    DigestStatus,
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Rep,
    Reply,
    Response,
)
from reengage.store.engine import upsert_insert
from reengage.store.sending import NewEnrollment, insert_enrollments

CALLS: sa.Table = CallTask.__table__  # type: ignore[attr-defined]  # sqlmodel sets it
OUTCOMES: sa.Table = CallOutcome.__table__  # type: ignore[attr-defined]
DIGESTS: sa.Table = Digest.__table__  # type: ignore[attr-defined]
CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]
ENROLLMENTS: sa.Table = Enrollment.__table__  # type: ignore[attr-defined]
MESSAGES: sa.Table = Message.__table__  # type: ignore[attr-defined]
RESPONSES: sa.Table = Response.__table__  # type: ignore[attr-defined]
REPLIES: sa.Table = Reply.__table__  # type: ignore[attr-defined]
REPS: sa.Table = Rep.__table__  # type: ignore[attr-defined]
_CHUNK = 10_000


@dataclass(frozen=True)
class OpenCall:
    """A call waiting on a rep: a campaign's call step, or a "call again" the rep set."""

    id: int
    customer_id: int
    campaign_id: str | None
    step_key: str | None
    reason: str
    priority: str
    due_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class WaitingReply:
    """A person's reply to a mail that nobody has answered yet."""

    customer_id: int
    subject: str
    text: str
    received_at: datetime


@dataclass(frozen=True)
class PastCall:
    """The last call outcome recorded for a customer."""

    customer_id: int
    called_at: datetime
    rep_external_id: str | None
    reached: str
    contact_name: str | None
    reason: str | None
    reason_text: str | None
    scope: str | None
    win_back: str | None
    worth: str
    next_step: str
    call_again_on: date | None


@dataclass(frozen=True)
class Touch:
    """Something reengage did, or a response to it: a mail sent, opened, clicked, replied."""

    customer_id: int
    kind: str  # "sent", or a response kind (open, click, reply, unsubscribe, ...)
    at: datetime
    campaign_id: str | None
    step_key: str | None
    detail: str | None


@dataclass(frozen=True)
class CallFacts:
    """What decides whether a customer may go on a call list at all."""

    rep_external_id: str | None
    status: str
    paused_until: datetime | None


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


# -- the list's inputs ---------------------------------------------------------------------


def open_calls(conn: Connection, customer_ids: Iterable[int] | None = None) -> list[OpenCall]:
    """Every open call (or only these customers'), earliest due first."""
    query = (
        sa.select(
            CALLS.c.id,
            CALLS.c.customer_id,
            CALLS.c.campaign_id,
            CALLS.c.step_key,
            CALLS.c.reason,
            CALLS.c.priority,
            CALLS.c.due_at,
            CALLS.c.created_at,
        )
        .where(CALLS.c.status == CallTaskStatus.OPEN.value)
        .order_by(CALLS.c.due_at, CALLS.c.id)
    )
    if customer_ids is not None:
        query = query.where(CALLS.c.customer_id.in_(sorted(set(customer_ids))))
    return [OpenCall(*row) for row in conn.execute(query)]


def waiting_replies(
    conn: Connection, since: datetime, customer_ids: Iterable[int] | None = None
) -> list[WaitingReply]:
    """Replies by people (not auto-replies) since ``since`` still waiting, oldest first."""
    query = (
        sa.select(REPLIES.c.customer_id, REPLIES.c.subject, REPLIES.c.text, REPLIES.c.received_at)
        .where(
            REPLIES.c.status == "new",
            REPLIES.c.automatic.is_(False),
            REPLIES.c.customer_id.is_not(None),
            REPLIES.c.received_at >= since,
        )
        .order_by(REPLIES.c.received_at)
    )
    if customer_ids is not None:
        query = query.where(REPLIES.c.customer_id.in_(sorted(set(customer_ids))))
    return [WaitingReply(*row) for row in conn.execute(query)]


def last_calls(conn: Connection, customer_ids: Iterable[int] | None = None) -> dict[int, PastCall]:
    """Each customer's most recent call outcome (of these customers, or of everyone)."""
    newest = (
        sa.select(
            OUTCOMES.c.customer_id, sa.func.max(OUTCOMES.c.called_at).label("called_at")
        ).group_by(OUTCOMES.c.customer_id)
    ).subquery()
    query = sa.select(
        OUTCOMES.c.customer_id,
        OUTCOMES.c.called_at,
        OUTCOMES.c.rep_external_id,
        OUTCOMES.c.reached,
        OUTCOMES.c.contact_name,
        OUTCOMES.c.reason,
        OUTCOMES.c.reason_text,
        OUTCOMES.c.scope,
        OUTCOMES.c.win_back,
        OUTCOMES.c.worth,
        OUTCOMES.c.next_step,
        OUTCOMES.c.call_again_on,
    ).join(
        newest,
        (newest.c.customer_id == OUTCOMES.c.customer_id)
        & (newest.c.called_at == OUTCOMES.c.called_at),
    )
    found: dict[int, PastCall] = {}
    chunks = _chunks(customer_ids) if customer_ids is not None else [None]
    for chunk in chunks:
        part = query if chunk is None else query.where(OUTCOMES.c.customer_id.in_(chunk))
        for row in conn.execute(part.order_by(OUTCOMES.c.id)):
            found[row.customer_id] = PastCall(**row._mapping)
    return found


def call_facts(conn: Connection, customer_ids: Iterable[int]) -> dict[int, CallFacts]:
    """Rep, status and pause of these customers."""
    found: dict[int, CallFacts] = {}
    for chunk in _chunks(customer_ids):
        query = sa.select(
            CUSTOMERS.c.id,
            CUSTOMERS.c.rep_external_id,
            CUSTOMERS.c.status,
            CUSTOMERS.c.paused_until,
        ).where(CUSTOMERS.c.id.in_(chunk))
        for row in conn.execute(query):
            found[row.id] = CallFacts(row.rep_external_id, row.status, row.paused_until)
    return found


def touches(conn: Connection, customer_ids: Iterable[int], since: datetime) -> list[Touch]:
    """Mails sent to these customers since ``since``, and the responses to anything."""
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    sent = sa.select(
        MESSAGES.c.customer_id,
        sa.literal("sent"),
        MESSAGES.c.sent_at,
        MESSAGES.c.campaign_id,
        MESSAGES.c.step_key,
        sa.null(),
    ).where(
        MESSAGES.c.customer_id.in_(ids),
        MESSAGES.c.status.in_([MessageStatus.SENT.value, MessageStatus.BOUNCED.value]),
        MESSAGES.c.sent_at >= since,
    )
    responded = sa.select(
        RESPONSES.c.customer_id,
        RESPONSES.c.kind,
        RESPONSES.c.occurred_at,
        RESPONSES.c.campaign_id,
        RESPONSES.c.step_key,
        RESPONSES.c.detail,
    ).where(RESPONSES.c.customer_id.in_(ids), RESPONSES.c.occurred_at >= since)
    rows = [Touch(*row) for row in conn.execute(sa.union_all(sent, responded))]
    return sorted(rows, key=lambda t: (t.customer_id, t.at))


def active_campaigns(conn: Connection, customer_id: int) -> list[str]:
    """The campaigns this customer is running through now."""
    query = sa.select(ENROLLMENTS.c.campaign_id).where(
        ENROLLMENTS.c.customer_id == customer_id,
        ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value,
    )
    return list(conn.scalars(query))


def reps(conn: Connection, external_ids: Iterable[str] | None = None) -> list[Rep]:
    """Reps (all, or these), by external id."""
    query = sa.select(REPS).order_by(REPS.c.external_id)
    if external_ids is not None:
        query = query.where(REPS.c.external_id.in_(sorted(set(external_ids))))
    return [Rep.model_validate(dict(row._mapping)) for row in conn.execute(query)]


# -- call outcomes ---------------------------------------------------------------------------


def insert_outcome(conn: Connection, values: dict[str, Any]) -> int | None:
    """Store an outcome; None when one with the same ``dedupe_key`` is already there."""
    insert = upsert_insert(conn.dialect.name, OUTCOMES).values(**values)
    query = insert.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(OUTCOMES.c.id)
    row = conn.execute(query).first()
    return None if row is None else int(row[0])


def outcome_by_key(conn: Connection, dedupe_key: str) -> CallOutcome | None:
    """The outcome recorded under ``dedupe_key``."""
    row = conn.execute(sa.select(OUTCOMES).where(OUTCOMES.c.dedupe_key == dedupe_key)).first()
    return None if row is None else CallOutcome.model_validate(dict(row._mapping))


def close_calls(conn: Connection, customer_id: int, status: CallTaskStatus) -> int:
    """Every open call of this customer is done (or cancelled)."""
    result = conn.execute(
        CALLS.update()
        .where(CALLS.c.customer_id == customer_id, CALLS.c.status == CallTaskStatus.OPEN.value)
        .values(status=status.value)
    )
    return result.rowcount or 0


def answer_replies(conn: Connection, customer_id: int) -> None:
    """The rep has spoken to the customer: their waiting replies are answered."""
    conn.execute(
        REPLIES.update()
        .where(REPLIES.c.customer_id == customer_id, REPLIES.c.status == "new")
        .values(status="answered")
    )


def add_call(
    conn: Connection, customer_id: int, reason: str, priority: str, due_at: datetime, now: datetime
) -> None:
    """Put a call on the customer's rep's list for ``due_at`` (a "call again")."""
    conn.execute(
        CALLS.insert().values(
            customer_id=customer_id,
            reason=reason[:300],
            priority=priority,
            due_at=due_at,
            status=CallTaskStatus.OPEN.value,
            created_at=now,
        )
    )


def end_enrollments(
    conn: Connection,
    customer_id: int,
    campaign_ids: Sequence[str] | None,
    reason: str,
    now: datetime,
) -> int:
    """End the customer's running enrollments (of these campaigns, or all)."""
    query = ENROLLMENTS.update().where(
        ENROLLMENTS.c.customer_id == customer_id,
        ENROLLMENTS.c.status.in_([EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ATTENTION.value]),
    )
    if campaign_ids is not None:
        query = query.where(ENROLLMENTS.c.campaign_id.in_(list(campaign_ids)))
    result = conn.execute(
        query.values(
            status=EnrollmentStatus.EXITED.value,
            exit_reason=reason,
            ended_at=now,
            next_due_at=None,
            claimed_until=None,
        )
    )
    return result.rowcount or 0


def do_not_contact(conn: Connection, customer_id: int, now: datetime) -> None:
    """Mark the customer "do not contact": no campaign, no digest, ever, until changed."""
    conn.execute(
        CUSTOMERS.update()
        .where(CUSTOMERS.c.id == customer_id)
        .values(status=CustomerStatus.DO_NOT_CONTACT.value, updated_at=now)
    )


def enroll(conn: Connection, row: NewEnrollment, now: datetime) -> None:
    """Enroll the customer in a campaign (the follow-up a rep chose)."""
    insert_enrollments(conn, [row], now)


def outcomes_since(conn: Connection, since: datetime | None) -> list[CallOutcome]:
    """Call outcomes recorded since ``since`` (all when None), oldest first."""
    query = sa.select(OUTCOMES).order_by(OUTCOMES.c.called_at, OUTCOMES.c.id)
    if since is not None:
        query = query.where(OUTCOMES.c.called_at >= since)
    return [CallOutcome.model_validate(dict(row._mapping)) for row in conn.execute(query)]


# -- digests ---------------------------------------------------------------------------------


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


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


# -- the door use cases go through -----------------------------------------------------------


class CallBook:
    """``store.calls``: each method is one transaction; :meth:`transaction` groups several."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = tx

    def transaction(self) -> AbstractContextManager[Connection]:
        """One transaction for several of this module's functions (an outcome and its acts)."""
        return self._tx()

    def open_calls(self, customer_ids: Iterable[int] | None = None) -> list[OpenCall]:
        """Open calls, earliest due first."""
        with self._tx() as conn:
            return open_calls(conn, customer_ids)

    def waiting_replies(
        self, since: datetime, customer_ids: Iterable[int] | None = None
    ) -> list[WaitingReply]:
        """People's replies still waiting for an answer (of everyone, or these customers)."""
        with self._tx() as conn:
            return waiting_replies(conn, since, customer_ids)

    def last_calls(self, customer_ids: Iterable[int] | None = None) -> dict[int, PastCall]:
        """Each customer's latest call outcome."""
        with self._tx() as conn:
            return last_calls(conn, customer_ids)

    def call_facts(self, customer_ids: Iterable[int]) -> dict[int, CallFacts]:
        """Rep, status and pause per customer."""
        with self._tx() as conn:
            return call_facts(conn, customer_ids)

    def touches(self, customer_ids: Iterable[int], since: datetime) -> list[Touch]:
        """Mails and responses of these customers since ``since``."""
        with self._tx() as conn:
            return touches(conn, customer_ids, since)

    def reps(self, external_ids: Iterable[str] | None = None) -> list[Rep]:
        """Reps by external id."""
        with self._tx() as conn:
            return reps(conn, external_ids)

    def outcomes_since(self, since: datetime | None) -> list[CallOutcome]:
        """Call outcomes since ``since``."""
        with self._tx() as conn:
            return outcomes_since(conn, since)

    def outcome_by_key(self, dedupe_key: str) -> CallOutcome | None:
        """The outcome a digest link already recorded."""
        with self._tx() as conn:
            return outcome_by_key(conn, dedupe_key)

    def start_digest(self, rep_external_id: str, day: date, **fields: Any) -> int | None:
        """Write a rep's digest for ``day`` (see :func:`start_digest`)."""
        with self._tx() as conn:
            return start_digest(conn, rep_external_id, day, **fields)

    def claim_retry(self, now: datetime, lease: timedelta) -> list[DigestRow]:
        """Digests due for another try."""
        with self._tx() as conn:
            return claim_retry(conn, now, lease)

    def finish_digest(self, digest_id: int, status: DigestStatus, **fields: Any) -> None:
        """Record a digest send's result."""
        with self._tx() as conn:
            finish_digest(conn, digest_id, status, **fields)

    def reopen_digest(self, rep_external_id: str, day: date) -> str | None:
        """Let a day's failed, unknown or empty digest be sent again (see the function)."""
        with self._tx() as conn:
            return reopen_digest(conn, rep_external_id, day)

    def expire_digests(self, now: datetime) -> int:
        """Dead digest sends become ``unknown``."""
        with self._tx() as conn:
            return expire_digests(conn, now)

    def digest_counts(self) -> dict[str, int]:
        """Digests by status."""
        with self._tx() as conn:
            return digest_counts(conn)

    def digests_on(self, day: date) -> dict[str, str]:
        """Rep → digest status on ``day``."""
        with self._tx() as conn:
            return digests_on(conn, day)
