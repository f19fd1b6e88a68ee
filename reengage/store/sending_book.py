"""``store.sending``: the door the sending protocol goes through, one transaction a call.

The protocol and where each part's SQL lives are told in :mod:`reengage.store.sending`;
late results kept in the spool are written by :mod:`reengage.store.late`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reengage.models import MessageStatus
from reengage.store import (
    claims,
    enrollment_reads,
    enrollments,
    late,
    messages,
    settling,
    suppressions,
)
from reengage.store.calls import add_call_task
from reengage.store.looks import Chunk
from reengage.store.tables import MESSAGES


class SendingBook:
    """``store.sending``: claims, message rows and their marks and outcomes, held messages a
    person settles, and the suppression list; each method is one transaction."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = tx

    def enrollment_history(
        self, customer_ids: Sequence[int], since: datetime
    ) -> list[tuple[int, str, str, datetime]]:
        """Active enrollments, and any since ``since``, of these customers."""
        with self._tx() as conn:
            return enrollment_reads.enrollment_history(conn, customer_ids, since)

    def running_enrollments(self) -> list[enrollment_reads.Running]:
        """Every enrollment still under way, with its next step and its customer (read only;
        ``reengage simulate`` carries them on)."""
        with self._tx() as conn:
            return enrollment_reads.running_enrollments(conn)

    def waiting_at_steps(self) -> dict[tuple[str, str], int]:
        """Running enrollments by the (campaign, step key) they wait at (read only)."""
        with self._tx() as conn:
            return enrollment_reads.waiting_at_steps(conn)

    def enroll(self, rows: Iterable[enrollments.NewEnrollment], now: datetime) -> int:
        """Record new enrollments (holdout members too)."""
        with self._tx() as conn:
            return enrollments.insert_enrollments(conn, rows, now)

    def exit_on_activity(
        self, campaign_ids: list[str], now: datetime, chunk: Chunk | None = None
    ) -> int:
        """End enrollments whose customer came back (activity after enrolling): everyone's,
        or the chunk's customers'."""
        with self._tx() as conn:
            return enrollments.exit_on_activity(conn, campaign_ids, now, chunk)

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[claims.Claimed]:
        """Claim enrollments whose next step is due (see ``claims.claim_due``)."""
        with self._tx() as conn:
            return claims.claim_due(conn, now, limit, lease)

    def release(self, enrollment_id: int, next_due_at: datetime | None = None) -> None:
        """Give a claim back, optionally due later."""
        with self._tx() as conn:
            claims.release(conn, enrollment_id, next_due_at=next_due_at)

    def start_message(
        self, claimed: claims.Claimed, step_key: str, now: datetime, lease: timedelta
    ) -> claims.Started:
        """Write and commit the ``queued`` row before SMTP is touched."""
        with self._tx() as conn:
            return messages.start_message(conn, claimed, step_key, now, lease)

    def start_messages(
        self, sends: Sequence[tuple[claims.Claimed, str]], now: datetime, lease: timedelta
    ) -> list[claims.Started]:
        """:meth:`start_message` for a whole batch, committed together before any SMTP."""
        if not sends:
            return []
        with self._tx() as conn:
            return messages.start_messages(conn, sends, now, lease)

    def put_back(self, started: Sequence[claims.Started], now: datetime) -> None:
        """Queued sends this worker will not make after all: due again at once."""
        with self._tx() as conn:
            claims.put_back(conn, started, now)

    def let_go(self, started: Sequence[claims.Started], now: datetime) -> None:
        """Sends this worker gives up (it is stopping and its grace is over): a ``queued`` one
        (nothing went out) is due again at once; a ``sending`` one (its reply never came) is
        ``unknown`` now, for a person to settle, rather than ``sending`` until its lease ends."""
        with self._tx() as conn:
            claims.put_back(conn, started, now)
            claims.settle_unknown(conn, [s.message_id for s in started if s.message_id])

    def unmark_sending(self, started: Sequence[claims.Started], now: datetime) -> None:
        """Marked rows whose sends were cancelled before going out: due again at once."""
        with self._tx() as conn:
            claims.unmark_sending(conn, started, now)

    def mark_sending_many(
        self, started: Sequence[claims.Started], now: datetime, lease: timedelta
    ) -> list[bool]:
        """These messages' bytes go to the server now (committed before they do); for each,
        whether it is still this worker's to send."""
        with self._tx() as conn:
            return messages.mark_sending_many(conn, started, now, lease)

    def renew_claims(
        self, queued: dict[datetime, list[int]], enrollment_ids: Sequence[int], until: datetime
    ) -> set[int]:
        """Keep this worker's claims until ``until`` (see ``claims.renew_claims``)."""
        with self._tx() as conn:
            return claims.renew_claims(conn, queued, enrollment_ids, until)

    def finish_sent(
        self,
        message_id: int,
        claimed: claims.Claimed,
        *,
        response: str,
        smtp_id: str,
        now: datetime,
        next_step: tuple[int, str, datetime] | None,
    ) -> None:
        """Mark sent and advance the enrollment, in one transaction."""
        with self._tx() as conn:
            messages.finish_sent(
                conn,
                message_id,
                claimed,
                response=response,
                smtp_id=smtp_id,
                now=now,
                next_step=next_step,
            )

    def finish_sent_many(self, sent: Sequence[messages.Sent]) -> None:
        """Record many accepted messages and advance their enrollments, in one transaction."""
        with self._tx() as conn:
            messages.finish_sent_many(conn, sent)

    def record_late(self, entries: Sequence[dict[str, Any]]) -> int:
        """Send results kept in the spool while the database was away, written now."""
        with self._tx() as conn:
            return late.record_late(conn, entries)

    def finish_retry(
        self, message_id: int, enrollment_id: int, *, response: str, retry_at: datetime
    ) -> None:
        """A temporary failure: the same row is retried at ``retry_at``."""
        with self._tx() as conn:
            messages.finish_retry(
                conn, message_id, enrollment_id, response=response, retry_at=retry_at
            )

    def finish_bounced(
        self, message_id: int, claimed: claims.Claimed, *, response: str, now: datetime
    ) -> None:
        """A permanent failure: suppress and end the enrollment."""
        with self._tx() as conn:
            messages.finish_bounced(conn, message_id, claimed, response=response, now=now)

    def finish_unknown(self, message_id: int, enrollment_id: int, *, response: str) -> None:
        """Lost after it went out: unknown, never sent again by itself, held for a person."""
        with self._tx() as conn:
            messages.finish_unknown(conn, message_id, enrollment_id, response=response)

    def finish_failed(
        self, message_id: int, enrollment_id: int, *, reason: str, now: datetime
    ) -> None:
        """The mail could not be made for this customer: failed, nothing sent, held."""
        with self._tx() as conn:
            messages.finish_failed(conn, message_id, enrollment_id, reason=reason, now=now)

    def held_messages(
        self, statuses: Sequence[str], *, campaign_id: str | None = None, limit: int = 200
    ) -> list[settling.HeldMessage]:
        """Failed or unknown messages, newest first, for a person to settle."""
        with self._tx() as conn:
            return settling.held_messages(conn, statuses, campaign_id, limit)

    def customer_sending(
        self, customer_id: int
    ) -> tuple[list[enrollment_reads.EnrollmentLine], list[enrollment_reads.MessageLine]]:
        """A customer's enrollments and mails, newest first (``customers show``)."""
        with self._tx() as conn:
            return enrollment_reads.customer_sending(conn, customer_id)

    def held_for_settling(
        self,
        statuses: Sequence[str],
        *,
        message_ids: Sequence[int] | None = None,
        campaign_id: str | None = None,
    ) -> list[settling.Held]:
        """Failed or unknown messages to settle (these ids, or every one of a campaign)."""
        with self._tx() as conn:
            return settling.held(conn, statuses, message_ids, campaign_id)

    def settle_held(
        self,
        message: settling.Held,
        status: MessageStatus,
        *,
        note: str,
        now: datetime,
        next_step: tuple[int, str, datetime] | None,
    ) -> None:
        """Record a person's decision about a held message; its enrollment moves on."""
        with self._tx() as conn:
            settling.settle(conn, message, status, note=note, now=now, next_step=next_step)

    def resend_held(self, messages: Sequence[settling.Held], now: datetime) -> tuple[int, int]:
        """Send held messages once more at the next pass (those whose sequence still runs);
        how many will go, and how many were skipped as their sequence ended."""
        with self._tx() as conn:
            return settling.resend(conn, messages, now)

    def skip_step(
        self,
        claimed: claims.Claimed,
        step_key: str,
        reason: str,
        now: datetime,
        next_step: tuple[int, str, datetime] | None,
    ) -> None:
        """Record a step deliberately not sent, and move on."""
        with self._tx() as conn:
            messages.skip_message(conn, claimed, step_key, reason, now)
            enrollments.advance(conn, claimed.enrollment_id, now=now, next_step=next_step)

    def end_enrollment(self, enrollment_id: int, reason: str, now: datetime) -> None:
        """End a running enrollment early (one already ended keeps how it ended)."""
        with self._tx() as conn:
            enrollments.end_enrollments(conn, reason, now, enrollment_id=enrollment_id)

    def add_call_task(
        self,
        claimed: claims.Claimed,
        step_key: str,
        reason: str,
        priority: str,
        now: datetime,
        next_step: tuple[int, str, datetime] | None,
    ) -> None:
        """Put the customer on the rep's call list and move on."""
        with self._tx() as conn:
            add_call_task(conn, claimed, step_key, reason, priority, now)
            enrollments.advance(conn, claimed.enrollment_id, now=now, next_step=next_step)

    def suppress(self, email: str, reason: str, detail: str | None, now: datetime) -> None:
        """Never mail this address again."""
        with self._tx() as conn:
            suppressions.suppress(conn, email, reason, detail, now)

    def is_suppressed(self, email: str) -> bool:
        """Whether the address is suppressed."""
        with self._tx() as conn:
            return suppressions.is_suppressed(conn, email)

    def message_attempts(self, message_id: int) -> int:
        """How many times this message row has been tried."""
        with self._tx() as conn:
            return int(
                conn.scalar(sa.select(MESSAGES.c.attempts).where(MESSAGES.c.id == message_id)) or 0
            )

    def suppressed_among(self, emails: Iterable[str]) -> set[str]:
        """Which of these addresses are suppressed (lower-cased as given), however each was
        spelled when it was suppressed (see :mod:`reengage.addresses`)."""
        with self._tx() as conn:
            return suppressions.suppressed_among(conn, emails)

    def sent_since_many(
        self, customer_ids: Iterable[int], since: datetime
    ) -> dict[int, list[datetime]]:
        """When each of these customers was mailed since ``since``."""
        ids = sorted(set(customer_ids))
        out: dict[int, list[datetime]] = {}
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(MESSAGES.c.customer_id, MESSAGES.c.sent_at).where(
                    MESSAGES.c.customer_id.in_(ids),
                    MESSAGES.c.sent_at >= since,
                )
            )
            for customer_id, sent_at in rows:
                out.setdefault(customer_id, []).append(sent_at)
        return out

    def expire_leases(self, now: datetime) -> int:
        """Turn dead sends into ``unknown`` (never re-sent blindly)."""
        with self._tx() as conn:
            return claims.expire_leases(conn, now)

    def mark_and_record(
        self,
        started: Sequence[claims.Started],
        sent: Sequence[messages.Sent],
        now: datetime,
        lease: timedelta,
    ) -> list[bool]:
        """In one transaction: record accepted messages (their enrollments move on), and mark
        ``started`` sending (see :meth:`mark_sending_many`)."""
        with self._tx() as conn:
            messages.finish_sent_many(conn, sent)
            return messages.mark_sending_many(conn, started, now, lease) if started else []

    def message_counts(self) -> dict[str, int]:
        """Messages by status."""
        with self._tx() as conn:
            return messages.message_counts(conn)

    def queue_depth(self, now: datetime) -> int:
        """Enrollments with a step due now."""
        with self._tx() as conn:
            return enrollment_reads.queue_depth(conn, now)
