"""``FakeCallBook``: the call side of :class:`reengage.store.call_book.CallBook` over
:class:`FakeTables` (the SQL is in ``reengage/store/calls.py`` and ``reengage/store/outcomes.py``).

It fakes what the call list and the outcome use case (``reengage/digest/outcomes.py``)
read and write; the morning digests' rows (``start_digest``, ``claim_retry``, ...) are not
faked: their tests send real mail to a real database anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from reengage.models import CallOutcome, CallTaskStatus, CustomerStatus, MessageStatus, Rep
from reengage.store.calls import CallFacts, OpenCall, PastCall, Touch, WaitingReply
from reengage.store.outcomes import OutcomeActs, SavedOutcome
from tests.fakes.tables import FakeTables


class FakeCallBook:
    """``store.calls`` without a database, for the outcome rules and the call list."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    def save_outcome(
        self, values: dict[str, Any], acts: OutcomeActs, now: datetime
    ) -> SavedOutcome:
        dedupe_key = values.get("dedupe_key")
        if dedupe_key is not None and self.outcome_by_key(dedupe_key) is not None:
            return SavedOutcome(False, 0, self.outcome_by_key(dedupe_key))
        self._t.outcomes.append(
            CallOutcome.model_validate({**values, "id": self._t.next_id("outcomes")})
        )
        customer_id = acts.customer_id
        customer = self._t.customers.get(customer_id)
        refused = (
            customer is not None
            and customer.status == CustomerStatus.DO_NOT_CONTACT.value
            and not acts.do_not_contact
            and (acts.enroll is not None or acts.call_again is not None)
        )
        if refused:
            acts = replace(acts, enroll=None, call_again=None)
        for call in self._t.calls:
            if call.customer_id == customer_id and call.status == CallTaskStatus.OPEN.value:
                call.status = acts.close_calls_as.value
        if acts.answer_replies:
            for reply in self._t.replies:
                if reply.customer_id == customer_id and reply.status == "new":
                    reply.status = "answered"
        if acts.do_not_contact and customer_id in self._t.customers:
            customer = self._t.customers[customer_id]
            customer.status, customer.updated_at = CustomerStatus.DO_NOT_CONTACT.value, now
        ended = 0
        if acts.end_reason is not None:
            ended = self._t.end_enrollments(
                acts.end_reason, now, customer_id=customer_id, campaign_ids=acts.end_campaigns
            )
        if acts.enroll is not None:
            self._t.insert_enrollments([acts.enroll], now)
        if acts.call_again is not None:
            reason, due = acts.call_again
            self._t.add_call(customer_id, reason, "high", due, now)
        saved = self.outcome_by_key(dedupe_key) if dedupe_key else None
        return SavedOutcome(True, ended, saved, refused)

    def open_calls(self, customer_ids: Iterable[int] | None = None) -> list[OpenCall]:
        wanted = None if customer_ids is None else set(customer_ids)
        found = sorted(
            (
                c
                for c in self._t.calls
                if c.status == CallTaskStatus.OPEN.value
                and (wanted is None or c.customer_id in wanted)
            ),
            key=lambda c: (c.due_at, c.id),
        )
        return [
            OpenCall(
                c.id,
                c.customer_id,
                c.campaign_id,
                c.step_key,
                c.reason,
                c.priority,
                c.due_at,
                c.created_at,
            )
            for c in found
        ]

    def waiting_replies(
        self, since: datetime, customer_ids: Iterable[int] | None = None
    ) -> list[WaitingReply]:
        wanted = None if customer_ids is None else set(customer_ids)
        found = sorted(
            (
                r
                for r in self._t.replies
                if r.status == "new"
                and not r.automatic
                and r.customer_id is not None
                and r.received_at >= since
                and (wanted is None or r.customer_id in wanted)
            ),
            key=lambda r: r.received_at,
        )
        return [
            WaitingReply(r.customer_id, r.subject, r.text, r.received_at)
            for r in found
            if r.customer_id is not None
        ]

    def last_calls(self, customer_ids: Iterable[int] | None = None) -> dict[int, PastCall]:
        wanted = None if customer_ids is None else set(customer_ids)
        newest: dict[int, datetime] = {}
        for o in self._t.outcomes:
            if newest.get(o.customer_id) is None or o.called_at > newest[o.customer_id]:
                newest[o.customer_id] = o.called_at
        found: dict[int, PastCall] = {}
        for o in sorted(self._t.outcomes, key=lambda o: o.id or 0):
            if (wanted is None or o.customer_id in wanted) and o.called_at == newest[o.customer_id]:
                found[o.customer_id] = PastCall(
                    customer_id=o.customer_id,
                    called_at=o.called_at,
                    rep_external_id=o.rep_external_id,
                    reached=o.reached,
                    contact_name=o.contact_name,
                    reason=o.reason,
                    reason_text=o.reason_text,
                    scope=o.scope,
                    win_back=o.win_back,
                    worth=o.worth,
                    next_step=o.next_step,
                    call_again_on=o.call_again_on,
                )
        return found

    def call_facts(self, customer_ids: Iterable[int]) -> dict[int, CallFacts]:
        return {
            c.id: CallFacts(c.rep_external_id, c.status, c.paused_until)
            for c in self._t.customers.values()
            if c.id in set(customer_ids)
        }

    def touches(self, customer_ids: Iterable[int], since: datetime) -> list[Touch]:
        ids = set(customer_ids)
        sent = [
            Touch(m.customer_id, "sent", m.sent_at, m.campaign_id, m.step_key, None)
            for m in self._t.messages.values()
            if m.customer_id in ids
            and m.status in (MessageStatus.SENT.value, MessageStatus.BOUNCED.value)
            and m.sent_at is not None
            and m.sent_at >= since
        ]
        responded = [
            Touch(r.customer_id, r.kind, r.occurred_at, r.campaign_id, r.step_key, r.detail)
            for r in self._t.responses
            if r.customer_id is not None and r.customer_id in ids and r.occurred_at >= since
        ]
        return sorted(sent + responded, key=lambda t: (t.customer_id, t.at))

    def reps(self, external_ids: Iterable[str] | None = None) -> list[Rep]:
        wanted = None if external_ids is None else set(external_ids)
        return [rep for key, rep in sorted(self._t.reps.items()) if wanted is None or key in wanted]

    def outcomes_since(self, since: datetime | None) -> list[CallOutcome]:
        return sorted(
            (o for o in self._t.outcomes if since is None or o.called_at >= since),
            key=lambda o: (o.called_at, o.id or 0),
        )

    def outcome_by_key(self, dedupe_key: str) -> CallOutcome | None:
        found = [o for o in self._t.outcomes if o.dedupe_key == dedupe_key]
        return found[0] if found else None
