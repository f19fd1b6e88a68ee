"""``FakeResponseLog``: :class:`reengage.store.response_log.ResponseLog` over
:class:`FakeTables`, method for method (the SQL is in ``reengage/store/responses.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from reengage.addresses import normalize_or_keep
from reengage.models import MessageStatus, ResponseKind
from reengage.store.inbound_log import Unmatched
from reengage.store.responses import MessageRef, ResponseRow
from tests.fakes.tables import FakeTables, ReplyRow, UnmatchedRow


class FakeResponseLog:
    """``store.responses`` without a database; every method does what its SQL does."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    def message(self, token: str) -> MessageRef | None:
        found = [m for m in self._t.messages.values() if m.token == token]
        return self._t.ref(found[0]) if found else None

    def message_by_smtp_ids(self, message_ids: Sequence[str]) -> MessageRef | None:
        wanted = {f"<{m.strip('<>')}>" for m in message_ids if m.strip("<>")}
        found = [m for m in self._t.messages.values() if m.message_id in wanted]
        return self._t.ref(found[0]) if found else None

    def messages_by_folded_token(self, token: str) -> list[MessageRef]:
        found = [m for m in self._t.messages.values() if m.token.lower() == token.lower()]
        return [self._t.ref(m) for m in found[:5]]

    def add_unmatched(self, now: datetime, **fields: Any) -> bool:
        return self._add_unmatched(now, **fields)

    def seen(self, dedupe_key: str) -> bool:
        return any(r.dedupe_key == dedupe_key for r in self._t.responses) or any(
            u.dedupe_key == dedupe_key for u in self._t.unmatched
        )

    def unmatched(self, limit: int = 50) -> tuple[list[Unmatched], int]:
        newest = sorted(self._t.unmatched, key=lambda u: (u.received_at, u.id), reverse=True)
        rows = [
            Unmatched(**{k: v for k, v in asdict(u).items() if k != "dedupe_key"})
            for u in newest[:limit]
        ]
        return rows, len(self._t.unmatched)

    def customers_by_email(self, email: str) -> list[int]:
        return self._t.customer_ids_by_email(email)

    def customer_external_id(self, email: str) -> str | None:
        found = self._t.customer_ids_by_email(email)
        return self._t.customers[found[0]].external_id if found else None

    def record(self, kind: str, now: datetime, **fields: Any) -> bool:
        return self._t.record(kind, now, **fields)

    def count_since(self, customer_id: int, kind: str, since: datetime) -> int:
        return sum(
            1
            for r in self._t.responses
            if r.customer_id == customer_id and r.kind == kind and r.occurred_at >= since
        )

    def _count_to(self, ref: MessageRef, kind: str, since: datetime) -> int:
        # ``responses.count_to``: the customer's responses to mail sent to ``ref.email``.
        def mailed(message_id: int | None) -> str | None:
            message = self._t.messages.get(message_id) if message_id is not None else None
            if message is None:
                return None
            if message.recipient is None:
                return self._t.customers[message.customer_id].email
            return message.recipient

        return sum(
            1
            for r in self._t.responses
            if r.customer_id == ref.customer_id
            and r.kind == kind
            and r.occurred_at >= since
            and mailed(r.message_id) == ref.email
        )

    def recent(self, since: datetime, limit: int = 1000) -> list[ResponseRow]:
        rows = sorted(
            (r for r in self._t.responses if r.occurred_at >= since),
            key=lambda r: (r.occurred_at, r.id),
        )
        return [
            ResponseRow(
                r.kind,
                r.occurred_at,
                r.customer_id,
                self._t.customers[r.customer_id].email
                if r.customer_id in self._t.customers
                else None,
                r.campaign_id,
                r.step_key,
                r.source,
                r.detail,
                r.value,
            )
            for r in rows[:limit]
        ]

    def kinds_by_enrollment(
        self, enrollment_ids: Iterable[int]
    ) -> dict[int, set[tuple[str | None, str]]]:
        wanted = set(enrollment_ids)
        found: dict[int, set[tuple[str | None, str]]] = {}
        for r in self._t.responses:
            if r.enrollment_id is not None and r.enrollment_id in wanted:
                found.setdefault(r.enrollment_id, set()).add((r.step_key, r.kind))
        return found

    def replies(self, status: str | None = "new") -> list[dict[str, Any]]:
        # ORDER BY automatic, received_at DESC
        rows = sorted(self._t.replies, key=lambda r: r.received_at, reverse=True)
        rows = sorted(rows, key=lambda r: r.automatic)
        return [asdict(r) for r in rows if status is None or r.status == status]

    # -- what a response does ---------------------------------------------------------------

    def click(self, ref: MessageRef, url: str, now: datetime, *, exits: bool) -> None:
        self._t.record(ResponseKind.CLICK.value, now, source="web", ref=ref, detail=url)
        self._t.record(
            ResponseKind.OPEN.value, now, source="web", ref=ref, dedupe_key=f"open:{ref.id}"
        )
        if exits:
            self._t.end_enrollments(
                "click", now, customer_id=ref.customer_id, campaign_ids=[ref.campaign_id]
            )

    def unsubscribe(
        self,
        ref: MessageRef,
        reason: str,
        detail: str,
        now: datetime,
        *,
        source: str,
        event_key: str | None = None,
    ) -> int | None:
        logged = self._t.record(
            ResponseKind.UNSUBSCRIBE.value,
            now,
            source=source,
            ref=ref,
            dedupe_key=event_key or f"unsubscribe:{ref.id}",
        )
        if event_key is not None and not logged:
            return None
        exited = self._t.opt_out_address(ref.email, reason, detail, now)
        customer = self._t.customers.get(ref.customer_id)
        now_at = normalize_or_keep(customer.email) if customer is not None else None
        if now_at and now_at != ref.email:
            exited += self._t.opt_out_address(now_at, reason, detail, now)
        return exited

    def pause(self, ref: MessageRef, until: datetime, now: datetime, *, detail: str) -> None:
        if ref.customer_id in self._t.customers:
            self._t.customers[ref.customer_id].paused_until = until
        self._t.end_enrollments("paused", now, customer_id=ref.customer_id)
        self._t.record(
            ResponseKind.PAUSE.value,
            now,
            source="web",
            ref=ref,
            detail=detail,
            dedupe_key=f"pause:{ref.id}",
        )

    def opt_out(
        self,
        kind: str,
        ref: MessageRef,
        reason: str,
        detail: str | None,
        now: datetime,
        *,
        source: str,
        dedupe_key: str | None,
    ) -> int | None:
        if not self._t.record(
            kind, now, source=source, ref=ref, detail=detail, dedupe_key=dedupe_key
        ):
            return None
        if kind == ResponseKind.BOUNCE.value and ref.id in self._t.messages:
            message = self._t.messages[ref.id]
            message.status = MessageStatus.BOUNCED.value
            message.smtp_response = (detail or "")[:500]
        return self._t.opt_out_address(ref.email, reason, detail, now)

    def soft_bounce(
        self,
        ref: MessageRef,
        diagnostic: str | None,
        now: datetime,
        *,
        source: str,
        dedupe_key: str | None,
        since: datetime,
        limit: int,
        reason: str,
        detail: Callable[[int], str],
    ) -> int | None:
        if not self._t.record(
            ResponseKind.SOFT_BOUNCE.value,
            now,
            source=source,
            ref=ref,
            detail=diagnostic,
            dedupe_key=dedupe_key,
        ):
            return None
        count = self._count_to(ref, ResponseKind.SOFT_BOUNCE.value, since)
        if count >= limit:
            self._t.opt_out_address(ref.email, reason, detail(count), now)
        return count

    def reply(
        self,
        ref: MessageRef,
        kind: str,
        now: datetime,
        *,
        sender: str,
        subject: str,
        text: str,
        automatic: bool,
        detail: str | None,
        exits: bool,
    ) -> int:
        self._add_reply(ref, sender, subject, text, automatic, now, "new")
        self._t.record(kind, now, source="mail", ref=ref, detail=detail)
        if not exits:
            return 0
        return self._t.end_enrollments(
            "reply", now, customer_id=ref.customer_id, campaign_ids=[ref.campaign_id]
        )

    def unverified_reply(
        self,
        ref: MessageRef | None,
        now: datetime,
        *,
        sender: str,
        subject: str,
        text: str,
        automatic: bool,
        unmatched: dict[str, Any] | None,
    ) -> None:
        self._add_reply(ref, sender, subject, text, automatic, now, "unverified")
        if unmatched is not None:
            self._add_unmatched(now, **unmatched)

    # -- the rows behind them ---------------------------------------------------------------

    def _add_reply(
        self,
        ref: MessageRef | None,
        sender: str,
        subject: str,
        text: str,
        automatic: bool,
        now: datetime,
        status: str,
    ) -> None:
        self._t.replies.append(
            ReplyRow(
                id=self._t.next_id("replies"),
                message_id=ref.id if ref else None,
                customer_id=ref.customer_id if ref else None,
                campaign_id=ref.campaign_id if ref else None,
                sender=sender[:320],
                subject=subject[:300],
                text=text,
                automatic=automatic,
                status=status,
                received_at=now,
            )
        )

    def _add_unmatched(
        self,
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
        if dedupe_key is not None and any(u.dedupe_key == dedupe_key for u in self._t.unmatched):
            return False
        named = ", ".join(addresses[:20]) + (
            f" (+{len(addresses) - 20} more)" if len(addresses) > 20 else ""
        )
        self._t.unmatched.append(
            UnmatchedRow(
                id=self._t.next_id("unmatched"),
                received_at=now,
                source=source[:16],
                kind=kind[:16],
                reason=reason[:32],
                message_id=ref.id if ref else None,
                sender=sender[:320],
                subject=subject[:300],
                addresses=named[:500],
                detail=detail[:500] if detail else None,
                dedupe_key=dedupe_key,
            )
        )
        return True
