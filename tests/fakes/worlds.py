"""Two ways to stand up the same small world of customers, enrollments and sent mails: rows
in a real migrated database (:class:`SqlWorld`) or in the fakes (:class:`FakeWorld`).

The contract test runs each scenario in both; the unit tests use :class:`FakeWorld` only.
Whatever a scenario then reads, it reads through the ledgers' own methods.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from reengage.addresses import normalize_or_keep
from reengage.detect import Profile
from reengage.mailparse import Inbound, InboundKind
from reengage.mailparse.model import unknown
from reengage.models import (
    CallTask,
    Customer,
    CustomerStats,
    Enrollment,
    Message,
    MessageStatus,
    Rep,
)
from reengage.store import Store
from reengage.store.detection import display_name
from reengage.store.responses import MessageRef
from reengage.store.tables import CALLS, CUSTOMERS, ENROLLMENTS, MESSAGES, REPS, STATS
from tests.fakes import FakeStore

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class World(Protocol):
    """A store (real or fake) and how a test puts rows into it."""

    store: Any  # Store, or a FakeStore shaped like one

    def customer(self, external_id: str, email: str, **fields: Any) -> int: ...

    def rep(self, external_id: str, timezone: str = "UTC") -> None: ...

    def enrollment(self, customer_id: int, campaign_id: str, *, status: str = "active") -> int: ...

    def message(
        self,
        enrollment_id: int,
        step_key: str,
        token: str,
        *,
        message_id: str | None = None,
        legacy: bool = False,
    ) -> MessageRef: ...

    def change_email(self, customer_id: int, email: str) -> None: ...

    def open_call(self, customer_id: int, reason: str, due_at: datetime) -> None: ...

    def stats(self, customer_id: int, **stats: Any) -> None: ...


class SqlWorld:
    """Rows written straight into a migrated database, as imports and sends leave them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _insert(self, table: sa.Table, values: dict[str, Any]) -> int:
        values.pop("id", None)
        with self.store.engine.begin() as conn:
            key = conn.execute(table.insert().values(**values)).inserted_primary_key
        return int(key[0]) if key and key[0] is not None else 0

    def customer(self, external_id: str, email: str, **fields: Any) -> int:
        row = Customer(external_id=external_id, email=email, **fields)
        return self._insert(CUSTOMERS, row.model_dump())

    def rep(self, external_id: str, timezone: str = "UTC") -> None:
        row = Rep(
            external_id=external_id,
            name=external_id,
            email=f"{external_id}@acme.example",
            timezone=timezone,
        )
        self._insert(REPS, row.model_dump())

    def enrollment(self, customer_id: int, campaign_id: str, *, status: str = "active") -> int:
        row = Enrollment(
            customer_id=customer_id, campaign_id=campaign_id, status=status, enrolled_at=NOW
        )
        return self._insert(ENROLLMENTS, row.model_dump())

    def message(
        self,
        enrollment_id: int,
        step_key: str,
        token: str,
        *,
        message_id: str | None = None,
        legacy: bool = False,
    ) -> MessageRef:
        """A mail sent to the customer's address as it is now (``legacy``: a row from before
        migration 0007, naming no recipient)."""
        with self.store.engine.begin() as conn:
            enrollment = conn.execute(
                sa.select(ENROLLMENTS).where(ENROLLMENTS.c.id == enrollment_id)
            ).one()
            address = conn.scalar(
                sa.select(CUSTOMERS.c.email).where(CUSTOMERS.c.id == enrollment.customer_id)
            )
        row = Message(
            enrollment_id=enrollment_id,
            customer_id=enrollment.customer_id,
            campaign_id=enrollment.campaign_id,
            step_key=step_key,
            token=token,
            status=MessageStatus.SENT.value,
            message_id=message_id,
            recipient=None if legacy else normalize_or_keep(address),
            created_at=NOW,
            sent_at=NOW,
        )
        self._insert(MESSAGES, row.model_dump())
        ref = self.store.responses.message(token)
        assert ref is not None
        return ref

    def change_email(self, customer_id: int, email: str) -> None:
        """The customer imported again with another address (through the import's upsert)."""
        with self.store.engine.begin() as conn:
            external_id = conn.scalar(
                sa.select(CUSTOMERS.c.external_id).where(CUSTOMERS.c.id == customer_id)
            )
        self.store.customers.upsert_customers([{"external_id": external_id, "email": email}], NOW)

    def open_call(self, customer_id: int, reason: str, due_at: datetime) -> None:
        row = CallTask(customer_id=customer_id, reason=reason, due_at=due_at, created_at=NOW)
        self._insert(CALLS, row.model_dump())

    def stats(self, customer_id: int, **stats: Any) -> None:
        with self.store.engine.begin() as conn:
            segment = conn.scalar(
                sa.select(CUSTOMERS.c.segment).where(CUSTOMERS.c.id == customer_id)
            )
        row = CustomerStats(customer_id=customer_id, segment=segment, **stats)
        with self.store.engine.begin() as conn:
            conn.execute(STATS.insert().values(**row.model_dump()))


