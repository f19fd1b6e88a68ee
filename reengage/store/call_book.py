"""``store.calls``: the door the reps' use cases go through, one transaction a call.

The SQL is in :mod:`reengage.store.calls` (the call list's inputs),
:mod:`reengage.store.outcomes` (call outcomes), :mod:`reengage.store.rep_calls` (one rep's
list inputs) and :mod:`reengage.store.digests` (the morning digests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from reengage.models import CallOutcome, DigestStatus, Rep
from reengage.store.calls import (
    CallFacts,
    OpenCall,
    PastCall,
    Touch,
    WaitingReply,
    call_facts,
    last_calls,
    open_calls,
    reps,
    touches,
    waiting_replies,
)
from reengage.store.corrections import Change, changes, correct_outcome, outcome_by_id
from reengage.store.digests import (
    DigestRow,
    claim_retry,
    digest_counts,
    digest_customers,
    digests_on,
    expire_digests,
    finish_digest,
    reopen_digest,
    start_digest,
)
from reengage.store.outcomes import (
    OutcomeActs,
    SavedOutcome,
    outcome_by_key,
    outcomes_since,
    save_outcome,
)
from reengage.store.rep_calls import RepSignals, rep_signals, reps_signals
from reengage.store.rep_stats import RepStats, rep_valued, reps_valued


class CallBook:
    """``store.calls``: each method is one transaction."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = tx

    def save_outcome(
        self, values: dict[str, Any], acts: OutcomeActs, now: datetime
    ) -> SavedOutcome:
        """Store a call outcome and carry out what it does, in one transaction."""
        with self._tx() as conn:
            return save_outcome(conn, values, acts, now)

    def correct_outcome(
        self,
        outcome_id: int,
        values: dict[str, Any],
        redo: OutcomeActs | None,
        who: str | None,
        now: datetime,
    ) -> list[Change]:
        """Correct a recorded outcome, log each change, redo its effects when ``redo``."""
        with self._tx() as conn:
            return correct_outcome(conn, outcome_id, values, redo, who, now)

    def outcome_changes(self, outcome_id: int) -> list[Change]:
        """Every correction of this outcome, oldest first."""
        with self._tx() as conn:
            return changes(conn, outcome_id)

    def outcome_by_id(self, outcome_id: int) -> CallOutcome | None:
        """The call outcome with this id."""
        with self._tx() as conn:
            return outcome_by_id(conn, outcome_id)

    def open_calls(self, customer_ids: Iterable[int] | None = None) -> list[OpenCall]:
        """Open calls, earliest due first."""
        with self._tx() as conn:
            return open_calls(conn, customer_ids)

    def rep_signals(
        self, rep_external_id: str, now: datetime, replies_since: datetime, segments: list[str]
    ) -> tuple[RepSignals, RepStats]:
        """One rep's list inputs: that rep's customers' calls, replies, last calls, pauses,
        and the stats of those with some value (``segments``: see :class:`RepStats`)."""
        with self._tx() as conn:
            signals = rep_signals(conn, rep_external_id, now, replies_since)
            return signals, rep_valued(conn, rep_external_id, segments)

    def reps_signals(
        self, rep_external_ids: Iterable[str], now: datetime, replies_since: datetime
    ) -> dict[str, RepSignals]:
        """Many reps' calls, replies, last calls and pauses, one query per table."""
        with self._tx() as conn:
            return reps_signals(conn, rep_external_ids, now, replies_since)

    def reps_valued(
        self, rep_external_ids: Iterable[str], segments: list[str]
    ) -> Iterator[tuple[str, RepStats]]:
        """Many reps' stats rows of callable customers with some value, a rep at a time, in
        one ordered pass (the transaction stays open while the caller consumes it)."""
        with self._tx() as conn:
            yield from reps_valued(conn, list(rep_external_ids), segments)

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

    def digest_customers(self, rep_external_id: str, day: date) -> list[int]:
        """The customers on a rep's digest for ``day``, in list order."""
        with self._tx() as conn:
            return digest_customers(conn, rep_external_id, day)

    def digests_on(self, day: date) -> dict[str, str]:
        """Rep → digest status on ``day``."""
        with self._tx() as conn:
            return digests_on(conn, day)
