"""The rows the fake ledgers share, and the few statements several of them run.

One :class:`FakeTables` stands for one database: the fake ledgers of a :class:`FakeStore`
all read and write it, so an unsubscribe through ``responses`` is seen by ``sending`` and
``calls`` as it would be in SQL. The helpers below mirror the store's shared statements
(``end_enrollments``, ``insert_enrollments``, ``suppress``, ``record``, ...) one for one;
``tests/integration/test_ledger_contract.py`` checks that they behave alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reengage.addresses import normalize_or_keep
from reengage.models import (
    CallOutcome,
    CallTaskStatus,
    CustomerStatus,
    EnrollmentStatus,
    MessageStatus,
    Rep,
)
from reengage.store.enrollments import NewEnrollment
from reengage.store.responses import MessageRef

RUNNING = (EnrollmentStatus.ACTIVE.value, EnrollmentStatus.ATTENTION.value)


@dataclass
class CustomerRow:
    id: int
    external_id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    segment: str | None = None
    locale: str = "en"
    rep_external_id: str | None = None
    status: str = CustomerStatus.ACTIVE.value
    paused_until: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class EnrollmentRow:
    id: int
    customer_id: int
    campaign_id: str
    status: str
    enrolled_at: datetime
    next_step: int = 0
    next_step_key: str | None = None
    next_due_at: datetime | None = None
    ended_at: datetime | None = None
    exit_reason: str | None = None
    claimed_until: datetime | None = None


@dataclass
class MessageRow:
    id: int
    enrollment_id: int
    customer_id: int
    campaign_id: str
    step_key: str
    token: str
    status: str
    created_at: datetime
    sent_at: datetime | None = None
    message_id: str | None = None
    smtp_response: str | None = None
    recipient: str | None = None  # None: a row from before migration 0007


@dataclass
class ResponseRecord:
    id: int
    kind: str
    message_id: int | None
    enrollment_id: int | None
    customer_id: int | None
    campaign_id: str | None
    step_key: str | None
    occurred_at: datetime
    source: str
    detail: str | None
    value: float | None
    dedupe_key: str | None


@dataclass
class ReplyRow:
    id: int
    message_id: int | None
    customer_id: int | None
    campaign_id: str | None
    sender: str
    subject: str
    text: str
    automatic: bool
    status: str
    received_at: datetime


@dataclass
class UnmatchedRow:
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
    dedupe_key: str | None


@dataclass
class SuppressionRow:
    email: str
    reason: str
    detail: str
    created_at: datetime


@dataclass
class CallRow:
    id: int
    customer_id: int
    reason: str
    priority: str
    due_at: datetime
    status: str
    created_at: datetime
    enrollment_id: int | None = None
    campaign_id: str | None = None
    step_key: str | None = None


@dataclass
class FakeTables:
    """Every table the fake ledgers touch, as lists and dicts; ids count from 1."""

    customers: dict[int, CustomerRow] = field(default_factory=dict)
    reps: dict[str, Rep] = field(default_factory=dict)
    enrollments: dict[int, EnrollmentRow] = field(default_factory=dict)
    messages: dict[int, MessageRow] = field(default_factory=dict)
    responses: list[ResponseRecord] = field(default_factory=list)
    replies: list[ReplyRow] = field(default_factory=list)
    unmatched: list[UnmatchedRow] = field(default_factory=list)
    suppressions: dict[str, SuppressionRow] = field(default_factory=dict)
    calls: list[CallRow] = field(default_factory=list)
    outcomes: list[CallOutcome] = field(default_factory=list)
    _last_id: dict[str, int] = field(default_factory=dict)

    def next_id(self, table: str) -> int:
        """The next id of ``table`` (an autoincrement primary key)."""
        self._last_id[table] = self._last_id.get(table, 0) + 1
        return self._last_id[table]

    # -- seeding: what imports and sends would have written -------------------------------

    def add_customer(self, external_id: str, email: str, **fields: Any) -> int:
        """A customer row (the address as given, like an insert); returns its id."""
        row = CustomerRow(self.next_id("customers"), external_id, email)
        for name, value in fields.items():
            setattr(row, name, value)
        self.customers[row.id] = row
        return row.id

    def add_enrollment(
        self, customer_id: int, campaign_id: str, now: datetime, *, status: str = "active"
    ) -> int:
        """An enrollment row (``active`` unless told); returns its id."""
        row = EnrollmentRow(self.next_id("enrollments"), customer_id, campaign_id, status, now)
        self.enrollments[row.id] = row
        return row.id

    def add_message(
        self,
        enrollment_id: int,
        step_key: str,
        token: str,
        now: datetime,
        *,
        message_id: str | None = None,
        status: str = MessageStatus.SENT.value,
        legacy: bool = False,
    ) -> int:
        """A message row of an enrollment, sent to the customer's address as it is now (as
        ``messages.start_message`` writes it); ``legacy``: a row from before migration
        0007, which names no recipient. Returns its id."""
        enrollment = self.enrollments[enrollment_id]
        address = self.customers[enrollment.customer_id].email
        row = MessageRow(
            self.next_id("messages"),
            enrollment_id,
            enrollment.customer_id,
            enrollment.campaign_id,
            step_key,
            token,
            status,
            now,
            sent_at=now if status == MessageStatus.SENT.value else None,
            message_id=message_id,
            recipient=None if legacy else normalize_or_keep(address),
        )
        self.messages[row.id] = row
        return row.id

    # -- the store's shared statements ------------------------------------------------------

    def ref(self, message: MessageRow) -> MessageRef:
        """``responses.message_by_token`` and friends: a message joined to its customer,
        with the address it went to (the customer's now when the row names none)."""
        who = self.customers[message.customer_id]
        return MessageRef(
            id=message.id,
            token=message.token,
            enrollment_id=message.enrollment_id,
            customer_id=message.customer_id,
            campaign_id=message.campaign_id,
            step_key=message.step_key,
            status=message.status,
            email=who.email if message.recipient is None else message.recipient,
            first_name=who.first_name,
            last_name=who.last_name,
            company=who.company,
            locale=who.locale,
            paused_until=who.paused_until,
        )

    def customer_ids_by_email(self, email: str) -> list[int]:
        """Customers whose address, lower-cased, is ``email`` lower-cased."""
        return [c.id for c in self.customers.values() if c.email.lower() == email.lower()]

    def end_enrollments(
        self,
        reason: str,
        now: datetime,
        *,
        enrollment_id: int | None = None,
        customer_id: int | None = None,
        campaign_ids: Sequence[str] | None = None,
        where: Callable[[EnrollmentRow], bool] | None = None,
    ) -> int:
        """``enrollments.end_enrollments``: running ones end; ended ones keep their end."""
        if enrollment_id is None and customer_id is None and where is None:
            raise ValueError("end_enrollments needs an enrollment, a customer or a condition")
        ended = 0
        for row in self.enrollments.values():
            if row.status not in RUNNING:
                continue
            if where is not None and not where(row):
                continue
            if enrollment_id is not None and row.id != enrollment_id:
                continue
            if customer_id is not None and row.customer_id != customer_id:
                continue
            if campaign_ids is not None and row.campaign_id not in campaign_ids:
                continue
            row.status, row.exit_reason, row.ended_at = EnrollmentStatus.EXITED.value, reason, now
            row.next_due_at = row.claimed_until = None
            ended += 1
        return ended

    def insert_enrollments(self, rows: Iterable[NewEnrollment], now: datetime) -> int:
        """``enrollments.insert_enrollments``: one that would run twice is skipped, but
        counted (the real one returns how many rows it was given)."""
        given = list(rows)
        for new in given:
            running = any(
                e.customer_id == new.customer_id
                and e.campaign_id == new.campaign_id
                and e.status in RUNNING
                for e in self.enrollments.values()
            )
            if running and not new.holdout:
                continue
            row = EnrollmentRow(
                self.next_id("enrollments"),
                new.customer_id,
                new.campaign_id,
                (EnrollmentStatus.HOLDOUT if new.holdout else EnrollmentStatus.ACTIVE).value,
                now,
                next_step_key=None if new.holdout else new.first_step_key,
                next_due_at=None if new.holdout else new.first_due_at,
                ended_at=now if new.holdout else None,
            )
            self.enrollments[row.id] = row
        return len(given)

    def suppress(self, email: str, reason: str, detail: str | None, now: datetime) -> None:
        """``suppressions.suppress``: the first reason stays."""
        key = normalize_or_keep(email)
        if key not in self.suppressions:
            self.suppressions[key] = SuppressionRow(key, reason, (detail or "")[:500], now)

    def opt_out_address(self, email: str, reason: str, detail: str | None, now: datetime) -> int:
        """``responses.opt_out_address``: suppress, end every holder's running enrollments."""
        self.suppress(email, reason, detail, now)
        return sum(
            self.end_enrollments(reason, now, customer_id=customer_id)
            for customer_id in self.customer_ids_by_email(email)
        )

    def record(
        self,
        kind: str,
        now: datetime,
        *,
        source: str,
        ref: MessageRef | None = None,
        customer_id: int | None = None,
        detail: str | None = None,
        value: float | None = None,
        dedupe_key: str | None = None,
        credit: tuple[int, str, int | None, str | None] | None = None,
    ) -> bool:
        """``responses.record``: False when ``dedupe_key`` was recorded already."""
        enrollment, campaign, message, step = credit or (None, None, None, None)
        if dedupe_key is not None and any(r.dedupe_key == dedupe_key for r in self.responses):
            return False
        self.responses.append(
            ResponseRecord(
                id=self.next_id("responses"),
                kind=kind,
                message_id=ref.id if ref else message,
                enrollment_id=ref.enrollment_id if ref else enrollment,
                customer_id=ref.customer_id if ref else customer_id,
                campaign_id=ref.campaign_id if ref else campaign,
                step_key=ref.step_key if ref else step,
                occurred_at=now,
                source=source,
                detail=detail[:500] if detail else None,
                value=value,
                dedupe_key=dedupe_key,
            )
        )
        return True

    def add_call(
        self, customer_id: int, reason: str, priority: str, due_at: datetime, now: datetime
    ) -> None:
        """``calls.add_call``: an open call on the customer's list."""
        self.calls.append(
            CallRow(
                self.next_id("calls"),
                customer_id,
                reason[:300],
                priority,
                due_at,
                CallTaskStatus.OPEN.value,
                now,
            )
        )