class FakeWorld:
    """The same rows in a :class:`FakeStore`."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.tables = self.store.tables

    def customer(self, external_id: str, email: str, **fields: Any) -> int:
        return self.tables.add_customer(external_id, email, **fields)

    def rep(self, external_id: str, timezone: str = "UTC") -> None:
        self.tables.reps[external_id] = Rep(
            id=len(self.tables.reps) + 1,
            external_id=external_id,
            name=external_id,
            email=f"{external_id}@acme.example",
            timezone=timezone,
        )

    def enrollment(self, customer_id: int, campaign_id: str, *, status: str = "active") -> int:
        return self.tables.add_enrollment(customer_id, campaign_id, NOW, status=status)

    def message(
        self,
        enrollment_id: int,
        step_key: str,
        token: str,
        *,
        message_id: str | None = None,
        legacy: bool = False,
    ) -> MessageRef:
        self.tables.add_message(
            enrollment_id, step_key, token, NOW, message_id=message_id, legacy=legacy
        )
        ref = self.store.responses.message(token)
        assert ref is not None
        return ref

    def change_email(self, customer_id: int, email: str) -> None:
        self.tables.customers[customer_id].email = email

    def open_call(self, customer_id: int, reason: str, due_at: datetime) -> None:
        self.tables.add_call(customer_id, reason, "normal", due_at, NOW)

    def stats(self, customer_id: int, **stats: Any) -> None:
        who = self.tables.customers[customer_id]
        row = CustomerStats(customer_id=customer_id, **stats)
        self.store.detection.by_customer[customer_id] = Profile(
            customer_id=customer_id,
            external_id=who.external_id,
            segment=who.segment,
            activity_count=row.activity_count,
            order_count=row.order_count,
            first_order_at=row.first_order_at,
            last_order_at=row.last_order_at,
            last_activity_at=row.last_activity_at,
            total_value=row.total_value,
            total_margin=row.total_margin,
            typical_gap_days=row.typical_gap_days,
            count_ratio=row.count_ratio,
            aov_ratio=row.aov_ratio,
            margin_ratio=row.margin_ratio,
            name=display_name(who.first_name, who.last_name, who.company),
        )


def inbound(kind: InboundKind, **fields: Any) -> Inbound:
    """A classified inbound mail, as :func:`reengage.mailparse.classify` would hand it on."""
    return replace(unknown(), kind=kind, **fields)


def enrollments(w: World, customer_id: int) -> list[tuple[str, str, str | None]]:
    """``(campaign, status, exit reason)`` of a customer's enrollments, sorted."""
    lines, _ = w.store.sending.customer_sending(customer_id)
    return sorted((e.campaign_id, e.status, e.exit_reason) for e in lines)


def kinds(w: World) -> list[str]:
    """The kinds of every response logged, sorted."""
    return sorted(r.kind for r in w.store.responses.recent(datetime(2000, 1, 1, tzinfo=UTC)))
