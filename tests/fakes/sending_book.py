"""``FakeSendingBook``: the part of :class:`reengage.store.sending_book.SendingBook` that
the response and outcome rules meet (enrollments entered and ended, the suppression list,
a customer's file) over :class:`FakeTables`. Claims, leases and message outcomes are not
faked: the sending protocol is tested against real databases only."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from reengage.addresses import normalize_or_keep
from reengage.store.enrollment_reads import EnrollmentLine, MessageLine
from reengage.store.enrollments import NewEnrollment
from tests.fakes.tables import FakeTables


class FakeSendingBook:
    """``store.sending``, as far as the use cases under unit test go."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    def enroll(self, rows: Iterable[NewEnrollment], now: datetime) -> int:
        return self._t.insert_enrollments(rows, now)

    def end_enrollment(self, enrollment_id: int, reason: str, now: datetime) -> None:
        self._t.end_enrollments(reason, now, enrollment_id=enrollment_id)

    def suppress(self, email: str, reason: str, detail: str | None, now: datetime) -> None:
        self._t.suppress(email, reason, detail, now)

    def is_suppressed(self, email: str) -> bool:
        return normalize_or_keep(email) in self._t.suppressions

    def suppressed_among(self, emails: Iterable[str]) -> set[str]:
        return {e.lower() for e in emails if normalize_or_keep(e) in self._t.suppressions}

    def customer_sending(self, customer_id: int) -> tuple[list[EnrollmentLine], list[MessageLine]]:
        enrollments = sorted(
            (e for e in self._t.enrollments.values() if e.customer_id == customer_id),
            key=lambda e: (e.enrolled_at, e.id),
            reverse=True,
        )
        messages = sorted(
            (m for m in self._t.messages.values() if m.customer_id == customer_id),
            key=lambda m: (m.created_at, m.id),
            reverse=True,
        )
        return (
            [
                EnrollmentLine(
                    e.campaign_id,
                    e.status,
                    e.enrolled_at,
                    e.next_step_key,
                    e.next_due_at,
                    e.exit_reason,
                )
                for e in enrollments[:50]
            ],
            [
                MessageLine(
                    m.id,
                    m.campaign_id,
                    m.step_key,
                    m.status,
                    m.created_at,
                    m.sent_at,
                    m.smtp_response,
                )
                for m in messages[:50]
            ],
        )
